#!/usr/bin/env bash
# A lost link is not a silent hang (issue #19, acceptance 2), on the 3-node test cluster (ctest
# fixture `testcluster`): with the default liveness settings, node3's cluster link (tb0) taken
# down while requests stream -> within 15 s the request in flight ends with an error naming
# node3, /health answers 503 naming it, a new request gets 503 and `status` marks node3 LOST;
# the job then ends by itself, `status` still names node3 (from the log), and after `down`
# nothing is left running on any node. Before that, acceptance 3: each rank of the idle cluster
# uses under 2 % of a core over 60 s.
# Usage: liveness_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)
[ -f "$MODEL" ] || { echo "FAIL: $MODEL is missing"; exit 1; }
CONFIG="$T/testcluster-3.yaml"
testcluster_config "$MODEL" "$CONFIG"
LOAD_PID=""
cleanup() {
  [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null
  ip -n node3 link set tb0 up 2>/dev/null
  "$CLUSTERCTL" down testcluster >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT

echo "== up (default liveness: heartbeat every 1 s, a node silent 6 s is lost)"
out=$("$CLUSTERCTL" up "$CONFIG" 2>&1); rc=$?
echo "$out" | grep -v "^  node[0-9]: .*copied"
expect_eq "up exit status" "$rc" 0
expect_match "heartbeat over the link's network" "$out" "--heartbeat-link 10\.77\.2\.0/24 --heartbeat-interval 1 --node-timeout 6"
ENDPOINT=http://10.77.1.1:8080

echo "== idle (acceptance 3): 60 s without a request, each rank under 2 % of a core"
curl -s --max-time 60 "$ENDPOINT/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"stories260K","prompt":"Once","max_tokens":8,"temperature":0}' >/dev/null  # through a step first
sleep 1
# CPU ticks (user + system) of node K's rank, from /proc/PID/stat (the namespaces share one pid space).
rank_pid() { for p in $(ip netns pids "node$1"); do case "$(cat /proc/$p/comm 2>/dev/null)" in clusterctl-wor*) echo "$p"; return ;; esac; done; }
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
declare -A pid0 tick0
for k in 1 2 3; do pid0[$k]=$(rank_pid $k); tick0[$k]=$(ticks "${pid0[$k]}"); done
t_idle=$(date +%s%N)
sleep 60
wall_ms=$(( ($(date +%s%N) - t_idle) / 1000000 ))
hz=$(getconf CLK_TCK)
for k in 1 2 3; do
  used=$(( $(ticks "${pid0[$k]}") - tick0[$k] ))
  # percent of one core, in hundredths: ticks / hz / wall_s * 100 * 100
  pct100=$(( used * 100 * 100 * 1000 / hz / wall_ms ))
  printf 'node%d rank: %d ticks in %d ms idle = %d.%02d %% of a core\n' "$k" "$used" "$wall_ms" $((pct100 / 100)) $((pct100 % 100))
  [ "$pct100" -lt 200 ] && pass "node$k's rank idles under 2 % of a core" || fail "node$k's rank used $((pct100 / 100)).$((pct100 % 100)) % of a core while idle"
done

# Requests one after another, each streamed to its own file, until the test stops them.
load() {
  local i=0
  while :; do
    i=$((i + 1))
    curl -sN --max-time 60 "$ENDPOINT/v1/completions" -H 'Content-Type: application/json' \
      -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":400,"temperature":0,"stream":true}' \
      >"$T/stream.$i" 2>&1
    echo "rc $?" >>"$T/stream.$i"
  done
}
load &
LOAD_PID=$!
for _ in $(seq 100); do [ "$(grep -c '^data: {' "$T/stream.1" 2>/dev/null)" -ge 5 ] && break; sleep 0.1; done
[ "$(grep -c '^data: {' "$T/stream.1" 2>/dev/null)" -ge 5 ] && pass "a request streams tokens before the link goes down" ||
  fail "no tokens streamed"

echo "== node3's tb0 down mid-generation"
ip -n node3 link set tb0 down
t0=$(date +%s%N)
elapsed() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }
lost_ms="" status_ms=""
while [ "$(elapsed)" -lt 20000 ]; do
  if [ -z "$lost_ms" ] && grep -l "node3 (rank 2, 10\.77\.2\.3) is lost" "$T"/stream.* >/dev/null 2>&1; then lost_ms=$(elapsed); fi
  if [ -z "$status_ms" ]; then
    st=$("$CLUSTERCTL" status 2>&1)
    grep -Eq "^node3 .*LOST$" <<<"$st" && status_ms=$(elapsed) && status_out=$st
  fi
  [ -n "$lost_ms" ] && [ -n "$status_ms" ] && break
  sleep 0.3
done
kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; LOAD_PID=""
echo "request in flight failed after ${lost_ms:-never} ms; status named node3 after ${status_ms:-never} ms"
[ -n "$lost_ms" ] && [ "$lost_ms" -le 15000 ] && pass "the request in flight got an error naming node3 within 15 s" ||
  { fail "no request got an error naming node3 within 15 s"; tail -n 3 "$(ls -t "$T"/stream.* | head -n1)"; }
[ -n "$status_ms" ] && [ "$status_ms" -le 15000 ] && pass "status marked node3 LOST within 15 s" ||
  { fail "status did not mark node3 LOST within 15 s"; "$CLUSTERCTL" status; }
echo "$status_out"
expect_match "status says why" "$status_out" "node3 \(rank 2, 10\.77\.2\.3\) is lost: no heartbeat over the cluster link"
for k in 1 2; do expect_no_match "node$k not marked" "$status_out" "^node$k .*LOST"; done
h=$(curl -s -m 3 -w ' %{http_code}' "$ENDPOINT/health")
echo "health: $h"
expect_match "/health 503 names node3" "$h" "node3 \(rank 2, 10\.77\.2\.3\) is lost.* 503$"
r=$(curl -s -m 3 -w ' %{http_code}' "$ENDPOINT/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"stories260K","prompt":"Once","max_tokens":4}')
expect_match "a new request gets 503 at once" "$r" "cluster_unavailable.* 503$"

echo "== the job ends by itself; status still names node3"
for _ in $(seq 100); do curl -s -m 1 -o /dev/null "$ENDPOINT/health" || break; sleep 0.2; done
out=$("$CLUSTERCTL" status 2>&1); rc=$?
echo "$out" | tail -n 6
expect_eq "status of the ended job" "$rc" 1
expect_match "status names node3 from the log" "$out" "^node3 .*LOST$"
expect_match "the log's error" "$out" "NOT ANSWERING .*node3 \(rank 2, 10\.77\.2\.3\) is lost"

echo "== link back up, down"
ip -n node3 link set tb0 up
out=$("$CLUSTERCTL" down 2>&1); rc=$?
echo "$out"
expect_eq "down exit status" "$rc" 0
expect_no_job_processes "after down"
expect_no_sessions_left "after down"
finish
