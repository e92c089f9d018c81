#!/usr/bin/env bash
# plan --what-if answers "how many tokens/s would this cluster give" for nodes and links that do
# not exist, each line naming what limits it; bad --nodes/--link get one clear message; a cluster
# file's plan predicts from doctor's record of its nodes. No speed figure is asserted: only which
# term limits a pass when the link is made absurdly slow or fast.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=${1:?usage: plan_what_if_test.sh CLUSTERCTL SHARED_DIR}
SHARED=${2:?}
VOCAB=$SHARED/testdata/tokenizer/ggml-vocab-llama-bpe.gguf
require_shared_file "$VOCAB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export CLUSTERCTL_STATE_DIR=$dir/state
"$CTL" model synth --shape llama3-8b --type Q4_0 --vocab "$VOCAB" --sparse "$dir/l8.gguf" >/dev/null
fail() { echo "FAIL: $1"; echo "$2"; exit 1; }

out=$("$CTL" plan --what-if --nodes 2x64GB@273GB/s --link thunderbolt-bridge "$dir/l8.gguf") || fail "what-if refused" "$out"
grep -q "link: thunderbolt-bridge, 300 us" <<<"$out" || fail "no link line" "$out"
grep -Eq "^one-shot double +[0-9.]+ +(memory|compute|link latency|link bandwidth) [0-9]+ %" <<<"$out" ||
  fail "no one-shot double line with its limit" "$out"

limit() {  # limit LINK: the limiting term of the fastest single-stream decode on 2 nodes
  "$CTL" plan --what-if --nodes 2x64GB@273GB/s --link "$1" --json "$dir/l8.gguf" | python3 -c "
import json,sys
s=json.load(sys.stdin)['speed']
assert len(s['nodes']) == 2 and len(s['predictions']) == 12, s
for p in s['predictions']:
  for k in ('decode','decode_streams','prefill'):
    assert p[k]['tokens_per_s'] > 0 and p[k]['limit'] in ('memory','compute','link latency','link bandwidth'), p
print(s['predictions'][0]['decode']['limit'])"
}
[ "$(limit 1us,100gbyte)" = memory ] || fail "a near-free link does not leave memory as the limit" ""
[ "$(limit 5ms,100gbyte)" = "link latency" ] || fail "a 5 ms link is not latency-bound" ""
[ "$(limit 1us,1mbit)" = "link bandwidth" ] || fail "a 1 Mbit link is not bandwidth-bound" ""
out=$("$CTL" plan --what-if --nodes 1x64GB@100GB/s@1TFLOPS "$dir/l8.gguf") || fail "one node refused" "$out"
grep -Eq "^one rank +[0-9.]+ +memory" <<<"$out" || fail "one node is not memory-bound on decode" "$out"

# A tied embedding is the LM head too: each rank reads one row of it and multiplies only its own
# vocabulary slice, so two ranks read about half of what one does (counting it whole on every
# rank charged each of 2 ranks 0.98 GB a token against 0.76 GB for one).
"$CTL" model synth --shape llama3-1b --type Q4_0 --vocab "$VOCAB" --sparse "$dir/l1.gguf" >/dev/null
rank_bytes() {  # rank_bytes NODES [MODEL]: the largest rank's weight bytes a token on a near-free link
  "$CTL" plan --what-if --nodes "$1" --link 1us,100gbyte --json "$dir/${2:-l1}.gguf" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['speed']['largest_rank_bytes_per_token'])"
}
one=$(rank_bytes 1x64GB@100GB/s) two=$(rank_bytes 2x64GB@100GB/s)
python3 -c "import sys; sys.exit(0 if $two < 0.56 * $one else 1)" ||
  fail "2 ranks of a tied-embedding model each read $two bytes a token against $one for one rank" ""

# deepseek2's split attn_k_b/attn_v_b are 3-D like the routed experts but read whole every
# token: the split twin reads what the fused file's attn_kv_b does (counting them as experts read
# 1.6 % less on this toy, ~3 % on DeepSeek-V3).
for s in tiny-deepseek2-lite tiny-deepseek2-lite-split; do
  "$CTL" model synth --shape $s --type Q8_0 --vocab "$VOCAB" "$dir/$s.gguf" >/dev/null
done
fused=$(rank_bytes 1x64GB@100GB/s tiny-deepseek2-lite) split=$(rank_bytes 1x64GB@100GB/s tiny-deepseek2-lite-split)
python3 -c "import sys; sys.exit(0 if abs($split / $fused - 1) < 1e-3 else 1)" ||
  fail "the split deepseek2 toy reads $split bytes a token against $fused for its fused twin" ""

