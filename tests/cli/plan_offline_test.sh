#!/usr/bin/env bash
# plan sizes a cluster that does not exist yet: a full-size sparse model (no disk used) and nodes
# whose `memory:` stands for what they will have. Two 16 GB nodes cannot hold Llama-3.1-70B Q4_K_M,
# and plan says which node is how much short; four can.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=${1:?usage: plan_offline_test.sh CLUSTERCTL SHARED_DIR}
SHARED=${2:?}
VOCAB=$SHARED/testdata/tokenizer/ggml-vocab-llama-bpe.gguf
require_shared_file "$VOCAB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$CTL" model synth --shape llama3-70b --type Q4_K_M --vocab "$VOCAB" --sparse --parts 2 "$dir/l70.gguf" >/dev/null
used_kib=$(du -sk "$dir" | cut -f1)
[ "$used_kib" -lt 65536 ] || { echo "FAIL: the sparse 70B model uses $used_kib KiB of disk"; exit 1; }

cluster() {  # cluster N: N nodes of 16 GB
  { echo "cluster: planned"; echo "model: $dir/l70-00001-of-00002.gguf"; echo "nodes:"
    for i in $(seq 1 "$1"); do
      printf '  - {name: mini%s, host: mini%s.local, memory: 16GB, link: {type: thunderbolt, interface: bridge0}}\n' "$i" "$i"
    done; } >"$dir/c$1.yaml"
}
cluster 2
rc=0; out=$("$CTL" plan "$dir/c2.yaml" --offline 2>&1) || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: plan of 2 x 16 GB exited $rc, expected 1"; echo "$out"; exit 1; }
for n in mini1 mini2; do
  grep -q "^$n is .* short: it needs .* and has 14.90 GiB" <<<"$out" || { echo "FAIL: no shortfall named for $n"; echo "$out"; exit 1; }
done
cluster 4
out=$("$CTL" plan "$dir/c4.yaml" --offline --json) || { echo "FAIL: plan of 4 x 16 GB refused"; echo "$out"; exit 1; }
python3 -c "
import json,sys
p=json.loads(sys.argv[1])
assert p['ok'] and all(n['fits'] for n in p['nodes']), p['nodes']
assert len(p['ranks']) == 4
print('4 x 16 GB: each node needs', [round(n['need_bytes']/2**30,2) for n in p['nodes']], 'GiB')
" "$out"
echo "plan sizes a cluster before it is bought: 2 x 16 GB refused by node, 4 x 16 GB fits"
