#!/usr/bin/env bash
# plan chooses the layout from the link (issue #17): on an emulated 300 us link replicated attention
# (one all-reduce per layer) wins and `layout: auto` runs it; over shared memory the all-reduces
# cost little and split attention (each node reads only its heads) wins. Each with its reason.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=${1:?usage: plan_layout_test.sh CLUSTERCTL SHARED_DIR}
SHARED=${2:?}
VOCAB=$SHARED/testdata/tokenizer/ggml-vocab-llama-bpe.gguf
require_shared_file "$VOCAB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export CLUSTERCTL_STATE_DIR=$dir/state CLUSTERCTL_CACHE_DIR=$dir/cache
mkdir -p "$CLUSTERCTL_STATE_DIR"
"$CTL" model synth --shape llama3-8b --type Q4_0 --vocab "$VOCAB" --sparse "$dir/l8.gguf" >/dev/null
# doctor's record of the nodes' speeds (what `clusterctl doctor` writes after probing them).
cat >"$CLUSTERCTL_STATE_DIR/node-speeds.cache" <<JSON
{"slow": {"n1": {"bandwidth_gb_s": 100, "compute_gflops": 800, "threads": 8},
          "n2": {"bandwidth_gb_s": 100, "compute_gflops": 800, "threads": 8}},
 "shm": {"box": {"bandwidth_gb_s": 100, "compute_gflops": 800, "threads": 8}}}
JSON
cat >"$dir/slow.yaml" <<YAML
cluster: slow
model: $dir/l8.gguf
layout: auto
defaults: {memory: 64GB, link: {type: ethernet, cidr: 10.9.0.0/24, emulate: 'latency=300us,bandwidth=10gbit'}}
nodes:
  - {name: n1, host: n1.local}
  - {name: n2, host: n2.local}
YAML
cat >"$dir/shm.yaml" <<YAML
cluster: shm
model: $dir/l8.gguf
layout: auto
nodes:
  - {name: box, host: localhost, ranks: 2, memory: 64GB}
YAML
check() {  # check FILE RECOMMENDED
  local out json
  out=$("$CTL" plan "$1" --offline) || { echo "FAIL: plan $1"; echo "$out"; exit 1; }
  grep -q "^  recommended: $2: the 32 all-reduces per token" <<<"$out" || { echo "FAIL: $1 does not recommend $2 with its reason"; echo "$out"; exit 1; }
  grep -q "^  up runs: $2 (layout: auto)" <<<"$out" || { echo "FAIL: $1: up would not run $2"; echo "$out"; exit 1; }
  grep "recommended:" <<<"$out"
  json=$("$CTL" plan "$1" --offline --json)
  python3 -c "
import json,sys
l=json.loads(sys.argv[1])['layout']
assert l['runs'] == sys.argv[2] and l['recommended'] == sys.argv[2], l
o={x['layout']: x for x in l['options']}
assert o['split-attention']['allreduces_per_token'] == 64 and o['replicated-attention']['allreduces_per_token'] == 32, o
assert o['replicated-attention']['node_kv_bytes'] > o['split-attention']['node_kv_bytes'], o
" "$json" "$2"
}
check "$dir/slow.yaml" replicated-attention
check "$dir/shm.yaml" split-attention
# A fixed layout runs as written, and plan says which one it would recommend instead.
sed -i 's/^layout: auto/layout: split-attention/' "$dir/slow.yaml"
out=$("$CTL" plan "$dir/slow.yaml" --offline)
grep -q "up runs: split-attention (layout: split-attention in" <<<"$out" || { echo "FAIL: fixed layout"; echo "$out"; exit 1; }
grep -q "set 'layout: replicated-attention'" <<<"$out" || { echo "FAIL: no hint"; echo "$out"; exit 1; }
# A bad value is refused with the choices.
sed -i 's/^layout: split-attention/layout: sideways/' "$dir/slow.yaml"
rc=0; out=$("$CTL" plan "$dir/slow.yaml" --offline 2>&1) || rc=$?
[ "$rc" != 0 ] && grep -q "unknown layout 'sideways'" <<<"$out" && grep -q "layout: auto" <<<"$out" || { echo "FAIL: bad layout accepted"; echo "$out"; exit 1; }
echo "plan: replicated attention on the emulated 300 us link, split attention over shared memory, each with its reason"
