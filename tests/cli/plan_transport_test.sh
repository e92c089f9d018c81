#!/usr/bin/env bash
# plan chooses the transport (issue #17): the one `bench net`'s table measured fastest at a decode
# step's all-reduce (llama3-8b: 4096 doubles, 32 KiB) for the cluster's rank count, else MPI
# point-to-point; the cluster file's `transport:` and MPI_Allreduce (`allreduce: mpi`) override
# it. Each with its reason, in the text and in --json (what `up` passes as --transport).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=${1:?usage: plan_transport_test.sh CLUSTERCTL SHARED_DIR}
SHARED=${2:?}
VOCAB=$SHARED/testdata/tokenizer/ggml-vocab-llama-bpe.gguf
require_shared_file "$VOCAB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export CLUSTERCTL_STATE_DIR=$dir/state CLUSTERCTL_CACHE_DIR=$dir/cache CLUSTERCTL_NET_TABLE=$dir/table
mkdir -p "$CLUSTERCTL_STATE_DIR"
"$CTL" model synth --shape llama3-8b --type Q4_0 --vocab "$VOCAB" --sparse "$dir/l8.gguf" >/dev/null
cat >"$dir/c.yaml" <<YAML
cluster: c
model: $dir/l8.gguf
defaults: {memory: 64GB, link: {type: ethernet, cidr: 10.9.0.0/24}}
nodes:
  - {name: n1, host: n1.local}
  - {name: n2, host: n2.local}
YAML
check() {  # check TRANSPORT REASON-REGEX [FILE]
  local f=${3:-$dir/c.yaml} out runs
  out=$("$CTL" plan "$f" --offline) || { echo "FAIL: plan $f"; echo "$out"; exit 1; }
  grep -Eq "^transport: $1: $2" <<<"$out" || { echo "FAIL: expected 'transport: $1: $2' in:"; echo "$out"; exit 1; }
  grep "^transport:" <<<"$out"
  runs=$("$CTL" plan "$f" --offline --json | python3 -c "import json,sys; print(json.load(sys.stdin)['transport']['runs'])")
  [ "$runs" = "$1" ] || { echo "FAIL: --json says $runs, not $1"; exit 1; }
}
check mpi "no all-reduce table at $dir/table: MPI point-to-point"
printf '# measured\n2 65535 one-shot tcp\n2 max ring\n' >"$dir/table"
check tcp "bench net's table \($dir/table\) measured one-shot over tcp fastest on 2 ranks up to 64 KiB, which holds a decode step's all-reduce \(32 KiB\)"
printf '2 16383 one-shot tcp\n2 max ring\n' >"$dir/table"
check mpi "bench net's table .* measured ring over mpi fastest on 2 ranks up to any size"
printf '2 max mpi\n' >"$dir/table"
check mpi "bench net's table .* measured MPI_Allreduce fastest on 2 ranks up to any size"
printf '3 max one-shot tcp\n' >"$dir/table"
check mpi "the all-reduce table $dir/table has no rule for 2 ranks"
printf '2 max one-shot tcp\n' >"$dir/table"
sed 's/cidr: 10.9.0.0\/24}/cidr: 10.9.0.0\/24, transport: mpi}/' "$dir/c.yaml" >"$dir/fixed.yaml"
check mpi "the cluster file's transport: mpi" "$dir/fixed.yaml"
sed 's/cidr: 10.9.0.0\/24}/cidr: 10.9.0.0\/24, allreduce: mpi}/' "$dir/c.yaml" >"$dir/mpi.yaml"
check mpi "the all-reduce is MPI_Allreduce" "$dir/mpi.yaml"
printf '2 max one-shot tcp\n2 junk\n' >"$dir/table"
check mpi "$dir/table:2: expected three or four fields"
echo "plan: the transport from bench net's table at a decode step's all-reduce, each with its reason"