# Speculation: from the kept share the user measured; a draft pays where a pass costs round trips.
spec() {  # spec LINK: tokens/s with a prompt-lookup draft keeping 80 %, and plain, on 2 nodes
  "$CTL" plan --what-if --nodes 2x64GB@273GB/s --link "$1" --draft ngram --draft-acceptance 0.8 --json "$dir/l8.gguf" |
    python3 -c "
import json,sys
s=json.load(sys.stdin)['speed']['speculative']
assert s['k'] >= 1 and s['tokens_per_round'] > 1 and 0.8 < s['acceptance'] < 1, s
# A run of --tokens (128 unless given) pays for its first rounds, which draft 2 first.
assert s['tokens'] == 128 and s['opening_drafts'][0] == 2 and s['tokens_per_s'] < s['settled_tokens_per_s'], s
print(s['tokens_per_s'] / s['plain_tokens_per_s'] > 1.5)"
}
[ "$(spec 5ms,100gbyte)" = True ] || fail "speculation does not pay on a 5 ms link" ""
out=$("$CTL" plan --what-if --nodes 2x64GB@273GB/s --link 10gbe --draft ngram "$dir/l8.gguf") || fail "draft refused" "$out"
grep -q "not predicted without the share of drafts kept" <<<"$out" || fail "no hint for the kept share" "$out"

refused() {  # refused EXPECTED-TEXT ARGS...: plan exits non-zero with EXPECTED-TEXT in its message
  local want=$1; shift
  local rc=0 msg
  msg=$("$CTL" plan "$@" 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "plan $* was accepted" "$msg"
  grep -qF -- "$want" <<<"$msg" || fail "plan $*: message lacks '$want'" "$msg"
}
refused "--nodes '4x192GB': '4x192GB' lacks a count, memory or bandwidth; write COUNTxMEMORY@BANDWIDTH" \
  --what-if --nodes 4x192GB --link 10gbe "$dir/l8.gguf"
refused "'fastGB/s' is not a memory bandwidth" --what-if --nodes 2x64GB@fastGB/s --link 10gbe "$dir/l8.gguf"
refused "--link 'carrier-pigeon' is neither a preset (thunderbolt-bridge, 10gbe, 1gbe" \
  --what-if --nodes 2x64GB@273GB/s --link carrier-pigeon "$dir/l8.gguf"
refused "--link '300us,fast'" --what-if --nodes 2x64GB@273GB/s --link 300us,fast "$dir/l8.gguf"
refused "needs --link" --what-if --nodes 2x64GB@273GB/s "$dir/l8.gguf"
refused "add --what-if" --nodes 2x64GB@273GB/s "$dir/l8.gguf"
refused "--tokens must be 2 to 1000000" --what-if --nodes 1x64GB@100GB/s --draft ngram --tokens 1 "$dir/l8.gguf"
refused "--draft-acceptance needs a draft" --what-if --nodes 1x64GB@100GB/s --draft-acceptance 0.5 "$dir/l8.gguf"
refused "--draft-acceptance is the share of drafted tokens kept, 0 to 1" \
  --what-if --nodes 1x64GB@100GB/s --draft ngram --draft-acceptance 80 "$dir/l8.gguf"

# A cluster file: nothing predicted until doctor has measured the nodes; then from its record.
{ echo "cluster: lab"; echo "model: $dir/l8.gguf"; echo "nodes:"
  for i in 1 2; do
    printf '  - {name: n%s, host: n%s.local, memory: 64GB, link: {type: ethernet, interface: eth0}}\n' "$i" "$i"
  done; } >"$dir/lab.yaml"
out=$("$CTL" plan "$dir/lab.yaml" --offline) || fail "offline plan refused" "$out"
grep -q "not predicted: n1 has no measured bandwidth: run 'clusterctl doctor" <<<"$out" || fail "no doctor hint" "$out"
mkdir -p "$CLUSTERCTL_STATE_DIR"
echo '{"lab": {"n1": {"bandwidth_gb_s": 50, "compute_gflops": 400, "threads": 8, "method": "test"},
                "n2": {"bandwidth_gb_s": 50, "compute_gflops": 400, "threads": 8, "method": "test"}}}' \
  >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
