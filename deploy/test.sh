#!/usr/bin/env bash
# The test command of the README: installs dependencies, builds, and runs every test suite.
#   deploy/test.sh            unit, multi-rank and cluster tests (ctest), fuzz smoke, aarch64 kernel tests
#   FUZZ_SECONDS=600 deploy/test.sh    a longer fuzz run (each fuzzer: GGUF, HTTP/OpenAI requests, the HTTP server property)
#   tests/fuzz/run_api.sh http_fuzz openai 600    one API at a time (openai, ollama, anthropic, http)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
JOBS=${JOBS:-$(nproc 2>/dev/null || sysctl -n hw.ncpu)}
step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
bash deploy/install-deps.sh

step "build (Release)"
cmake --preset release >/dev/null
cmake --build build -j "$JOBS"

step "API test dependencies (npm)"
npm ci --prefix tests/api --no-audit --no-fund --loglevel=error

step "tests (ctest)"
ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 900

if command -v clang++ >/dev/null && [ "$(uname -s)" = Linux ]; then
  step "GGUF fuzzer, ${FUZZ_SECONDS}s (clang, libFuzzer, ASan+UBSan)"
  cmake --preset fuzz >/dev/null
  cmake --build build-fuzz -j "$JOBS" --target gguf_fuzz
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus" "$corpus.log"' EXIT
  seeds=("$ROOT/tests/fuzz/seeds")
  [ -d "$ROOT/../shared/models" ] && seeds+=("$ROOT/../shared/models")
  rc=0
  build-fuzz/tests/fuzz/gguf_fuzz -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1 "$corpus" "${seeds[@]}" >"$corpus.log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|^Done|ERROR|SUMMARY" "$corpus.log" || true
  # libFuzzer exits non-zero on a crash, a leak or a sanitizer report.
  if [ "$rc" -ne 0 ]; then tail -50 "$corpus.log" >&2; echo "fuzzer found a failure (exit $rc)" >&2; exit 1; fi

  step "HTTP/OpenAI request fuzzer, ${FUZZ_SECONDS}s (clang, libFuzzer, ASan+UBSan)"
  cmake --build build-fuzz -j "$JOBS" --target http_fuzz
  http_corpus=$(mktemp -d)
  trap 'rm -rf "$corpus" "$corpus.log" "$http_corpus" "$http_corpus.log"' EXIT
  rc=0
  build-fuzz/tests/fuzz/http_fuzz -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "$http_corpus" "$ROOT/tests/fuzz/seeds-http" "$ROOT/tests/fuzz/seeds-openai" \
    "$ROOT/tests/fuzz/seeds-ollama" "$ROOT/tests/fuzz/seeds-anthropic" >"$http_corpus.log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|^Done|ERROR|SUMMARY" "$http_corpus.log" || true
  if [ "$rc" -ne 0 ]; then tail -50 "$http_corpus.log" >&2; echo "HTTP fuzzer found a failure (exit $rc)" >&2; exit 1; fi

  step "HTTP server property fuzzer, ${FUZZ_SECONDS}s: after any input a normal request is answered"
  cmake --build build-fuzz -j "$JOBS" --target http_server_fuzz
  rc=0
  build-fuzz/tests/fuzz/http_server_fuzz -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 -timeout=30 \
    -print_final_stats=1 "$http_corpus" "$ROOT/tests/fuzz/seeds-http" >"$http_corpus.log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|^Done|ERROR|SUMMARY" "$http_corpus.log" || true
  if [ "$rc" -ne 0 ]; then tail -50 "$http_corpus.log" >&2; echo "HTTP server fuzzer found a failure (exit $rc)" >&2; exit 1; fi
fi

if [ -x deploy/test-aarch64.sh ] && [ "$(uname -m)" = x86_64 ]; then
  step "aarch64 kernel tests under qemu"
  deploy/test-aarch64.sh
fi
echo
echo "all test suites passed"
