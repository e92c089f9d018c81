#!/usr/bin/env bash
# `layout: replicated-attention` through `up` on this machine (issue #17): 2 ranks cut with every
# head on every rank serve the greedy tokens of a local one-process run, and the placement names
# the layout and its own cut.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=${1:?usage: up_layout_test.sh CLUSTERCTL CLUSTERCTL-WORKER SHARED_DIR}
WORKER=$(realpath "$2")
MODEL=$3/models/stories260K.gguf
require_shared_file "$MODEL"
T=$(mktemp -d)
export CLUSTERCTL_STATE_DIR=$T/state CLUSTERCTL_CACHE_DIR=$T/cache
PORT=$((20000 + RANDOM % 20000))
trap '"$CTL" down netlayout >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
cat >"$T/c.yaml" <<YAML
cluster: netlayout
model: $MODEL
layout: replicated-attention
nodes:
  - {name: local, host: localhost, ranks: 2, threads: 1, cache_dir: $T/nodecache, worker: $WORKER}
api:
  listen: 127.0.0.1:$PORT
YAML
out=$("$CTL" up "$T/c.yaml" 2>&1) || { echo "FAIL: up"; echo "$out"; exit 1; }
grep -q "^placement: 2 rank(s), split 1,1, replicated-attention; shards cut into .*-2r-even-replicated-attention" <<<"$out" ||
  { echo "FAIL: placement does not name the layout"; echo "$out"; exit 1; }
reply=$(curl -s --max-time 60 "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":48,"temperature":0}')
cluster=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['choices'][0]['text'])" "$reply")
local_json=$(CLUSTERCTL_STATE_DIR="$T/none" "$CTL" run "$MODEL" "Once upon a time" -n 48 --temp 0 --json 2>/dev/null)
expected=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['text'])" "$local_json")
[ "$cluster" = "$expected" ] || { echo "FAIL: replicated attention on 2 ranks differs from one process"; echo "cluster: $cluster"; echo "local:   $expected"; exit 1; }
"$CTL" down netlayout >/dev/null
echo "up with layout: replicated-attention: 2 ranks serve one process's greedy text"
