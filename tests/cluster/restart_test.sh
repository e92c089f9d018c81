#!/usr/bin/env bash
# `restart: on-failure` (issue #19, acceptance 2), on the 3-node test cluster (ctest fixture
# `testcluster`): node3 dies (its rank killed with SIGKILL and its sshd stopped, so it cannot be
# reached) -> without a human the supervisor stops what is left, re-plans over node1 and node2 and
# brings the cluster up again; the API answers with the same greedy text as a local run; `status`
# shows the restart (and while it restarts, that it does); `down` ends the supervisor and leaves
# nothing running anywhere.
# Usage: restart_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
require_node
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)
CONFIG="$T/testcluster-3.yaml"
testcluster_config "$MODEL" "$CONFIG" -e "s#^defaults:#restart: on-failure\ndefaults:#"
cleanup() { "$REPO/deploy/testcluster" sshd-start 3 >/dev/null 2>&1; "$CLUSTERCTL" down testcluster >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
ENDPOINT=http://10.77.1.1:8080
complete() {
  curl -s --max-time 60 "$ENDPOINT/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":32,"temperature":0}'
}

echo "== up with restart: on-failure"
out=$("$CLUSTERCTL" up "$CONFIG" 2>&1); rc=$?
echo "$out" | grep -v "^launch on"
expect_eq "up exit status" "$rc" 0
expect_match "supervisor started" "$out" "^restart: on-failure: supervisor pid [0-9]+ restarts it over the nodes that remain"
SUPERVISOR=$(json_get .supervisor_pid <"$CLUSTERCTL_STATE_DIR/testcluster.json")
kill -0 "$SUPERVISOR" 2>/dev/null && pass "the supervisor runs" || fail "no supervisor process $SUPERVISOR"
local_text=$(CLUSTERCTL_STATE_DIR="$T/none" "$CLUSTERCTL" run "$MODEL" "Once upon a time" -n 32 --temp 0 --json | json_get .text)
expect_eq "3 nodes: the local run's text" "$(complete | json_get '.choices[0].text')" "$local_text"

echo "== node3 dies: its rank killed, its sshd stopped"
rank3=$(for p in $(ip netns pids node3); do case "$(cat /proc/$p/comm 2>/dev/null)" in clusterctl-wor*) echo "$p" ;; esac; done | head -n1)
[ -n "$rank3" ] || fail "no rank on node3"
"$REPO/deploy/testcluster" sshd-stop 3
t0=$(date +%s%N)
kill -KILL "$rank3"
went_down="" back="" recorded="" unsupervised=""
# `status` over and over meanwhile, as a user would run it.
(while :; do "$CLUSTERCTL" status >>"$T/status.log" 2>&1; sleep 0.1; done) &
status_loop=$!
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 120000 ]; do
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$ENDPOINT/health")
  # The record never loses its supervisor (else `down` during the restart would leave it running),
  # and says while the restart is under way that it is.
  record=$(json_get '["supervisor_pid"] + " " + (JSON.parse(s).restarting ? "restarting" : "")' \
    <"$CLUSTERCTL_STATE_DIR/testcluster.json" 2>/dev/null)
  [ "${record%% *}" = "$SUPERVISOR" ] || unsupervised=1
  [ "${record#* }" = restarting ] && recorded=1
  if [ "$code" != 200 ]; then went_down=1; elif [ -n "$went_down" ]; then back=$(( ($(date +%s%N) - t0) / 1000000 )); break; fi
  sleep 0.2
done
kill "$status_loop" 2>/dev/null
wait "$status_loop" 2>/dev/null
[ -n "$recorded" ] && pass "the state recorded that the supervisor was restarting the job" ||
  fail "the state never said the job was being restarted"
grep -m1 "^restart: *RESTARTING since " "$T/status.log" && pass "status said RESTARTING (and why) during the restart" ||
  { fail "status never said the job was being restarted"; grep -E "^restart|^cluster|^endpoint" "$T/status.log" | sort | uniq -c | head; }
[ -z "$unsupervised" ] && pass "the state named the supervisor throughout the restart" ||
  fail "the state lost the supervisor's pid during the restart"
echo "API answering again ${back:-never} ms after node3 died"
[ -n "$back" ] && pass "the cluster answers again without a human (time to recovery ${back} ms)" ||
  { fail "the cluster did not come back within 120 s"; cat "$CLUSTERCTL_STATE_DIR/testcluster.supervisor.log"; }
cat "$CLUSTERCTL_STATE_DIR/testcluster.supervisor.log" | grep -v "^launch on\|^  node"
expect_eq "2 nodes: the local run's text" "$(complete | json_get '.choices[0].text')" "$local_text"
# The restarted job answers before the supervisor's up has recorded it: wait for the record.
for _ in $(seq 1 150); do
  out=$("$CLUSTERCTL" status 2>&1); rc=$?
  grep -q "1 restart(s)" <<<"$out" && break
  sleep 0.2
done
echo "$out"
expect_eq "status exit status" "$rc" 0
expect_match "status: 2 ranks" "$out" "^ranks: +2, split 1,1$"
expect_match "status: the restart" "$out" "^restart: +on-failure \(supervisor pid $SUPERVISOR\), 1 restart\(s\), last: node3 lost; running on 2 node\(s\), 2 rank\(s\); [0-9.]+ s to recover$"
expect_no_match "node3 no longer part of it" "$out" "^node3 "

echo "== down: the supervisor and the job end, nothing is left"
"$REPO/deploy/testcluster" sshd-start 3
out=$("$CLUSTERCTL" down 2>&1); rc=$?
echo "$out"
expect_eq "down exit status" "$rc" 0
expect_match "supervisor stopped" "$out" "^stopped the supervisor \(pid $SUPERVISOR\)$"
expect_match "down checked the nodes left" "$out" "^cluster 'testcluster' is down in [0-9.]+ s: no clusterctl-worker, orted or mpirun of it remains on node1, node2$"
sleep 0.5
kill -0 "$SUPERVISOR" 2>/dev/null && fail "the supervisor still runs" || pass "no supervisor left"
pgrep -f "clusterctl supervise testcluster" >/dev/null && fail "a 'clusterctl supervise' process is left" || pass "no 'clusterctl supervise' anywhere"
expect_no_job_processes "after down"
expect_no_sessions_left "after down"
finish
