#!/usr/bin/env bash
# plan's figures for the clusters the big models are bought for, checked against numbers this test
# computes itself: full-size sparse DeepSeek-V3 Q4_K_M, Kimi-K2 Q4_K_M and Q2_K over 4 x 512 GB and
# 8 x 192 GB (and 4 x 128 GB, which Kimi-K2 Q4_K_M does not fit). From the file's tensor table (names, shapes, types; `inspect --json`) and ggml's block
# sizes, each node holds the replicated tensors whole (norms, the latent and low-rank-query
# projections, routers, the embedding) and 1/N of every other (heads, dense and shared FFN, routed
# experts, output rows: all divide evenly at these shapes); the KV cache is the latent, on every
# node: layers x (kv_lora_rank + rope_dim) x 2 bytes x context x sequences.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=${1:?usage: plan_big_models_test.sh CLUSTERCTL SHARED_DIR}
SHARED=${2:?}
VOCAB=$SHARED/testdata/tokenizer/ggml-vocab-deepseek-llm.gguf
require_shared_file "$VOCAB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cluster() {  # cluster MODEL N MEMORY OUT
  { echo "cluster: planned"; echo "model: $1"; echo "context: 4096"; echo "nodes:"
    for i in $(seq 1 "$2"); do
      printf '  - {name: m%s, host: m%s.local, memory: %s, link: {type: thunderbolt, interface: bridge0}}\n' "$i" "$i" "$3"
    done; } >"$4"
}

for model in deepseek-v3:Q4_K_M kimi-k2:Q4_K_M kimi-k2:Q2_K; do
  shape=${model%%:*} type=${model##*:}
  f="$dir/$shape-$type.gguf"
  "$CTL" model synth --shape "$shape" --type "$type" --vocab "$VOCAB" --pad-vocab --sparse "$f" >/dev/null
  "$CTL" inspect --json "$f" >"$dir/inspect.json"
  for nodes in 4x512GB 8x192GB 4x128GB; do
    n=${nodes%%x*} mem=${nodes##*x}
    cluster "$f" "$n" "$mem" "$dir/c.yaml"
    rc=0
    "$CTL" plan "$dir/c.yaml" --offline --json >"$dir/plan.json" || rc=$?
    python3 - "$dir/inspect.json" "$dir/plan.json" "$n" "$mem" "$rc" "$shape $type" <<'PY'
import json, re, sys
inspect, plan = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
n, mem, rc, name = int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
# ggml block sizes: (values per block, bytes per block)
BLOCK = {"F32": (1, 4), "F16": (1, 2), "Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_1": (32, 20),
         "Q5_0": (32, 22), "Q5_1": (32, 24), "Q2_K": (256, 84), "Q3_K": (256, 110),
         "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210)}
WHOLE = re.compile(r"(token_embd|_norm|attn_q_a|attn_kv_a_mqa|ffn_gate_inp|exp_probs_b|rope_freqs)\.")
whole = cut = 0
for t in inspect["tensors"]:
    per, nbytes = BLOCK[t["type"]]
    count = 1
    for d in t["shape"]: count *= d
    assert count % per == 0, t
    size = count // per * nbytes
    if WHOLE.search(t["name"]): whole += size
    else: cut += size
assert cut % n == 0, (name, cut, n)
shard = whole + cut // n
layers = inspect["n_layer"]
kv = layers * (512 + 64) * 2 * plan["context"] * plan["parallel"]
free = int(mem[:-2]) * 10**9
for node in plan["nodes"]:
    assert node["shard_bytes"] == shard, (name, node["name"], node["shard_bytes"], shard)
    assert node["kv_bytes"] == kv, (name, node["name"], node["kv_bytes"], kv)
    assert node["free_bytes"] == free and node["fits"] == (shard + kv <= free), (name, node)
assert plan["ok"] == (shard + kv <= free) and rc == (0 if plan["ok"] else 1), (name, plan["ok"], rc)
assert plan["model"]["bytes"] >= whole + cut
print(f"{name:15s} {n} x {mem}: {shard / 2**30:7.2f} GiB of shards + KV {kv / 2**30:.2f} GiB a node "
      f"({kv // (plan['context'] * plan['parallel'])} bytes a token), fits: {shard + kv <= free}")
PY
    if [ "$rc" = 1 ]; then
      out=$("$CTL" plan "$dir/c.yaml" --offline 2>&1) && { echo "FAIL: plan exited 0 as text, 1 as JSON"; exit 1; }
      grep -Eq "^m1 is [0-9.]+ GiB short: it needs [0-9.]+ GiB for its shards and KV cache and has 119.21 GiB" <<<"$out" ||
        { echo "FAIL: $shape $type on $nodes: no shortfall named for m1"; echo "$out"; exit 1; }
    fi
  done
  rm -f "$f"
done
echo "plan's per-node shards and KV cache equal the figures computed here for all 9 plans"
