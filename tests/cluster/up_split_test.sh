#!/usr/bin/env bash
# `clusterctl up` with a split model (NAME-0000K-of-0000N.gguf, as llama.cpp's gguf-split) on the
# 3-node test cluster (ctest fixture `testcluster`):
#  1. the cluster file names the split model's first part: up cuts the shards from the parts,
#     copies them, serves, and `clusterctl run` through the cluster gives the same greedy tokens
#     as a local run of the whole (unsplit) file;
#  2. a part missing or unreadable: up is refused before anything is copied, naming the part.
# Usage: up_split_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
require_node
controller_state_in_tmp
VOCAB=$(shared_model llama-2-tiny-random.gguf)
[ -f "$VOCAB" ] || { echo "FAIL: $VOCAB is missing"; exit 1; }
cleanup() { "$CLUSTERCTL" down testcluster >/dev/null 2>&1; chmod -R u+rw "$T" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

echo "== a tiny model, whole and split in 3 parts (the same seed: the same tensors)"
mkdir -p "$T/whole" "$T/split"
"$CLUSTERCTL" model synth --shape tiny --type Q8_0 --vocab "$VOCAB" --seed 1 --threads 1 "$T/whole/tinysplit.gguf" >/dev/null
expect_eq "synth whole" "$?" 0
"$CLUSTERCTL" model synth --shape tiny --type Q8_0 --vocab "$VOCAB" --seed 1 --threads 1 --parts 3 "$T/split/tinysplit.gguf" >/dev/null
expect_eq "synth --parts 3" "$?" 0
FIRST="$T/split/tinysplit-00001-of-00003.gguf"
for k in 1 2 3; do
  [ -f "$T/split/tinysplit-0000$k-of-00003.gguf" ] && pass "part $k written" || fail "no part $k in $(ls "$T/split")"
done
# cluster file: the split model's first part, this build's worker.
testcluster_config "$FIRST" "$T/split.yaml"
rm -rf "$D"/cache/node*

local_json=$(CLUSTERCTL_STATE_DIR="$T/no-clusters" "$CLUSTERCTL" run "$T/whole/tinysplit.gguf" "Once upon a time" -n 32 --temp 0 --json)
local_ids=$(json_get .generated_ids <<<"$local_json")
expect_match "local run of the whole file" "$local_ids" "^\[[0-9]"

echo "== up with the split model's first part"
out=$("$CLUSTERCTL" up "$T/split.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "up exit status" "$rc" 0
expect_match "up is up" "$out" "^cluster 'testcluster' is up: http://10\.77\.1\.1:8080"
for k in 1 2 3; do
  expect_match "node$k got its shard" "$out" "^  node$k: [0-9.]+ (B|KiB|MiB) copied \(shard, 0 already there\)"
  n=$(find "$D/cache/node$k" -name '*.gguf' | wc -l)
  expect_eq "node$k holds one shard" "$n" 1
done
ENDPOINT=$(json_get .endpoint <"$CLUSTERCTL_STATE_DIR/testcluster.json")
MODEL_ID=$(json_get .model_id <"$CLUSTERCTL_STATE_DIR/testcluster.json")
remote_json=$("$CLUSTERCTL" run "$MODEL_ID" "Once upon a time" -n 32 --temp 0 --json --endpoint "$ENDPOINT")
echo "cluster: $remote_json" | head -c 600; echo
expect_eq "the cluster's greedy tokens = the whole file's" "$(json_get .generated_ids <<<"$remote_json")" "$local_ids"
out=$("$CLUSTERCTL" down 2>&1); rc=$?
expect_eq "down" "$rc" 0
expect_no_job_processes "after down"

# refused PART-STATE: up refuses before copying, naming part 2.
refused() {
  local name=$1 config=$2
  rm -rf "$D"/cache/node* "$CLUSTERCTL_CACHE_DIR"
  echo "== $name"
  out=$("$CLUSTERCTL" up "$config" 2>&1); rc=$?
  echo "$out" | tail -n 8
  expect_eq "$name: exit status" "$rc" 1
  expect_match "$name: names the part" "$out" "tinysplit-00002-of-00003\.gguf"
  expect_no_match "$name: nothing copied" "$out" "copied"
  local n
  n=$(find "$D"/cache/node* -name '*.gguf' 2>/dev/null | wc -l)
  expect_eq "$name: no shard on any node" "$n" 0
  [ -e "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && fail "$name: a cluster was recorded" || pass "$name: nothing recorded"
  expect_no_job_processes "$name"
}
mkdir -p "$T/missing"
cp "$T/split/tinysplit-00001-of-00003.gguf" "$T/split/tinysplit-00003-of-00003.gguf" "$T/missing/"
testcluster_config "$T/missing/tinysplit-00001-of-00003.gguf" "$T/missing.yaml"
refused "part 2 missing" "$T/missing.yaml"

mkdir -p "$T/unreadable"
cp "$T/split/"tinysplit-0000*-of-00003.gguf "$T/unreadable/"
: >"$T/unreadable/tinysplit-00002-of-00003.gguf"  # empty: not a GGUF part (root reads any file mode)
testcluster_config "$T/unreadable/tinysplit-00001-of-00003.gguf" "$T/unreadable.yaml"
refused "part 2 unreadable (empty)" "$T/unreadable.yaml"
finish
