# Kernel unit tests (sources in tests/unit/kernels/). Included from this folder's
# CMakeLists so both the full build and the kernel-only cross build register them.
set(KERNEL_TEST_DIR ${PROJECT_SOURCE_DIR}/tests/unit/kernels)
foreach(test_name kernels_vec_dot_test kernels_matmul_test kernels_row_parallel_test kernels_thread_pool_test)
  add_executable(${test_name} ${KERNEL_TEST_DIR}/${test_name}.cpp ${KERNEL_TEST_DIR}/kernels_test_data.cpp)
  target_link_libraries(${test_name} PRIVATE clusterctl_kernels GTest::gtest_main)
  # PRE_TEST: discovery runs the binary, which in the cross build needs the emulator at test time.
  gtest_discover_tests(${test_name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 120)
endforeach()
