#!/usr/bin/env bash
# Issue #17's 16-core figures (1 rank x 16 threads against N ranks x 16/N threads, llama3-8b Q4_0)
# redone on this machine's cores, old network path against the new one (acceptance 5; not in CI:
# figures for docs/tuning.md). On C cores: 1 rank x C threads, and C ranks x 1 thread over shared
# memory and over an EMULATED 300 us / 10 Gbit link, each with
#   old  split attention, MPI_Allreduce, double (on the emulated link our recursive doubling stands
#        in for MPI_Allreduce: the emulator cannot hold back MPI's own messages)
#   new  the layout, algorithm and wire format `plan` picks for that link (doctor's node speed)
# Decode tok/s and the ranks' mean compute and communication ms per token from `bench --ranks`
# (old and new interleaved, REPS=2 runs each, every run shown).
# Usage: tests/bench/network_ranks.sh BUILD_DIR [MODEL=/tmp/net-l8.gguf] [WORK_DIR=/tmp/clusterctl-ranks]
set -uo pipefail
BUILD=$(realpath "$1")
MODEL=${2:-/tmp/net-l8.gguf}
WORK=${3:-/tmp/clusterctl-ranks}
C=$BUILD/controller/clusterctl W=$BUILD/worker/clusterctl-worker
N=${TOKENS:-16} CORES=${CORES:-$(nproc)} REPS=${REPS:-2}
EMU="latency=300us,bandwidth=10gbit"
[ -f "$MODEL" ] || { echo "no model $MODEL (e.g. clusterctl model synth --shape llama3-8b --type Q4_0 ...)" >&2; exit 1; }
mkdir -p "$WORK"
export CLUSTERCTL_STATE_DIR="$WORK/state" CLUSTERCTL_CACHE_DIR="$WORK/controller-cache"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $CORES cores used; $MODEL; $N tokens"

# local_file EMULATE: a one-node cluster file, CORES ranks x 1 thread, layout auto.
local_file() {
  local f=$WORK/ranks${1:+-emu}.yaml
  {
    echo "cluster: net-ranks"
    echo "model: $MODEL"
    echo "context: 512"
    echo "layout: auto"
    echo "api: {parallel: 1}"
    echo "nodes:"
    echo "  - {name: local, host: localhost, ranks: $CORES, threads: 1, worker: $W,"
    echo "     link: {type: ethernet, interface: lo${1:+, emulate: \"$1\"}}}"
  } >"$f"
  echo "$f"
}

# ranks_run LAYOUT ALLREDUCE FORMAT [EMULATE]: prints tok/s|comm ms (mean over ranks)|compute ms
ranks_run() {
  local j
  j=$("$C" bench "$MODEL" --ranks "$CORES" -t 1 -n "$N" --layout "$1" --allreduce "$2" --wire-format "$3" \
    ${4:+--emulate-link "$4"} --json 2>"$WORK/bench.err") || { tail -3 "$WORK/bench.err" >&2; echo "-|-|-"; return; }
  jq -r '[.timings.generate_tokens_per_s, ([.per_rank[].comm_s_per_token] | add / length * 1000),
          ([.per_rank[].compute_s_per_token] | add / length * 1000)] | map(. * 100 | round / 100 | tostring) | join("|")' <<<"$j"
}

# column_of K RESULT...: the K-th field of each result, " / " between them.
column_of() {
  local k=$1
  shift
  printf '%s\n' "$@" | cut -d'|' -f"$k" | paste -sd/ | sed 's#/# / #g'
}

echo
echo "| configuration | path | layout | all-reduce, format | tok/s | comm ms/token | compute ms/token |"
echo "|---|---|---|---|---|---|---|"
one=$("$C" bench "$MODEL" -p 0 -n "$N" -t "$CORES" -r "$REPS" --json 2>/dev/null | jq -r '.tg_tokens_per_s.mean * 100 | round / 100')
echo "| 1 rank x $CORES threads | - | - | - | $one | - | - |"
"$C" doctor "$(local_file)" >"$WORK/doctor.log" 2>&1 || { cat "$WORK/doctor.log" >&2; exit 1; }
for link in shm emu; do
  emulate=$([ "$link" = emu ] && echo "$EMU")
  label=$([ "$link" = emu ] && echo "$CORES ranks x 1 thread, EMULATED 300 us / 10 Gbit" ||
    echo "$CORES ranks x 1 thread, shared memory")
  j=$("$C" plan "$(local_file "$emulate")" --json 2>"$WORK/plan.err") || { cat "$WORK/plan.err" >&2; continue; }
  layout=$(jq -r .layout.runs <<<"$j")
  best=$(jq -c '.speed.predictions | max_by(.decode.tokens_per_s)' <<<"$j")
  alg=$(jq -r .algorithm <<<"$best") fmt=$(jq -r .wire_format <<<"$best")
  echo "plan ($label): $layout, $alg $fmt: $(jq -r .layout.reason <<<"$j")" >&2
  # Old and new interleaved, REPS times each; every figure shown.
  old=() new=()
  for _ in $(seq "$REPS"); do
    old+=("$(ranks_run split-attention mpi double "$emulate")")
    new+=("$(ranks_run "$layout" "$alg" "$fmt" "$emulate")")
  done
  echo "| $label | old | split-attention | mpi double | $(column_of 1 "${old[@]}") | $(column_of 2 "${old[@]}") | $(column_of 3 "${old[@]}") |"
  echo "| $label | new (plan) | $layout | $alg $fmt | $(column_of 1 "${new[@]}") | $(column_of 2 "${new[@]}") | $(column_of 3 "${new[@]}") |"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $SECONDS s"
