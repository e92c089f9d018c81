#!/usr/bin/env bash
# `layout: replicated-attention` through `up` on this machine (issue #17): 2 ranks cut with every
# head on every rank serve the greedy tokens of a local one-process run, and the placement names
# the layout and its own cut. The link names no transport: `up` runs plan's, here tcp, which the
# all-reduce table (as `bench net` writes it) measured fastest for 2 ranks. The link's other keys
# reach the ranks' command line (overlap_prompt: off as --overlap-prompt off).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
source "$(dirname "${BASH_SOURCE[0]}")/local_up_lib.sh"
local_up_start netlayout "$@"
export CLUSTERCTL_NET_TABLE=$T/table
printf '2 max one-shot tcp\n' >"$T/table"
cat >"$T/c.yaml" <<YAML
cluster: netlayout
model: $MODEL
layout: replicated-attention
nodes:
  - {name: local, host: localhost, ranks: 2, threads: 1, cache_dir: $T/nodecache, worker: $WORKER,
     link: {type: ethernet, interface: lo, allreduce: one-shot, overlap_prompt: 'off'}}
api:
  listen: 127.0.0.1:$PORT
YAML
out=$("$CTL" up "$T/c.yaml" 2>&1) || { echo "FAIL: up"; echo "$out"; exit 1; }
grep -q "^placement: 2 rank(s), split 1,1, replicated-attention; shards cut into .*-2r-even-replicated-attention" <<<"$out" ||
  { echo "FAIL: placement does not name the layout"; echo "$out"; exit 1; }
grep -q "^transport: auto -> tcp: bench net's table ($T/table) measured one-shot over tcp" <<<"$out" ||
  { echo "FAIL: up does not run plan's transport"; echo "$out"; exit 1; }
grep -q -- "--transport tcp" <<<"$out" || { echo "FAIL: the ranks are not given --transport tcp"; echo "$out"; exit 1; }
grep -q -- "--overlap-prompt off" <<<"$out" || { echo "FAIL: the link's overlap_prompt: off is not passed"; echo "$out"; exit 1; }
cluster=$(api_greedy_text 48)
expected=$(one_process_greedy_text 48)
[ "$cluster" = "$expected" ] || { echo "FAIL: replicated attention on 2 ranks differs from one process"; echo "cluster: $cluster"; echo "local:   $expected"; exit 1; }
"$CTL" down netlayout >/dev/null
echo "up with layout: replicated-attention over plan's tcp transport: 2 ranks serve one process's greedy text"
