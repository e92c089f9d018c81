#!/usr/bin/env bash
# Soak (not in CI; figures for the issue note): CLIENTS concurrent clients send greedy completions
# to the 3-node test cluster (restart: on-failure) for DURATION seconds; halfway through node3
# dies (its rank killed, its sshd stopped). Prints: requests answered / failed before, during and
# after the restart, time to recovery, latency p50/p99, and rank 0's RSS and open fds over time.
# Every answered greedy request must carry the same text.
# Usage (root, test cluster up, run under flock /tmp/clusterctl-testcluster.lock):
#   tests/soak/cluster_restart_soak.sh BUILD_DIR [DURATION_S=300] [CLIENTS=4]
set -uo pipefail
BUILD=$(realpath "$1"); DURATION=${2:-300}; CLIENTS=${3:-4}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CLUSTERCTL=$BUILD/controller/clusterctl WORKER=$BUILD/worker/clusterctl-worker
D=/tmp/clusterctl-testcluster
T=$(mktemp -d)
export CLUSTERCTL_STATE_DIR="$T/state" CLUSTERCTL_CACHE_DIR="$T/controller-cache"
MODEL=$(cd "$REPO/configs" && realpath -m ../../shared/models/stories260K.gguf)
sed -e "s#^model: .*#model: $MODEL#" -e "s#^defaults:#restart: on-failure\ndefaults:\n  worker: $WORKER#" \
  "$REPO/configs/testcluster-3.yaml" >"$T/c.yaml"
trap '"$REPO/deploy/testcluster" sshd-start 3 >/dev/null 2>&1; "$CLUSTERCTL" down testcluster >/dev/null 2>&1; rm -rf "$T"' EXIT
"$CLUSTERCTL" up "$T/c.yaml" >"$T/up.log" 2>&1 || { cat "$T/up.log"; exit 1; }
E=http://10.77.1.1:8080
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rank0() { for p in $(ip netns pids node1); do case "$(cat /proc/$p/comm 2>/dev/null)" in clusterctl-wor*) echo "$p"; return ;; esac; done; }
client() {  # one line per request: start_ms end_ms http_code completion_tokens text_hash
  local end=$1 out=$2
  while [ "$(now_ms)" -lt "$end" ]; do
    local t0 r code
    t0=$(now_ms)
    r=$(curl -s -m 60 -w '\n%{http_code}' "$E/v1/completions" -H 'Content-Type: application/json' \
      -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":48,"temperature":0}')
    code=$(tail -n1 <<<"$r")
    echo "$t0 $(now_ms) ${code:-000} $(grep -o '"completion_tokens":[0-9]*' <<<"$r" | cut -d: -f2) $(grep -o '"text":"[^"]*"' <<<"$r" | md5sum | cut -c1-8)" >>"$out"
    [ "$code" = 200 ] || sleep 0.2
  done
}
start=$(now_ms); end=$((start + DURATION * 1000))
for c in $(seq "$CLIENTS"); do client "$end" "$T/client.$c" & done
: >"$T/mem"
sample() { local p; p=$(rank0); [ -n "$p" ] && echo "$(now_ms) $p $(awk '/VmRSS/ {print $2}' /proc/$p/status) $(ls /proc/$p/fd | wc -l)" >>"$T/mem"; }
kill_at=$((start + DURATION * 500)); killed=""
while [ "$(now_ms)" -lt "$end" ]; do
  sample
  if [ -z "$killed" ] && [ "$(now_ms)" -ge "$kill_at" ]; then
    r3=$(for p in $(ip netns pids node3); do case "$(cat /proc/$p/comm)" in clusterctl-wor*) echo "$p" ;; esac; done | head -n1)
    "$REPO/deploy/testcluster" sshd-stop 3; killed=$(now_ms); kill -KILL "$r3"
  fi
  sleep 2
done
wait
cat "$T"/client.* | sort -n >"$T/all"
back=$(awk -v k="$killed" '$1 > k && $3 == 200 {print $1; exit}' "$T/all")
echo "duration ${DURATION} s, ${CLIENTS} clients, node3 killed at +$(( (killed - start) / 1000 )) s"
awk -v k="$killed" -v b="${back:-0}" '
  { phase = ($1 < k) ? "before" : ($1 < b ? "during" : "after"); n[phase]++; if ($3 == 200) ok[phase]++; else bad[phase]++
    if ($3 == 200) h[$5]++; else codes[$3]++ }
  END {
    for (p in n) printf "%-7s requests %d: %d answered, %d failed\n", p, n[p], ok[p], bad[p]
    for (x in h) texts++; printf "distinct greedy texts among answered requests: %d\n", texts
    for (c in codes) printf "failed with HTTP %s (000: no answer): %d\n", c, codes[c]
  }' "$T/all"
for phase in before after; do
  awk -v k="$killed" -v b="${back:-0}" -v ph="$phase" '$3 == 200 && ((ph == "before" && $1 < k) || (ph == "after" && $1 >= b)) {print $2 - $1}' "$T/all" |
    sort -n | awk -v ph="$phase" '{a[NR] = $1} END {if (NR) {i = int(NR * 0.99) + 1; if (i > NR) i = NR; printf "%s: latency p50 %d ms, p99 %d ms (%d requests)\n", ph, a[int(NR * 0.5) + 1], a[i], NR}}'
done
echo "time to recovery (node3 killed -> first answered request): $(( ${back:-0} - killed )) ms"
grep "restarted" "$CLUSTERCTL_STATE_DIR/testcluster.supervisor.log"
echo "rank 0 (pid, RSS KiB, fds) first/last sample of each job:"
awk '{ if ($2 != last) { if (prev) print "  last  " prev; print "  first " $0; last = $2 } prev = $0 } END { print "  last  " prev }' "$T/mem"
