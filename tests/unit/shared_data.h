#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace clusterctl::test {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Path of a file under ../shared. Absent: the test skips with the reason, but under CI=true
// missing shared data is a failure.
inline std::string shared_path(const std::string& rel) {
  std::filesystem::path p = std::filesystem::path(CLUSTERCTL_SHARED_DIR) / rel;
  return p.lexically_normal().string();
}

#define CLUSTERCTL_REQUIRE_SHARED(path_var, rel)                                             \
  std::string path_var = ::clusterctl::test::shared_path(rel);                               \
  if (!std::filesystem::exists(path_var)) {                                                  \
    if (::clusterctl::test::in_ci()) FAIL() << "shared data missing under CI: " << path_var; \
    GTEST_SKIP() << "shared data not found: " << path_var;                                   \
  }

}  // namespace clusterctl::test
