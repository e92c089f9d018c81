#!/usr/bin/env bash
# `clusterctl up / status / logs / down` on the 3-node test cluster (ctest fixture `testcluster`):
#  1. up configs/testcluster-3.yaml -> 64 greedy tokens through the cluster's HTTP API equal a
#     local one-process run -> status shows 3 nodes on tb0 -> down -> nothing left in any
#     namespace, and the generation's traffic went over tb0, not eth0 (interface byte counters);
#  3. a second `up` says the cluster is already running and changes nothing; `up` after `down`
#     copies 0 bytes (the shards are on the nodes).
# Usage: up_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
require_node
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)
[ -f "$MODEL" ] || { echo "FAIL: $MODEL is missing"; exit 1; }
# The cluster file as shipped, with the model path absolute and this build's worker.
CONFIG="$T/testcluster-3.yaml"
testcluster_config "$MODEL" "$CONFIG"
cleanup() { rm -f "$D/home/.bashrc"; "$REPO/deploy/testcluster" sshd-start 3 >/dev/null 2>&1; "$CLUSTERCTL" down testcluster >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
# Shards from an earlier run would make the first copy 0 bytes: start from empty node caches.
rm -rf "$D"/cache/node*

echo "== plan: what up will do, starting nothing"
out=$("$CLUSTERCTL" plan "$CONFIG" 2>&1); rc=$?
echo "$out"
expect_eq "plan exit status" "$rc" 0
expect_match "preflight shown" "$out" "^all checks passed"
for k in 1 2 3; do
  expect_match "rank $((k - 1)) on node$k" "$out" "^$((k - 1)) +node$k +\[[0-9]+,[0-9]+\) +\[[0-9]+,[0-9]+\) .* [0-9.]+ (B|KiB|MiB)$"
  expect_match "node$k fits" "$out" "^node$k +1 +.* yes$"
done
expect_match "not cut yet" "$out" "^shards: cut here by 'up' on first use in $CLUSTERCTL_CACHE_DIR/cut/stories260K-"
[ -f "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && fail "plan recorded a cluster" || pass "plan recorded nothing"
[ -d "$CLUSTERCTL_CACHE_DIR/cut" ] && fail "plan cut shards" || pass "plan cut nothing"
PLAN_JSON=$("$CLUSTERCTL" plan "$CONFIG" --json)
expect_eq "plan --json ranks" "$(json_get '.ranks.length' <<<"$PLAN_JSON")" 3
expect_eq "plan --json split" "$(json_get '.split.text' <<<"$PLAN_JSON")" "1,1,1"

echo "== up (first time: shards are cut and copied)"
t0=$(date +%s%N)
out=$("$CLUSTERCTL" up "$CONFIG" 2>&1); rc=$?
t1=$(date +%s%N)
echo "$out"
echo "(up took $(( (t1 - t0) / 1000000 )) ms)"
expect_eq "up exit status" "$rc" 0
expect_match "endpoint printed" "$out" "^cluster 'testcluster' is up: http://10\.77\.1\.1:8080 \(model 'stories260K', 3 rank\(s\) on 3 node\(s\)\)$"
for k in 1 2 3; do
  expect_match "node$k got its shard" "$out" "^  node$k: [0-9.]+ (B|KiB|MiB) copied \(shard, 0 already there\)"
  expect_no_match "node$k not reused" "$out" "^  node$k: 0 B copied"
done
expect_match "MPI pinned to tb0's network" "$out" "btl_tcp_if_include 10\.77\.2\.0/24 --mca oob_tcp_if_include 10\.77\.2\.0/24"
expect_match "yield (3 ranks share 2 cores)" "$out" "mpi_yield_when_idle 1"
expect_match "allow root" "$out" "--allow-run-as-root"
for k in 1 2 3; do
  [ -f "$D/cache/node$k"/stories260K-*/stories260K.rank$((k - 1))of3.gguf ] && pass "node$k holds rank $((k - 1))'s shard" ||
    fail "node$k has no rank $((k - 1)) shard in $D/cache/node$k"
  n=$(ls "$D/cache/node$k"/stories260K-*/ | wc -l)
  expect_eq "node$k holds only its own shard" "$n" 1
done
[ -f "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && pass "state file written" || fail "no state file in $CLUSTERCTL_STATE_DIR"
ENDPOINT=$(json_get .endpoint <"$CLUSTERCTL_STATE_DIR/testcluster.json")
expect_eq "state endpoint" "$ENDPOINT" "http://10.77.1.1:8080"
expect_eq "state model_id" "$(json_get .model_id <"$CLUSTERCTL_STATE_DIR/testcluster.json")" "stories260K"

# The plan's shard sizes are the cut's tensor bytes: each file is that plus its header.
for k in 1 2 3; do
  f=$(ls "$D/cache/node$k"/stories260K-*/stories260K.rank$((k - 1))of3.gguf)
  planned=$(json_get ".ranks[$((k - 1))].shard_bytes" <<<"$PLAN_JSON")
  size=$(stat -c %s "$f")
  [ "$planned" -le "$size" ] && [ $((size - planned)) -lt 1048576 ] && pass "rank $((k - 1)) shard: planned $planned of $size bytes" ||
    fail "rank $((k - 1)): plan said $planned bytes of tensors, the shard file has $size"
done
out=$("$CLUSTERCTL" plan "$CONFIG" --offline 2>&1)
expect_match "plan after up: already cut" "$out" "^shards: already cut in "

echo "== up again: already running"
out=$("$CLUSTERCTL" up "$CONFIG" 2>&1); rc=$?
echo "$out"
expect_eq "second up exit status" "$rc" 0
expect_match "says already running" "$out" "^cluster 'testcluster' is already running \(http://10\.77\.1\.1:8080.*nothing changed"
expect_no_match "no copy, no launch" "$out" "copied|launch on"

echo "== 64 greedy tokens through the cluster's API vs a local single-process run"
# (an empty state dir: `run` must not find the running cluster and send the prompt there)
local_json=$(CLUSTERCTL_STATE_DIR="$T/no-clusters" "$CLUSTERCTL" run "$MODEL" "Once upon a time" -n 64 --temp 0 --json); rc=$?
expect_eq "local run exit status" "$rc" 0
expect_no_match "the reference ran here, not on the cluster" "$local_json" '"endpoint"'

local_text=$(json_get .text <<<"$local_json")
local_ids=$(json_get .generated_ids <<<"$local_json")
declare -A before after
for k in 1 2 3; do for i in tb0 eth0; do before[$k.$i]=$(link_bytes $k $i); done; done
reply=$(curl -s --max-time 120 "$ENDPOINT/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":64,"temperature":0,"return_token_ids":true}')
for k in 1 2 3; do for i in tb0 eth0; do after[$k.$i]=$(link_bytes $k $i); done; done
echo "reply: $reply"
cluster_text=$(json_get '.choices[0].text' <<<"$reply")
expect_eq "same text as the local run" "$cluster_text" "$local_text"
cluster_ids=$(json_get '.choices[0].token_ids ?? null' <<<"$reply")
if [ "$cluster_ids" != "null" ] && [ -n "$cluster_ids" ]; then expect_eq "same token ids" "$cluster_ids" "$local_ids"
else echo "note: the API returned no token ids (return_token_ids not supported yet); compared the text"; fi
expect_eq "64 tokens generated" "$(json_get '.usage.completion_tokens' <<<"$reply")" "64"
# The generation's traffic: ranks exchange every layer's partial sums over tb0; eth0 carries the
# HTTP request and reply (node1 only). Bounds: tb0 moved at least 50 KB in total and at least 20x
# what eth0 moved; eth0 of node2/3 moved < 8 KB (nothing but stray ARP).
tb_total=0; eth_total=0
for k in 1 2 3; do
  read -r rb tb <<<"${before[$k.tb0]}"; read -r ra ta <<<"${after[$k.tb0]}"; dtb=$((ra - rb + ta - tb))
  read -r rb tb <<<"${before[$k.eth0]}"; read -r ra ta <<<"${after[$k.eth0]}"; deth=$((ra - rb + ta - tb))
  echo "node$k: tb0 $dtb bytes, eth0 $deth bytes during the generation"
  tb_total=$((tb_total + dtb)); eth_total=$((eth_total + deth))
  [ "$k" != 1 ] && { [ "$deth" -lt 8192 ] && pass "node$k: no MPI traffic on eth0" || fail "node$k: eth0 moved $deth bytes"; }
done
[ "$tb_total" -gt 51200 ] && pass "tb0 carried the MPI traffic ($tb_total bytes)" || fail "tb0 moved only $tb_total bytes"
[ "$tb_total" -gt $((20 * eth_total)) ] && pass "tb0 bytes >> eth0 bytes ($tb_total vs $eth_total)" ||
  fail "eth0 moved $eth_total bytes against tb0's $tb_total"

if "$CLUSTERCTL" run --help 2>&1 | grep -q -- "--endpoint"; then
  echo "== clusterctl run stories260K talks to the running cluster"
  remote_json=$("$CLUSTERCTL" run stories260K "Once upon a time" -n 64 --temp 0 --json); rc=$?
  expect_eq "run stories260K exit status" "$rc" 0
  expect_eq "run stories260K used the cluster" "$(json_get .endpoint <<<"$remote_json" | sed 's#/$##')" "$ENDPOINT"
  expect_eq "run stories260K: same text as local" "$(json_get .text <<<"$remote_json")" "$local_text"
fi

echo "== status"
out=$("$CLUSTERCTL" status); rc=$?
echo "$out"
expect_eq "status exit status" "$rc" 0
expect_match "answering" "$out" "^endpoint: +http://10\.77\.1\.1:8080 +answering$"
expect_match "split" "$out" "^ranks: +3, split 1,1,1$"
# compute, comm = on the link + waiting (ms per token), the link
ms=' +[0-9]+\.[0-9]+'
for k in 1 2 3; do expect_match "node$k on tb0, ms per token" "$out" "^node$k +10\.77\.1\.$k +1 +1$ms$ms$ms$ms +tb0 10\.77\.2\.$k$"; done
json=$("$CLUSTERCTL" status --json)
expect_eq "status --json: 3 nodes" "$(json_get '.nodes.length' <<<"$json")" "3"
expect_eq "status --json: all on tb0" "$(json_get '.nodes.map(n=>n.link_interface).join(",")' <<<"$json")" "tb0,tb0,tb0"
expect_eq "status --json: answering" "$(json_get .answering <<<"$json")" "true"
expect_match "status --json: tokens/s" "$json" '"tokens_per_second": [0-9.e+-]+'
expect_eq "status --json: compute and comm ms per token of every node" \
  "$(json_get '.nodes.every(n=>n.rank_figures[0].compute_ms_per_token>0&&n.rank_figures[0].comm_ms_per_token>0)' <<<"$json")" "true"
expect_eq "status --json: comm ms per token = on the link + waiting, on every node" \
  "$(json_get '.nodes.every(n=>{const f=n.rank_figures[0];return f.comm_link_ms_per_token>=0&&f.comm_wait_ms_per_token>=0&&Math.abs(f.comm_link_ms_per_token+f.comm_wait_ms_per_token-f.comm_ms_per_token)<=1e-6*f.comm_ms_per_token})' <<<"$json")" "true"

echo "== logs"
out=$("$CLUSTERCTL" logs); rc=$?
expect_eq "logs exit status" "$rc" 0
expect_match "rank 0 serving line" "$out" "clusterctl-worker: serving stories260K on http://"
out=$("$CLUSTERCTL" logs node2 2>&1)
expect_no_match "logs node2 has no rank 0 lines" "$out" "^\[[0-9]+,0\]<"
out=$("$CLUSTERCTL" logs node9 2>&1); rc=$?
expect_eq "logs of an unknown node fails" "$rc" 1
expect_match "names the nodes" "$out" "has no node 'node9' \(its nodes: node1, node2, node3\)"

echo "== down while node3's sshd is down: the job stops, but down says it could not check node3"
"$REPO/deploy/testcluster" sshd-stop 3
out=$("$CLUSTERCTL" down 2>&1); rc=$?
echo "$out"
"$REPO/deploy/testcluster" sshd-start 3
expect_eq "down with a node unreachable" "$rc" 1
expect_match "names the node" "$out" "^error: cluster 'testcluster' is not fully down: node3: cannot connect to check for leftovers \(.*connection refused"
[ -f "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && pass "state kept for a second down" || fail "state removed though node3 was not checked"

echo "== down"
t0=$(date +%s%N)
out=$("$CLUSTERCTL" down 2>&1); rc=$?
t1=$(date +%s%N)
echo "$out"
echo "(down took $(( (t1 - t0) / 1000000 )) ms)"
expect_eq "down exit status" "$rc" 0
expect_match "down checked every node" "$out" "^cluster 'testcluster' is down in [0-9.]+ s: no clusterctl-worker, orted or mpirun of it remains on node1, node2, node3$"
expect_no_job_processes "after down"
expect_no_sessions_left "after down"
[ -f "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && fail "state file left after down" || pass "state file removed"
out=$("$CLUSTERCTL" status); rc=$?
expect_eq "status of a cluster that is down" "$rc" 3
expect_match "status says not up" "$out" "no cluster is up"

echo "== up after down: the shards are reused, nothing copied (and this time the API wants a token)"
echo "test-token-$$" >"$T/token"
chmod 600 "$T/token"
sed -i "s#^  listen: .*#&\n  token_file: $T/token#" "$CONFIG"
# Under umask 000, here and in the nodes' ssh sessions (bash reads ~/.bashrc for a command run over
# ssh; the nodes' home is $D/home): the state and the token's copy stay private all the same.
echo "umask 000" >"$D/home/.bashrc"
rm -rf "$CLUSTERCTL_STATE_DIR" "$D/cache/node1/testcluster.log"  # made again by this up, under umask 000
t0=$(date +%s%N)
out=$(umask 000 && "$CLUSTERCTL" up "$CONFIG" 2>&1); rc=$?
t1=$(date +%s%N)
rm -f "$D/home/.bashrc"
echo "$out"
echo "(second up took $(( (t1 - t0) / 1000000 )) ms)"
expect_eq "up exit status" "$rc" 0
for k in 1 2 3; do expect_match "node$k: nothing copied" "$out" "^  node$k: 0 B copied, shard already on node"; done
expect_match "0 bytes in total" "$out" "^  0 B copied in total"
expect_match "cut reused" "$out" "shards reused from"
expect_eq "no token: 401" "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/v1/models")" "401"
expect_eq "the token: 200" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer test-token-$$" "$ENDPOINT/v1/models")" "200"
"$CLUSTERCTL" status >/dev/null
expect_eq "status answers with the token" "$?" "0"
# The token's copy on the head node: readable by its owner only, no checksum of it beside it.
TOKEN_COPY="$D/cache/node1/testcluster.token"
expect_eq "token copy on node1 is mode 600 (node's umask 000)" "$(stat -c %a "$TOKEN_COPY" 2>&1)" "600"
expect_eq "state folder is mode 700 (umask 000)" "$(stat -c %a "$CLUSTERCTL_STATE_DIR")" "700"
expect_eq "state files are mode 600 (umask 000)" "$(find "$CLUSTERCTL_STATE_DIR" -type f ! -perm 600 -printf '%m %p\n')" ""
# The job's log, which up makes in that session with no mode of its own, shows the umask was 000 there.
expect_eq "the node's sessions ran under umask 000 (the job's log is 666)" "$(stat -c %a "$D/cache/node1/testcluster.log" 2>&1)" "666"
[ -e "$D/cache/node1/.testcluster.token.sha256" ] && fail "a checksum of the token lies beside its copy" ||
  pass "no checksum of the token on node1"

echo "== a crashed job: status says it does not answer; up clears it away and starts again"
pid=$(json_get .mpirun_pid <"$CLUSTERCTL_STATE_DIR/testcluster.json")
kill -KILL "$pid"  # the namespaces share the machine's pid space: this is node1's mpirun
for _ in $(seq 50); do "$CLUSTERCTL" status >/dev/null 2>&1 || break; sleep 0.1; done
out=$("$CLUSTERCTL" status 2>&1); rc=$?
echo "$out" | tail -n 3
expect_eq "status of a crashed cluster" "$rc" 1
expect_match "status says not answering" "$out" "^cluster 'testcluster' is recorded as up but is NOT ANSWERING at http://10\.77\.1\.1:8080"
out=$("$CLUSTERCTL" up "$CONFIG" 2>&1); rc=$?
echo "$out" | grep -v "^launch on"
expect_eq "up after a crash" "$rc" 0
expect_match "up cleared the crashed job" "$out" "^cluster 'testcluster' is recorded as up \(http://10\.77\.1\.1:8080\) but does not answer; stopping what is left of it first$"
expect_match "up after a crash is up" "$out" "^cluster 'testcluster' is up: "
expect_eq "token copy mode 600 after the restart" "$(stat -c %a "$TOKEN_COPY" 2>&1)" "600"
out=$("$CLUSTERCTL" down 2>&1); rc=$?
expect_eq "second down" "$rc" 0
expect_no_job_processes "after the second down"
[ -e "$TOKEN_COPY" ] && fail "down left the token's copy $TOKEN_COPY" || pass "down removed the token's copy"
finish