out=$("$CTL" plan "$dir/lab.yaml" --offline --link 1gbe) || fail "offline plan with a record refused" "$out"
grep -q "n1 .*50.0 GB/s, 400 GFLOPS (doctor, 8 threads; memory: plain reads" <<<"$out" || fail "the record is not used" "$out"
grep -q "link: 1gbe" <<<"$out" || fail "--link is not used" "$out"
# A record without the probe's attention and element-wise figures (an older doctor): a stated
# fallback, not a crash. With them: a prompt's attention grows with the square of its length
# (512 tokens attend 64 x the positions of 64: 33 x at 64 and 512 positions a token per head,
# apart from the per-head cost), and where it is the largest term plan names it.
grep -q "n1 .*attention and element-wise work not measured (an older probe: run doctor again)" <<<"$out" ||
  fail "an older record's missing attention figures are not stated" "$out"
vector='"attention_head_ns": [0, 0], "attention_position_ns": [5, 8], "silu_ns": 5, "norm_ns": 1'
echo "{\"lab\": {\"n1\": {\"bandwidth_gb_s\": 50, \"compute_gflops\": 400, \"threads\": 8, $vector},
                \"n2\": {\"bandwidth_gb_s\": 50, \"compute_gflops\": 400, \"threads\": 8, $vector}}}" \
  >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
out=$("$CTL" plan "$dir/lab.yaml" --offline --link 1gbe) || fail "offline plan with attention figures refused" "$out"
! grep -q "attention and element-wise work not measured" <<<"$out" || fail "measured attention figures not used" "$out"
prefill_json() {
  "$CTL" plan "$dir/lab.yaml" --offline --link 1gbe --json --prefill-batch "$1" | python3 -c "
import json,sys; p=json.load(sys.stdin)['speed']['predictions'][0]['prefill']
assert abs(p['non_matmul_ms'] - p['attention_ms'] - p['elementwise_ms']) < 1e-9, p
print(p['attention_ms'], p['elementwise_ms'])"
}
read -r a64 e64 <<<"$(prefill_json 64)"
read -r a512 e512 <<<"$(prefill_json 512)"
python3 -c "import sys; sys.exit(0 if $a512 / $a64 > 40 and abs($e512 / $e64 - 8) < 1e-6 else 1)" ||
  fail "attention 64 -> 512 tokens: $a64 -> $a512 ms (expected > 40 x), element-wise $e64 -> $e512 (8 x)" ""
# A prompt's all-reduces overlap its matmuls in pieces (ForwardPass::add_row_parallel): over 1gbe
# a 512-token prefill hides link time, a decode pass none; the link's overlap_prompt: off, none.
overlap_json() {
  "$CTL" plan "$1" --offline --link 1gbe --json | python3 -c "
import json,sys; p=json.load(sys.stdin)['speed']['predictions'][0]
assert p['decode']['overlap_hidden_ms'] == 0, p
print(p['prefill']['overlap_hidden_ms'])"
}
hidden_on=$(overlap_json "$dir/lab.yaml")
sed "s/interface: eth0}/interface: eth0, overlap_prompt: 'off'}/" "$dir/lab.yaml" >"$dir/lab-off.yaml"
hidden_off=$(overlap_json "$dir/lab-off.yaml")
python3 -c "import sys; sys.exit(0 if $hidden_on > 0 and $hidden_off == 0 else 1)" ||
  fail "prefill overlap over 1gbe hides $hidden_on ms on, $hidden_off ms with overlap_prompt: off" ""
sed -i 's/"attention_position_ns": \[5, 8\]/"attention_position_ns": [5000, 8000]/g' "$CLUSTERCTL_STATE_DIR/node-speeds.cache"
out=$("$CTL" plan "$dir/lab.yaml" --offline --link 1gbe) || fail "offline plan with slow attention refused" "$out"
grep -Eq "^one-shot double .* non-matmul [0-9]+ %$" <<<"$out" || fail "the prefill's non-matmul limit is not named" "$out"
# With the decode stream (40 GB/s of Q4_0 weights, 3.5556 flops a byte, 400 GFLOPS in cache): the
# memory's bandwidth is the stream less its compute, (1/40^2.5 - (3.5556/400)^2.5)^(-1/2.5) = 41.3.
echo '{"lab": {"n1": {"bandwidth_gb_s": 50, "compute_gflops": 800, "decode_gflops": 400, "stream_gb_s": 40,
                       "stream_flops_per_byte": 3.5556, "threads": 8},
                "n2": {"bandwidth_gb_s": 50, "compute_gflops": 800, "threads": 8}}}' \
  >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
