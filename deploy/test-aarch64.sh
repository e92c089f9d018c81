#!/usr/bin/env bash
# Cross-builds the kernel library and its tests for aarch64 (NEON + dotprod) and runs the tests
# under qemu-user (qemu-aarch64 -cpu max, set as CMAKE_CROSSCOMPILING_EMULATOR by
# cmake/aarch64-linux-gnu.cmake). Needs g++-aarch64-linux-gnu, qemu-user and libgtest-dev
# (its sources in /usr/src/googletest are built for the target).
# Usage: deploy/test-aarch64.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake ninja; do
  command -v "$tool" >/dev/null || { echo "test-aarch64: $tool is missing; install it (deploy/install-deps.sh)" >&2; exit 1; }
done
[[ -f /usr/src/googletest/CMakeLists.txt ]] || { echo "test-aarch64: /usr/src/googletest is missing; apt-get install libgtest-dev" >&2; exit 1; }

cmake --preset aarch64
cmake --build --preset aarch64
ctest --test-dir build-aarch64 --output-on-failure "$@"
