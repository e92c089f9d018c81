#!/usr/bin/env bash
# `clusterctl up` with a model too big for the 3-node test cluster (ctest fixture `testcluster`):
# a full-size DeepSeek-V3 Q4_K_M written sparse by `model synth --sparse` (377 GiB of tensors, no
# disk used; each node's third is ~126 GiB, more than any test machine's memory). up must refuse
# in its preflight with one message naming each node's need against what it has and the fix
# (more nodes, bigger nodes, a smaller quant), before anything is cut, copied or started.
# Usage: up_too_big_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
controller_state_in_tmp
VOCAB=$(shared_model llama-2-tiny-random.gguf)
[ -f "$VOCAB" ] || { echo "FAIL: $VOCAB is missing"; exit 1; }
cleanup() { "$CLUSTERCTL" down testcluster >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT

MODEL="$T/deepseek-v3-q4km.gguf"
"$CLUSTERCTL" model synth --shape deepseek-v3 --type Q4_K_M --sparse --pad-vocab --vocab "$VOCAB" "$MODEL" >/dev/null
expect_eq "synth --sparse deepseek-v3" "$?" 0
used_kib=$(du -k "$MODEL" | cut -f1)
[ "$used_kib" -lt 65536 ] && pass "the sparse file uses ${used_kib} KiB of disk" || fail "the sparse file uses ${used_kib} KiB"
avail_gib=$(awk '/^MemAvailable:/ {print int($2 / 1048576)}' /proc/meminfo)
[ "$avail_gib" -lt 120 ] || { echo "FAIL: this machine has ${avail_gib} GiB available: a node's third of the model fits"; exit 1; }

testcluster_config "$MODEL" "$T/big.yaml"
rm -rf "$D"/cache/node*

echo "== up with a model too big for the cluster"
out=$("$CLUSTERCTL" up "$T/big.yaml" 2>&1); rc=$?
echo "$out" | tail -n 6
expect_eq "up exit status" "$rc" 1
expect_match "one error, in the preflight's memory step" "$out" "^error: up failed at node controller, step preflight \(memory\): "
expect_eq "only one error line" "$(grep -c '^error:' <<<"$out")" 1
for k in 1 2 3; do
  expect_match "names node$k's need against what it has" "$out" \
    "node$k needs [0-9.]+ GiB \(shard [0-9.]+ GiB \+ KV cache [0-9.]+ (MiB|GiB)\) and has [0-9.]+ (MiB|GiB) free"
done
expect_match "the cause: the model does not fit" "$out" "deepseek-v3-q4km\.gguf \(37[0-9]\.[0-9]+ GiB of weights\) does not fit in any node's memory"
expect_match "the fix: more nodes, bigger nodes, a smaller quant" "$out" \
  "fix: the 3 node\(s\) have .* together and the model needs .*: add nodes \(about [0-9]+ like these\), use nodes with more memory, or a smaller quant of the model \(this file has 4\.[0-9] bits per weight"
expect_match "says nothing was copied" "$out" "nothing was copied or started"
expect_no_match "no placement step ran" "$out" "^(placement|copying|launch)"

n=$(find "$D"/cache/node* -type f 2>/dev/null | wc -l)
expect_eq "no file on any node" "$n" 0
n=$(find "$CLUSTERCTL_CACHE_DIR" -type f 2>/dev/null | wc -l)
expect_eq "no shard cut on the controller" "$n" 0
[ -e "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && fail "a cluster was recorded" || pass "nothing recorded"
expect_no_job_processes "after the refusal"
expect_no_sessions_left "after the refusal"

echo "== plan names the same shortfall and exits 1"
out=$("$CLUSTERCTL" plan "$T/big.yaml" 2>&1); rc=$?
expect_eq "plan exit status" "$rc" 1
expect_match "plan: node1 is short" "$out" "^node1 is [0-9.]+ GiB short: it needs"
finish