out=$("$CTL" plan "$dir/lab.yaml" --offline --link 1gbe) || fail "offline plan with a stream refused" "$out"
grep -q "n1 .*41.3 GB/s, 800 GFLOPS, decode 400 (doctor, 8 threads; memory: its decode stream of 40 GB/s" <<<"$out" ||
  fail "the decode stream is not used" "$out"
# Threads that outnumber the machine's cores (doctor probed the cores with as many ranks as fill them
# and recorded both): the ranks take turns, 3 threads on 2 cores at 0.75 of the cores' rate.
memory_ms() {
  "$CTL" plan "$dir/lab.yaml" --offline --link 1gbe --json | python3 -c "
import json,sys; print(json.load(sys.stdin)['speed']['predictions'][0]['decode']['memory_ms'])"
}
# takes_turns SED SAID SHARE WHAT: the record edited by SED (3 threads on 2 cores), plan must say
# SAID and read the memory in the time with a core each over SHARE.
takes_turns() {
  local whole
  whole=$(memory_ms)
  sed -i "$1" "$CLUSTERCTL_STATE_DIR/node-speeds.cache"
  out=$("$CTL" plan "$dir/lab.yaml" --offline --link 1gbe) || fail "offline plan with $4 refused" "$out"
  grep -q "$2" <<<"$out" || fail "$4: '$2' not said" "$out"
  python3 -c "import sys; sys.exit(0 if abs($(memory_ms) * $3 / $whole - 1) < 1e-6 else 1)" ||
    fail "3 threads on 2 cores, $4, read in $(memory_ms) ms against $whole ms with a core each" ""
}
takes_turns 's/"threads": 8}/"threads": 1, "cores": 2, "machine_threads": 3}/' \
  "n2 .*3 threads take turns on 2 cores: 75 % of their machine's rate" 0.75 "shared cores"
# With one rank alone measured faster than its share of the machine (96 GB/s of a 120 GB/s
# machine): the rank left for a last turn still runs at the machine's shared rate (the ranks of a
# turn interleave; throughput_model.h), 0.75 again.
node='"bandwidth_gb_s": 40, "compute_gflops": 800, "decode_gflops": 100, "threads": 1'
alone='"one_rank_bandwidth_gb_s": 96, "one_rank_decode_gflops": 150'
echo "{\"lab\": {\"n1\": {$node, $alone}, \"n2\": {$node, $alone}}}" >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
takes_turns 's/"threads": 1,/"threads": 1, "cores": 2, "machine_threads": 3,/' \
  "n1 .*3 threads take turns on 2 cores: 75 % of their machine's rate" 0.75 \
  "one rank alone at 0.8 of the machine (no faster for the last turn)"
# Each synchronisation hands the 2 cores over among the 3 threads: a record without the probe's
# figures takes the assumed ones (15 us with one thread beyond the cores), and says so; measured
# 500 us (with 1 beyond) and 900 (with 2) add, per all-reduce and per next-step exchange, 500 us
# less the 1gbe link's 120 us the ranks wait on it anyway.
out=$("$CTL" plan "$dir/lab.yaml" --offline --link 1gbe) || fail "offline plan with shared cores refused" "$out"
grep -q "75 % of their machine's rate, 15 us a synchronisation handing them over (not measured by an older probe: assumed)" \
  <<<"$out" || fail "the assumed handover is not said" "$out"
sed -i 's/"threads": 1,/"threads": 1, "handover_us": [500, 900],/' "$CLUSTERCTL_STATE_DIR/node-speeds.cache"
"$CTL" plan "$dir/lab.yaml" --offline --link 1gbe --json | python3 -c "
import json,sys; s=json.load(sys.stdin)['speed']; d=s['predictions'][0]['decode']
want=(s['allreduces_per_token'] + 2) * (500 - 120) / 1000
assert s['nodes'][0]['handover_per_sync_us'] == 500 and s['nodes'][0]['threads_beyond_cores'] == 1, s['nodes'][0]
assert abs(d['handover_ms'] - want) < 1e-9, (d['handover_ms'], want)" ||
  fail "a measured handover of 500 us is not added per synchronisation" ""
# doctor's record of the link between the nodes: plan takes it where no --link is given, and says so.
echo '{"lab": {"latency_us": 42, "bandwidth_gb_s": 2.5, "ranks": 2, "method": "all-reduces", "measured_at": 1796450000}}' \
  >"$CLUSTERCTL_STATE_DIR/link-speeds.cache"
