#!/usr/bin/env bash
# `layout: auto` survives a restart (issue #17): with `restart: on-failure` the supervisor resolves
# auto over the nodes that remain as `up` does (plan's choice from the recorded node speeds and the
# link), rather than falling back to split attention. On this machine: 2 ranks on an emulated
# 2 ms link, where replicated attention (one all-reduce per layer) wins; a rank is killed; the
# restarted job must be cut replicated again and serve one process's greedy text.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
source "$(dirname "${BASH_SOURCE[0]}")/local_up_lib.sh"
local_up_start relayout "$@"
mkdir -p "$CLUSTERCTL_STATE_DIR"
# doctor's record of the node's speed (what `clusterctl doctor` writes after probing it).
echo '{"relayout": {"local": {"bandwidth_gb_s": 10, "compute_gflops": 100, "threads": 1}}}' \
  >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
cat >"$T/c.yaml" <<YAML
cluster: relayout
model: $MODEL
layout: auto
restart: on-failure
nodes:
  - {name: local, host: localhost, ranks: 2, threads: 1, cache_dir: $T/nodecache, worker: $WORKER,
     link: {type: ethernet, interface: lo, emulate: "latency=2ms,bandwidth=10gbit"}}
api:
  listen: 127.0.0.1:$PORT
YAML
fail() { echo "FAIL: $1"; shift; for f in "$@"; do cat "$f" 2>/dev/null || echo "$f"; done; exit 1; }
"$CTL" up "$T/c.yaml" >"$T/up.log" 2>&1 || fail "up" "$T/up.log"
grep -q "^layout: auto -> replicated-attention: " "$T/up.log" || fail "up did not resolve auto to replicated" "$T/up.log"
grep -q "^placement: 2 rank(s), split 1,1, replicated-attention" "$T/up.log" || fail "up's placement" "$T/up.log"
expected=$(one_process_greedy_text 32)
[ "$(api_greedy_text 32)" = "$expected" ] || fail "the first job's text differs from one process's"
# A rank dies: the supervisor restarts the job.
mpirun=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['mpirun_pid'])" "$CLUSTERCTL_STATE_DIR/relayout.json")
rank=$(for p in $(pgrep -P "$mpirun"); do case "$(cat /proc/$p/comm 2>/dev/null)" in clusterctl-wor*) echo "$p" ;; esac; done | tail -n1)
[ -n "$rank" ] || fail "no rank under mpirun $mpirun"
kill -KILL "$rank"
log=$CLUSTERCTL_STATE_DIR/relayout.supervisor.log
for _ in $(seq 1 300); do
  grep -q "restarted: " "$log" 2>/dev/null && break
  sleep 0.2
done
grep -q "restarted: " "$log" || fail "the supervisor did not restart the job within 60 s" "$log"
grep -q "^layout: auto -> replicated-attention: " "$log" || fail "the restart did not resolve layout: auto" "$log"
grep -q "^placement: 2 rank(s), split 1,1, replicated-attention" "$log" ||
  fail "the restarted job is not cut replicated" "$log"
[ "$(api_greedy_text 32)" = "$expected" ] || fail "the restarted job's text differs from one process's"
"$CTL" down relayout >/dev/null
echo "restart: on-failure resolves layout: auto as up does (replicated attention on the 2 ms link), same text"
