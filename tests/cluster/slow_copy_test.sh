#!/usr/bin/env bash
# `up` over a slow link (issue #19): node2's eth0, which SSH and so the shard copy take, limited
# to 500 kbit/s with tbf (netem is not in every kernel; a rate is all this needs). The whole shard
# fits in one SSH window, so every byte is handed to SSH at once and the end of the copy waits for
# the link: that wait must not end the copy with "stopped after N bytes (exit status 0)" when the
# node got everything. Then `up` answers and `down` leaves nothing.
# Usage: slow_copy_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
command -v tc >/dev/null || { echo "SKIP: tc (iproute2) is missing"; exit 77; }
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)
CONFIG="$T/testcluster-3.yaml"
testcluster_config "$MODEL" "$CONFIG"
trap 'unlimit_node_link 2; "$CLUSTERCTL" down testcluster >/dev/null 2>&1; rm -rf "$T"' EXIT
rm -rf "$D"/cache/node2/stories260K-*  # node2 must receive its whole shard

limit_node_link 2 500kbit
echo "== up with node2's eth0 at 500 kbit/s"
t0=$(date +%s%N)
out=$("$CLUSTERCTL" up "$CONFIG" 2>&1); rc=$?
echo "$out" | grep -v "^launch on"
echo "(up took $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
expect_eq "up exit status" "$rc" 0
expect_match "node2 got its whole shard" "$out" "^  node2: [0-9.]+ KiB copied \(shard, 0 already there\)"
expect_no_match "no copy error" "$out" "stopped after|did not finish writing"
f=$(ls "$D/cache/node2"/stories260K-*/stories260K.rank1of3.gguf 2>/dev/null)
[ -n "$f" ] && expect_eq "node2's shard is the cut" "$(sha256sum <"$f")" \
  "$(sha256sum <"$(ls "$CLUSTERCTL_CACHE_DIR"/cut/stories260K-*/stories260K.rank1of3.gguf)")" || fail "no shard on node2"
expect_eq "no partial left on node2" "$(ls -a "$D/cache/node2"/stories260K-*/ | grep -c partial)" "0"
unlimit_node_link 2
reply=$(curl -s --max-time 60 http://10.77.1.1:8080/v1/completions -H 'Content-Type: application/json' \
  -d '{"model":"stories260K","prompt":"Once","max_tokens":8,"temperature":0}')
expect_match "the cluster answers" "$reply" '"completion_tokens":8'
out=$("$CLUSTERCTL" down 2>&1); rc=$?
expect_eq "down exit status" "$rc" 0
expect_no_job_processes "after down"
expect_no_sessions_left "after down"
finish
