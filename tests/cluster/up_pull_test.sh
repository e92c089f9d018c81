#!/usr/bin/env bash
# `clusterctl up` with a cluster file whose `model:` names a model on Hugging Face, on the 3-node
# test cluster (ctest fixture `testcluster`), against the local hub test server (tests/hub):
# up pulls the model on the controller once (every part of a split model), cuts and copies the
# shards, serves it under that name, and `clusterctl run NAME` through the cluster gives the
# greedy tokens of a local run of the file; a second up after down downloads nothing.
# Usage: up_pull_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
source "$REPO/tests/hub/hub_server_lib.sh"
controller_state_in_tmp
HUB_PID=
export HF_HOME="$T/hf"
unset HF_TOKEN HF_HUB_CACHE HF_HUB_OFFLINE
VOCAB=$(shared_model stories260K.gguf)
[ -f "$VOCAB" ] || { echo "FAIL: $VOCAB is missing"; exit 1; }
cleanup() {
  "$CLUSTERCTL" down testcluster >/dev/null 2>&1
  [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
json_get() { python3 -c 'import json,sys; v=eval("json.load(sys.stdin)"+sys.argv[1]); print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$1"; }

echo "== a split model (2 parts) in a local hub"
mkdir -p "$T/repos/testorg/Tiny-GGUF/Q8_0" "$T/whole"
"$CLUSTERCTL" model synth --shape tiny --type Q8_0 --vocab "$VOCAB" --seed 1 --threads 1 --parts 2 \
  "$T/repos/testorg/Tiny-GGUF/Q8_0/Tiny-Q8_0.gguf" >/dev/null
expect_eq "synth --parts 2" "$?" 0
"$CLUSTERCTL" model synth --shape tiny --type Q8_0 --vocab "$VOCAB" --seed 1 --threads 1 "$T/whole/Tiny-Q8_0.gguf" >/dev/null
start_hub "$REPO" "$T/repos" "$T/served.jsonl" || exit 1
NAME=testorg/Tiny-GGUF:Q8_0
testcluster_config "$NAME" "$T/hub.yaml"
rm -rf "$D"/cache/node*

local_ids=$(CLUSTERCTL_STATE_DIR="$T/no-clusters" "$CLUSTERCTL" run "$T/whole/Tiny-Q8_0.gguf" "Once upon a time" -n 24 --temp 0 --json | json_get '["generated_ids"]')
expect_match "local run of the file" "$local_ids" "^\[[0-9]"

echo "== up with model: $NAME"
out=$("$CLUSTERCTL" up "$T/hub.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "up exit status" "$rc" 0
expect_match "up pulled the model" "$out" "^pulled testorg/Tiny-GGUF:Q8_0: .* SHA-256 verified"
expect_match "up is up" "$out" "^cluster 'testcluster' is up: http://10\.77\.1\.1:8080 \(model 'testorg/Tiny-GGUF:Q8_0'"
for k in 1 2 3; do
  expect_match "node$k got its shard" "$out" "^  node$k: [0-9.]+ (B|KiB|MiB) copied"
done
downloads=$(wc -l <"$T/served.jsonl")
expect_eq "each of the 2 parts downloaded once" "$downloads" 2
expect_eq "the state's model_id is the name" "$(json_get '["model_id"]' <"$CLUSTERCTL_STATE_DIR/testcluster.json")" "$NAME"
remote=$("$CLUSTERCTL" run "$NAME" "Once upon a time" -n 24 --temp 0 --json 2>"$T/run.err")
expect_match "run NAME went to the cluster" "$(json_get '["endpoint"]' <<<"$remote")" "^http://10\.77\.1\.1:8080"
expect_eq "the cluster's greedy tokens = the file's" "$(json_get '["generated_ids"]' <<<"$remote")" "$local_ids"
out=$("$CLUSTERCTL" down 2>&1)
expect_eq "down" "$?" 0

echo "== up again: nothing downloaded"
out=$("$CLUSTERCTL" up "$T/hub.yaml" 2>&1); rc=$?
expect_eq "second up exit status" "$rc" 0
expect_no_match "no pull summary" "$out" "^pulled "
expect_eq "no new download" "$(wc -l <"$T/served.jsonl")" 2
"$CLUSTERCTL" down >/dev/null 2>&1
expect_eq "down" "$?" 0
expect_no_job_processes "after down"
finish