out=$("$CTL" plan "$dir/lab.yaml" --offline) || fail "offline plan with a recorded link refused" "$out"
grep -Eq "link: measured by doctor, 42 us, 2.50 GB/s \(doctor, 20[0-9-]+ [0-9:]+ UTC: all-reduces\)" <<<"$out" ||
  fail "the recorded link is not used" "$out"
out=$("$CTL" plan "$dir/lab.yaml" --offline --link 1gbe) || fail "offline plan with --link refused" "$out"
grep -q "link: 1gbe" <<<"$out" || fail "--link does not win over the record" "$out"
# The pool meetings a decode token costs on 2 threads, as the engine runs it (model/pool_meetings.h):
# deepseek2's latent attention meets 3 times a layer with a plain q (q and kv_a, the heads, the
# output), 4 with a low-rank q (q_b); the dense layer's FFN 3, each MoE layer's experts 2 and the
# LM head 1; a router is no matmul (each token's thread sums it). 3 layers: 17 for the V2-Lite toy
# and its split twin, 20 for the V3 toy (counting every 2-D tensor, attn_kv_b and the routers too,
# said 22, 19 and 22). A meeting of 1 ms makes the count readable: meetings_ms + the probe's one
# per 4 MiB (bytes / 4 MiB) already paid.
"$CTL" model synth --shape tiny-deepseek3 --type Q8_0 --vocab "$VOCAB" "$dir/tiny-deepseek3.gguf" >/dev/null
meetings() {  # meetings MODEL: the decode token's pool meetings on one node of 2 threads
  printf 'cluster: toy\nmodel: %s\nnodes:\n  - {name: n1, host: n1.local, memory: 64GB, threads: 2}\n' \
    "$dir/$1.gguf" >"$dir/toy.yaml"
  echo '{"toy": {"n1": {"bandwidth_gb_s": 50, "compute_gflops": 400, "threads": 2, "meeting_us": 1000}}}' \
    >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
  "$CTL" plan "$dir/toy.yaml" --offline --json | python3 -c "
import json,sys
s=json.load(sys.stdin)['speed']
print(round(s['predictions'][0]['decode']['meetings_ms'] + s['largest_rank_bytes_per_token'] / (4 << 20), 6))"
}
for m in tiny-deepseek2-lite tiny-deepseek2-lite-split; do
  [ "$(meetings $m)" = 17.0 ] || fail "$m: a decode token meets the pool $(meetings $m) times, not 17" ""
done
[ "$(meetings tiny-deepseek3)" = 20.0 ] || fail "tiny-deepseek3: $(meetings tiny-deepseek3) meetings, not 20" ""
# A prompt's matmul costs what doctor's record says one costs between real tiles (prompt_meeting_us),
# once, where its two empty meetings cost meeting_us each: at 1 ms both, a prompt's meetings_ms
# falls by its matmuls' count (a whole number) beyond those the probe's 4 MiB matrices paid.
prompt_meetings_ms() {  # prompt_meetings_ms EXTRA_RECORD_FIELDS
  echo "{\"toy\": {\"n1\": {\"bandwidth_gb_s\": 50, \"compute_gflops\": 400, \"threads\": 2, \"meeting_us\": 1000$1}}}" \
    >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
  "$CTL" plan "$dir/toy.yaml" --offline --json --prefill-batch 64 | python3 -c "
import json,sys; print(json.load(sys.stdin)['speed']['predictions'][0]['prefill']['meetings_ms'])"
}
empty=$(prompt_meetings_ms "") real=$(prompt_meetings_ms ', "prompt_meeting_us": 1000')
python3 -c "
import sys
fewer = $empty - $real
sys.exit(0 if $real > 0 and fewer >= 1 and abs(fewer - round(fewer)) < 1e-6 else 1)" ||
  fail "prompt_meeting_us: a prompt's meetings $empty ms with empty meetings, $real ms with a prompt matmul's cost" ""
