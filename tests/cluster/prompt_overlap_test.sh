#!/usr/bin/env bash
# Issue #17: a prompt's all-reduces overlap its matmuls across real hosts. Three nodes, one rank
# each over the link (as `up` starts a job): with --overlap-prompt left at auto the ranks, on
# different nodes, cut a 200-token prompt into pieces (stories260K: 5 layers x 2 all-reduces x 4
# pieces overlapped) and generate one local rank's greedy tokens; off cuts none, the same tokens.
source "$(dirname "$0")/testcluster_lib.sh"
cluster_test_start "$@"
require_node
MODEL=$(shared_model stories260K.gguf)
[ -f "$MODEL" ] || { echo "FAIL: $MODEL is missing"; exit 1; }
ids=1
for i in $(seq 1 199); do ids+=",$((2 + (i * 37) % 500))"; done
args="--model $MODEL --prompt-ids $ids -n 8 --temp 0 --threads 1 --json"
# run_job EXTRA: mpirun on node1 over the link, one rank on each node.
run_job() {
  ssh -i "$D/id_ed25519" -o UserKnownHostsFile="$D/known_hosts" -o BatchMode=yes root@10.77.1.1 \
    "PATH=\$PATH:/usr/local/bin; mpirun --bind-to none --allow-run-as-root --hostfile $D/hostfile \
     --mca btl_tcp_if_include 10.77.2.0/24 --mca oob_tcp_if_include 10.77.2.0/24 --mca mpi_yield_when_idle 1 \
     -np 1 -H 10.77.2.1:1 $WORKER $args $1 : -np 1 -H 10.77.2.2:1 $WORKER $args $1 : \
     -np 1 -H 10.77.2.3:1 $WORKER $args $1" 2>/dev/null
}
one=$("$WORKER" $args 2>/dev/null | json_get '["generated_ids"]')
[ -n "$one" ] || { echo "FAIL: the local one-rank run gave no tokens"; exit 1; }
auto=$(run_job "")
expect_eq "auto: the nodes' prompt all-reduces overlapped" "$(json_get '["timings"]["prompt_allreduces_overlapped"]' <<<"$auto")" 40
expect_eq "auto: one rank's greedy tokens" "$(json_get '["generated_ids"]' <<<"$auto")" "$one"
off=$(run_job "--overlap-prompt off")
expect_eq "off: none overlapped" "$(json_get '["timings"]["prompt_allreduces_overlapped"]' <<<"$off")" 0
expect_eq "off: one rank's greedy tokens" "$(json_get '["generated_ids"]' <<<"$off")" "$one"
expect_no_job_processes "after the jobs"
finish
