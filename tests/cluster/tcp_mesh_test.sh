#!/usr/bin/env bash
# Issue #17: the tcp transport's mesh over the test cluster's link, 3 nodes, one rank each (the
# all-reduce benchmark's tcp path, a few iterations). With every rank on the link it connects and
# runs; with rank 0 listening where the others cannot reach it (--tcp-interface lo: each node's
# loopback is its own) the job ends within the connect deadline (--tcp-timeout 2), with ONE
# message naming the rank, host and address not reached, who could not reach it, and the fix, and
# nothing stays running on any node.
source "$(dirname "$0")/testcluster_lib.sh"
cluster_test_start "$@"

bench="$WORKER --bench-net --json --no-table --transports tcp --algorithms one-shot --formats double"
bench+=" --min-size 1KiB --max-size 1KiB --iters 3 --tcp-timeout 2"
# run_mesh RANK0-ARGS: mpirun on node1 over the link, as `up` starts a job.
run_mesh() {
  ssh -i "$D/id_ed25519" -o UserKnownHostsFile="$D/known_hosts" -o BatchMode=yes root@10.77.1.1 \
    "PATH=\$PATH:/usr/local/bin; mpirun --bind-to none --allow-run-as-root --hostfile $D/hostfile \
     --mca btl_tcp_if_include 10.77.2.0/24 --mca oob_tcp_if_include 10.77.2.0/24 --mca mpi_yield_when_idle 1 \
     -np 1 -H 10.77.2.1:1 $bench $1 : -np 1 -H 10.77.2.2:1 $bench : -np 1 -H 10.77.2.3:1 $bench"
}

out=$(run_mesh "" 2>&1)
expect_eq "the mesh over the link connects and runs" "$?" 0
expect_match "its rows are over tcp" "$out" '"transport": "tcp"'

start=$(date +%s%N)
out=$(run_mesh "--tcp-interface lo" 2>&1)
rc=$?
took=$((($(date +%s%N) - start) / 1000000))
[ "$rc" != 0 ] && pass "an unreachable rank 0 refuses the job" || fail "exit code 0 with rank 0 unreachable"
[ "$took" -lt 20000 ] && pass "it ended in $took ms (deadline 2 s)" || fail "it took $took ms to end (deadline 2 s)"
expect_eq "one error message" "$(grep -c 'error:' <<<"$out")" 1
grep "error:" <<<"$out"
expect_match "it names the rank, host and address not reached and who could not reach it" "$out" \
  'rank 0 on [^ ]+ at 127\.0\.0\.1:[0-9]+ could not be reached from rank 1 on [^ ]+, rank 2 on [^ ]+ \(Connection refused\)'
expect_match "it says what chose that address" "$out" 'rank 0 on [^ ]+ listens on 127\.0\.0\.1 \(--tcp-interface lo\)'
expect_match "it names the fix" "$out" "set the link's tcp_interface in the cluster file \(or --tcp-interface\)"
expect_no_job_processes "after the refused mesh"
finish