# Each weight type is read at its own decode stream's rate against Q4_0's (doctor's stream_ratios):
# the toy's matrices are Q8_0, so at a ratio of 0.5 its decode reads take twice as long (all but
# its F32 norms and routers); a ratio out of bounds or a name that is no type's is left out.
decode_memory_ms() {  # decode_memory_ms STREAM_RATIOS_JSON
  echo "{\"toy\": {\"n1\": {\"bandwidth_gb_s\": 50, \"compute_gflops\": 400, \"threads\": 2, \"stream_ratios\": $1}}}" \
    >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
  "$CTL" plan "$dir/toy.yaml" --offline --json | python3 -c "
import json,sys; print(json.load(sys.stdin)['speed']['predictions'][0]['decode']['memory_ms'])"
}
as_q4_0=$(decode_memory_ms '{}') half=$(decode_memory_ms '{"Q8_0": 0.5, "Q6_K": 2}')
bad=$(decode_memory_ms '{"Q8_0": 1e9, "Q8 0": 0.5, "Q4_0_and_a_very_long_name": 0.5}')
python3 -c "
import sys
sys.exit(0 if 1.9 < $half / $as_q4_0 <= 2 and $bad == $as_q4_0 else 1)" ||
  fail "stream_ratios: decode reads $as_q4_0 ms as Q4_0, $half ms with Q8_0 at half its rate, $bad ms with bad entries" ""
# A prompt's row-parallel matmuls sum in chunks (attn_output, ffn_down): doctor's record of their
# slowdown at chunks of 64 and 512 columns adds, at the file's own chunk widths, the time a flop
# grows by. llama3-8b on 2 ranks sums both in chunks of 512 (model::reduction_grid), so [2.0, 1.1]
# adds what [1.1, 1.1] adds: 0.1 x each rank's row-parallel flops (attn_output 4096 x 2048 and
# ffn_down 4096 x 7168 in 32 layers, 64 tokens) at 800 GFLOPS.
prefill_compute_ms() {  # prefill_compute_ms SLOWDOWN_AT_64 SLOWDOWN_AT_512
  local node="\"bandwidth_gb_s\": 50, \"compute_gflops\": 800, \"threads\": 8"
  [ $# -gt 0 ] && node+=", \"row_parallel\": {\"chunks\": [64, 512], \"slowdown\": [$1, $2]}"
  echo "{\"lab\": {\"n1\": {$node}, \"n2\": {$node}}}" >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
  "$CTL" plan "$dir/lab.yaml" --offline --link 1gbe --json --prefill-batch 64 | python3 -c "
import json,sys; print(json.load(sys.stdin)['speed']['predictions'][0]['prefill']['compute_ms'])"
}
plain=$(prefill_compute_ms) same=$(prefill_compute_ms 1.1 1.1) wide=$(prefill_compute_ms 2.0 1.1)
python3 -c "
import sys
want = 0.1 * 2 * 64 * (4096 * 2048 + 4096 * 7168) * 32 / 800e9 * 1e3
sys.exit(0 if abs($same - $plain - want) < 1e-6 and abs($wide - $same) < 1e-6 else 1)" ||
  fail "row-parallel slowdown: prefill compute $plain ms plain, $same ms at [1.1, 1.1], $wide at [2.0, 1.1]" ""
# A decode token's matrix-vector kernels have their own ratios (decode_slowdown): the same flops of
# one token at the decode rate (no decode_gflops recorded: the 800 GFLOPS); none from a record
# without them.
decode_compute_ms() {  # decode_compute_ms [DECODE_SLOWDOWN_AT_64 DECODE_SLOWDOWN_AT_512]
  local node="\"bandwidth_gb_s\": 50, \"compute_gflops\": 800, \"threads\": 8"
  node+=", \"row_parallel\": {\"chunks\": [64, 512], \"slowdown\": [3.0, 3.0]${1:+, \"decode_slowdown\": [$1, $2]}}"
  echo "{\"lab\": {\"n1\": {$node}, \"n2\": {$node}}}" >"$CLUSTERCTL_STATE_DIR/node-speeds.cache"
  "$CTL" plan "$dir/lab.yaml" --offline --link 1gbe --json | python3 -c "
import json,sys; print(json.load(sys.stdin)['speed']['predictions'][0]['decode']['compute_ms'])"
}
plain=$(decode_compute_ms) same=$(decode_compute_ms 1.1 1.1) wide=$(decode_compute_ms 2.0 1.1)
bad=$(decode_compute_ms -1 1.1)  # a ratio that is no slowdown: the pair ignored, as the prompt's
python3 -c "
import sys
want = 0.1 * 2 * (4096 * 2048 + 4096 * 7168) * 32 / 800e9 * 1e3
sys.exit(0 if abs($same - $plain - want) < 1e-6 and abs($wide - $same) < 1e-6 and $bad == $plain else 1)" ||
  fail "row-parallel slowdown: decode compute $plain ms without decode_slowdown, $same ms at [1.1, 1.1], $wide at [2.0, 1.1], $bad at [-1, 1.1]" ""
echo "plan --what-if and plan's predictions: limits named, bad values refused clearly, doctor's record read"
