#!/usr/bin/env bash
# `doctor --memory-only` (the planner benchmark's probe after each run, tests/bench/planner_accuracy.sh):
# the decode stream alone, the node's ranks together and one rank alone, in the figures and JSON
# keys of the full probe, recorded nowhere (plan keeps predicting from the full probe's record);
# given with --no-speed, one error line. A one-node cluster of 2 one-thread ranks on this machine.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=${1:?usage: doctor_memory_only_test.sh CLUSTERCTL CLUSTERCTL-WORKER SHARED_DIR}
WORKER=$(realpath "${2:?}")
MODEL=${3:?}/models/stories260K.gguf
require_shared_file "$MODEL"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export CLUSTERCTL_STATE_DIR=$T/state CLUSTERCTL_CACHE_DIR=$T/cache
cat >"$T/box.yaml" <<YAML
cluster: box
model: $MODEL
nodes:
  - {name: local, host: localhost, ranks: 2, threads: 1, worker: $WORKER, link: {type: ethernet, interface: lo}}
YAML
FAILED=0
check() {  # check WHAT CONDITION-EXIT-STATUS [OUTPUT]
  if [ "$2" -ne 0 ]; then
    echo "FAIL: $1"
    [ -n "${3:-}" ] && echo "$3"
    FAILED=$((FAILED + 1))
  fi
}
positive() { awk -v v="$1" 'BEGIN {exit !(v + 0 > 0)}'; }

out=$("$CTL" doctor "$T/box.yaml" --memory-only --json 2>&1); rc=$?
check "exit status of --memory-only --json" "$rc" "$out"
node=$(jq -c '.speed[0]' <<<"$out" 2>/dev/null)
positive "$(jq -r '.stream_gb_s' <<<"$node" 2>/dev/null)"; check "the ranks' decode stream" $? "$out"
positive "$(jq -r '.one_rank_stream_gb_s' <<<"$node" 2>/dev/null)"; check "one rank's decode stream" $? "$out"
[ "$(jq -r '.recorded' <<<"$node" 2>/dev/null)" = false ]; check "says it recorded nothing" $? "$out"
[ "$(jq -r 'has("compute_gflops")' <<<"$node" 2>/dev/null)" = false ]; check "measures no compute" $? "$out"
[ ! -e "$CLUSTERCTL_STATE_DIR/node-speeds.cache" ]; check "records nothing" $?

out=$("$CTL" doctor "$T/box.yaml" --memory-only 2>&1); rc=$?
check "exit status of --memory-only" "$rc" "$out"
grep -Eq "^local +[0-9.]+ GB/s +[0-9.]+ GB/s +1$" <<<"$out"; check "the table's row" $? "$out"
grep -q "^measured: decode stream only: .* 2 ranks' pools together; not recorded ('plan' takes the full probe's record: 'clusterctl doctor $T/box.yaml')$" <<<"$out"
check "how it was measured, and that plan does not take it" $? "$out"

# The full probe records, and its JSON carries the same two keys; --memory-only leaves its record.
out=$("$CTL" doctor "$T/box.yaml" --json 2>&1); rc=$?
check "exit status of the full probe" "$rc" "$out"
positive "$(jq -r '.speed[0].one_rank_stream_gb_s' <<<"$out" 2>/dev/null)"; check "the full probe's one rank" $? "$out"
cp "$CLUSTERCTL_STATE_DIR/node-speeds.cache" "$T/recorded" 2>/dev/null; check "the full probe recorded" $?
"$CTL" doctor "$T/box.yaml" --memory-only >/dev/null 2>&1
cmp -s "$T/recorded" "$CLUSTERCTL_STATE_DIR/node-speeds.cache"; check "--memory-only left the record as it was" $?

out=$("$CTL" doctor "$T/box.yaml" --memory-only --no-speed 2>&1); rc=$?
[ "$rc" -ne 0 ]; check "--memory-only with --no-speed fails" $? "$out"
[ "$out" = "error: --memory-only measures a speed and --no-speed skips them: give one of the two" ]
check "one error line naming both flags" $? "$out"

[ "$FAILED" -eq 0 ] || { echo "$FAILED check(s) failed"; exit 1; }
echo "doctor --memory-only: the decode stream alone, recorded nowhere"
