#!/usr/bin/env bash
# One fuzz run aimed at one API (not in CI; CI runs every target 60 s over all APIs at once):
#   tests/fuzz/run_api.sh TARGET API SECONDS [CORPUS_DIR]
#   TARGET  http_server_fuzz (a real server: after each input a normal request of that API must be
#           answered) or http_fuzz (the parsers in-process, faster)
#   API     openai | ollama | anthropic (the input is that API's request body) | http (raw bytes)
# Seeds: tests/fuzz/seeds-API, dictionary tests/fuzz/dict/API.dict. The fuzz build must exist
# (cmake --preset fuzz && cmake --build build-fuzz --target TARGET; BUILD_FUZZ overrides its path).
# Prints the executions, coverage (cov: edges, ft: features) and corpus size; exits non-zero with
# the crashing input saved beside the corpus when the run found a crash, hang, leak or report.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${1:?usage: run_api.sh TARGET API SECONDS [CORPUS_DIR]} API=${2:?API} SECONDS_=${3:-600}
case "$API" in openai | ollama | anthropic | http) ;; *) echo "API must be openai, ollama, anthropic or http" >&2; exit 2 ;; esac
BIN=${BUILD_FUZZ:-$REPO/build-fuzz}/tests/fuzz/$TARGET
[ -x "$BIN" ] || { echo "$BIN is missing: cmake --preset fuzz && cmake --build build-fuzz --target $TARGET" >&2; exit 2; }
CORPUS=${4:-$(mktemp -d "/tmp/fuzz-$API-XXXXXX")}
mkdir -p "$CORPUS"
LOG=$CORPUS.log
rc=0
CLUSTERCTL_FUZZ_API=$API "$BIN" -max_total_time="$SECONDS_" -max_len=65536 -rss_limit_mb=2048 -timeout=30 \
  -dict="$REPO/tests/fuzz/dict/$API.dict" -artifact_prefix="$CORPUS." -print_final_stats=1 \
  "$CORPUS" "$REPO/tests/fuzz/seeds-$API" >"$LOG" 2>&1 || rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOG" | grep -o '[0-9]*$' || echo '?')
last=$(grep -E '^#[0-9]+' "$LOG" | tail -n1)
echo "$TARGET $API ${SECONDS_}s: $execs executions; last: $last"
if [ "$rc" -ne 0 ]; then
  grep -E 'ERROR|SUMMARY|artifact|abort|threw' "$LOG" | head -20 >&2
  echo "the run found a failure (exit $rc); log $LOG" >&2
  exit 1
fi
