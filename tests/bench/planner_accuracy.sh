#!/usr/bin/env bash
# The planner against the engine (issue #18, acceptance 3; not in CI: figures for docs/tuning.md).
# For each configuration, as a user would: a cluster file, `clusterctl doctor` (which probes the
# node's bandwidth and compute and records them), `clusterctl plan --json` (the configured
# all-reduce's row), then the measurement: `clusterctl bench` (1 rank: tg and pp), `bench --ranks`,
# `bench --draft`, or the 3-node test cluster through `up` + `bench-serve -c 1`. Prints one
# markdown row per configuration: predicted, what limits it, measured (each repetition, REPS of
# them, 3 by default), the error against their median, and the machine's state while it ran: the
# load average (1 min) before and after, transparent huge pages the kernel could not give (the
# engine's weights then stream over 4 KiB pages, ~10 % slower), and for ranks that outnumber the
# cores the share of the time they were spread over the cores evenly (tests/bench/rank_cores.py).
# Usage (root for the test cluster; run it on a quiet machine):
#   tests/bench/planner_accuracy.sh BUILD_DIR [WORK_DIR=/tmp/clusterctl-planner] [CONFIGS...]
# CONFIGS (default all): l1b-1x2 l1b-2 l1b-3 l1b-4 l1b-3-emu moe-1x2 moe-2 spec-1x2 spec-3-emu tc-veth tc-emu
# The test cluster configurations take `flock /tmp/clusterctl-testcluster.lock` themselves.
# Models (synthesised once into WORK_DIR): llama3-1b Q4_0 (0.76 GB read a token) and OLMoE-1B-7B's
# layout Q4_0 (3.9 GB, 64 experts, 8 a token: 0.63 GB read a token).
set -uo pipefail
BUILD=$(realpath "$1")
WORK=${2:-/tmp/clusterctl-planner}
shift $(($# >= 2 ? 2 : $#))
CONFIGS=${*:-l1b-1x2 l1b-2 l1b-3 l1b-4 l1b-3-emu moe-1x2 moe-2 spec-1x2 spec-3-emu tc-veth tc-emu}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
C=$BUILD/controller/clusterctl W=$BUILD/worker/clusterctl-worker
REPS=${REPS:-3}
EMU="latency=300us,bandwidth=10gbit"
mkdir -p "$WORK"
rm -f "$WORK/draft-share"  # measured afresh each run
export CLUSTERCTL_STATE_DIR="$WORK/state" CLUSTERCTL_CACHE_DIR="$WORK/controller-cache"
VOCAB=$REPO/../shared/testdata/tokenizer/ggml-vocab-llama-bpe.gguf
[ -f "$VOCAB" ] || VOCAB=/work/shared/testdata/tokenizer/ggml-vocab-llama-bpe.gguf
L1B=$WORK/llama3-1b-q4_0.gguf MOE=$WORK/olmoe-q4_0.gguf
[ -f "$L1B" ] || "$C" model synth --shape llama3-1b --type Q4_0 --vocab "$VOCAB" --seed 1 "$L1B" >/dev/null || exit 1
[ -f "$MOE" ] || "$C" model synth --shape olmoe-1b-7b --type Q4_0 --vocab "$VOCAB" --pad-vocab --seed 1 "$MOE" >/dev/null ||
  exit 1

echo "<!-- $(date -u +%FT%TZ) load average at start: $(cut -d' ' -f1-3 /proc/loadavg) -->"
START=$SECONDS
echo "| config | predicted tok/s | limit | measured tok/s | error | load; notes |"
echo "|---|---|---|---|---|---|"
thp_fallbacks() { awk '$1 == "thp_fault_fallback" {print $2}' /proc/vmstat; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# begin_row: the machine's state as a configuration starts (row prints it beside the figures);
# NOTES: what the configuration adds (rank spreads).
begin_row() { ROW_LOAD=$(load1) ROW_THP=$(thp_fallbacks) NOTES=""; }
# row NAME PREDICTED LIMIT MEASURED...: the error against the median of the measurements.
row() {
  local name=$1 pred=$2 limit=$3
  shift 3
  local med thp
  med=$(printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')
  thp=$(($(thp_fallbacks) - ROW_THP))
  printf '| %s | %.1f | %s | %s | %+.0f %% | %s -> %s%s%s |\n' "$name" "$pred" "$limit" \
    "$(printf '%.1f / ' "$@" | sed 's# / $##')" "$(awk -v p="$pred" -v m="$med" 'BEGIN {print 100 * (p - m) / m}')" \
    "$ROW_LOAD" "$(load1)" "$([ "$thp" -gt 0 ] && echo "; $thp huge pages not given")" "${NOTES:+; $NOTES}"
}

# local_file NAME MODEL RANKS THREADS [EMULATE] [DRAFT]: a one-node cluster file on this machine.
local_file() {
  local f=$WORK/$1.yaml
  {
    echo "cluster: acc-$1"
    echo "model: $2"
    echo "context: 512"
    echo "api: {parallel: 1${6:+, draft: $6}}"
    echo "nodes:"
    echo "  - {name: local, host: localhost, ranks: $3, threads: $4, worker: $W,"
    echo "     link: {type: ethernet, interface: lo, allreduce: one-shot, wire_format: double${5:+, emulate: \"$5\"}}}"
  } >"$f"
  echo "$f"
}

# plan_field FILE JQ [plan flags...]: doctor, then one figure of plan's configured layout.
probe() { "$C" doctor "$1" >"$WORK/doctor.log" 2>&1 || { cat "$WORK/doctor.log" >&2; return 1; }; }
plan_json() { local f=$1; shift; "$C" plan "$f" --json "$@" 2>"$WORK/plan.err"; }
configured() { jq -r '.speed.predictions | (map(select(.algorithm == "one-shot" and .wire_format == "double")) + .)[0]'; }

# One rank x 2 threads: decode (tg32) and prefill (pp64, plan --prefill-batch 64).
one_rank() {  # NAME MODEL LABEL
  local f j bw
  begin_row
  f=$(local_file "$1" "$2" 1 2)
  probe "$f" || return
  j=$(plan_json "$f" --prefill-batch 64 | configured)
  bw=$(jq -r --arg c "acc-$1" '.[$c].local.bandwidth_gb_s' "$WORK/state/node-speeds.cache")
  local tg=() pp=()
  for _ in $(seq "$REPS"); do
    local b
    b=$("$C" bench "$2" -p 64 -n 32 -t 2 -r 1 --bandwidth "$bw" --json 2>/dev/null)
    tg+=("$(jq -r .tg_tokens_per_s.mean <<<"$b")")
    pp+=("$(jq -r .pp_tokens_per_s.mean <<<"$b")")
  done
  row "$3, 1 rank x 2 threads, decode" "$(jq -r .decode.tokens_per_s <<<"$j")" "$(jq -r .decode.limit <<<"$j")" "${tg[@]}"
  row "$3, 1 rank x 2 threads, prefill 64" "$(jq -r .prefill.tokens_per_s <<<"$j")" "$(jq -r .prefill.limit <<<"$j")" \
    "${pp[@]}"
}

ranks() {  # NAME MODEL RANKS LABEL [EMULATE]
  local f j m=() spread=()
  begin_row
  f=$(local_file "$1" "$2" "$3" 1 "${5:-}")
  probe "$f" || return
  j=$(plan_json "$f" | configured)
  # Ranks that outnumber the cores: how evenly they were spread over them in each repetition.
  local sample=()
  [ "$3" -gt "$(nproc)" ] && sample=(python3 "$REPO/tests/bench/rank_cores.py")
  for _ in $(seq "$REPS"); do
    m+=("$("${sample[@]}" "$C" bench "$2" --ranks "$3" -t 1 -n 64 --allreduce one-shot --wire-format double \
      ${5:+--emulate-link "$5"} --json 2>"$WORK/spread" | jq -r .timings.generate_tokens_per_s)")
    [ ${#sample[@]} -gt 0 ] && spread+=("$(grep -o 'even [0-9?]* %' "$WORK/spread" | tail -1)")
  done
  [ ${#spread[@]} -gt 0 ] && NOTES="ranks spread over the cores $(printf '%s / ' "${spread[@]}" | sed 's# / $##')"
  row "$4" "$(jq -r .decode.tokens_per_s <<<"$j")" "$(jq -r .decode.limit <<<"$j")" "${m[@]}"
}

# Speculation (64 tokens, plan --tokens 64: the engine's adaptive k settles in the first rounds,
# which plan counts for the run's length): the draft's kept share measured first on one rank (it depends on the model pair and
# the text, not on the cluster), given to plan as --draft-acceptance; then bench --draft.
spec() {  # NAME RANKS THREADS LABEL [EMULATE]
  local f j share m=()
  begin_row
  [ -f "$WORK/draft-share" ] ||
    "$C" bench "$L1B" --draft "$L1B" -n 16 --reps 1 -t 2 --json 2>/dev/null | jq -r '.acceptance_rate // empty' \
      >"$WORK/draft-share"
  share=$(cat "$WORK/draft-share")
  [ -n "$share" ] || { echo "bench --draft gave no kept share" >&2; return; }
  f=$(local_file "$1" "$L1B" "$2" "$3" "${5:-}" "$L1B")
  probe "$f" || return
  j=$(plan_json "$f" --draft-acceptance "$share" --tokens 64 | jq '.speed.speculative')
  for _ in $(seq "$REPS"); do
    m+=("$("$C" bench "$L1B" --draft "$L1B" --ranks "$2" -t "$3" -n 64 --reps 1 --allreduce one-shot \
      --wire-format double ${5:+--emulate-link "$5"} --json 2>/dev/null | jq -r .speculative_tokens_per_s.mean)")
  done
  row "$4 (k=$(jq -r .k <<<"$j"), $(jq -r '.tokens_per_round * 100 | round / 100' <<<"$j") tokens a round predicted)" \
    "$(jq -r .tokens_per_s <<<"$j")" "$(jq -r .limit <<<"$j")" "${m[@]}"
}

# The 3-node test cluster (namespaces on this machine, veth): doctor probes the three nodes (one
# machine: their ranks together) and the link over its ranks (recorded: plan reads it), up,
# bench-serve -c 1 (a stream's decode rate).
testcluster() {  # NAME LABEL [EMULATE]
  (
    flock 9
    local D=/tmp/clusterctl-testcluster
    # Started here (once for both rows): taken down again at the end of the run.
    [ -f "$D/nodes" ] || { "$REPO/deploy/testcluster" up --nodes 3 >/dev/null && touch "$WORK/started-testcluster"; } ||
      exit 1
    local f=$WORK/$1.yaml j m=()
    begin_row
    sed -e "s#^model: .*#model: $L1B#" -e "s#^cluster: .*#cluster: acc-$1#" -e "s#^defaults:#defaults:\n  worker: $W#" \
      -e "s#^    interface: tb0#    interface: tb0\n    allreduce: one-shot\n    wire_format: double${3:+\n    emulate: \"$3\"}#" \
      "$REPO/configs/testcluster-3.yaml" >"$f"
    probe "$f" || exit 1
    "$C" up "$f" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
    # The link as doctor measured and recorded it (plan reads it): one-shot double all-reduces of
    # llama3-1b's decode message (2048 doubles) over the cluster's 3 ranks (namespaces on this
    # machine's cores: a message costs far more than the `veth` preset's 2 idle ranks), less the
    # same 3 ranks' all-reduce on shared memory (doctor's node probe counts their meetings on 2
    # cores already), plus shared memory's 10 us.
    local pj
    pj=$(plan_json "$f")
    j=$(configured <<<"$pj")
    grep -q "doctor" <<<"$(jq -r '.speed.link.from' <<<"$pj")" || echo "plan did not take doctor's link" >&2
    for _ in $(seq "$REPS"); do
      m+=("$("$C" bench-serve http://10.77.1.1:8080 -c 1 -n 64 --json 2>/dev/null |
        jq -r '.levels[0].stream_tokens_per_s_mean')")
    done
    "$C" down "acc-$1" >/dev/null 2>&1
    row "$2; plan's link: $(jq -r '.speed.link | "\(.name), \(.latency_us * 10 | round / 10) us, \(.bandwidth_gb_s * 100 | round / 100) GB/s"' <<<"$pj")" \
      "$(jq -r .decode.tokens_per_s <<<"$j")" "$(jq -r .decode.limit <<<"$j")" "${m[@]}"
  ) 9>/tmp/clusterctl-testcluster.lock
}

for c in $CONFIGS; do
  case $c in
    l1b-1x2) one_rank l1b-1x2 "$L1B" "llama3-1b Q4_0, 1 node" ;;
    l1b-2) ranks l1b-2 "$L1B" 2 "llama3-1b Q4_0, 2 ranks shared memory" ;;
    l1b-3) ranks l1b-3 "$L1B" 3 "llama3-1b Q4_0, 3 ranks shared memory" ;;
    l1b-4) ranks l1b-4 "$L1B" 4 "llama3-1b Q4_0, 4 ranks shared memory" ;;
    l1b-3-emu) ranks l1b-3-emu "$L1B" 3 "llama3-1b Q4_0, 3 ranks, EMULATED 300 us / 10 Gbit" "$EMU" ;;
    moe-1x2) one_rank moe-1x2 "$MOE" "OLMoE-1B-7B layout Q4_0, 1 node" ;;
    moe-2) ranks moe-2 "$MOE" 2 "OLMoE-1B-7B layout Q4_0, 2 ranks shared memory" ;;
    spec-1x2) spec spec-1x2 1 2 "llama3-1b Q4_0 + itself as draft, 1 rank x 2 threads" ;;
    spec-3-emu) spec spec-3-emu 3 1 "llama3-1b Q4_0 + itself as draft, 3 ranks, EMULATED 2 ms / 10 Gbit" \
      "latency=2ms,bandwidth=10gbit" ;;
    tc-veth) testcluster tc-veth "3-node test cluster, veth TCP, llama3-1b Q4_0 (up + bench-serve -c 1)" ;;
    tc-emu) testcluster tc-emu "3-node test cluster, veth + EMULATED 300 us / 10 Gbit (up + bench-serve -c 1)" "$EMU" ;;
    *) echo "unknown configuration '$c'" >&2 ;;
  esac
done
if [ -f "$WORK/started-testcluster" ]; then
  flock /tmp/clusterctl-testcluster.lock "$REPO/deploy/testcluster" down >/dev/null 2>&1
  rm -f "$WORK/started-testcluster"
fi
echo "<!-- $(date -u +%FT%TZ) load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - START)) s -->"
