#!/usr/bin/env bash
# Issue #17: `clusterctl bench net CLUSTER.yaml` on the 3-node test cluster (ctest fixture
# `testcluster`): one rank a node over the tb0 link, as `up` runs the job. Its selection table must
# land where each node's workers read it (~/.config/clusterctl/allreduce-table in the node's home:
# the nodes' homes are $D/home), with the old table's rules for other rank counts kept and its
# 3-rank rules replaced, and where `plan` reads it here ($CLUSTERCTL_NET_TABLE), with the same
# rules; plan's transport line must then name that table, and a worker job on the nodes must read
# its node's table. A node whose sshd is down, and a rank that dies, must each end it with one
# message naming the cause and the fix, and leave nothing running.
# Usage: bench_net_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$(dirname "$0")/testcluster_lib.sh"
cluster_test_start "$@"
require_node
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)
CONFIG="$T/c.yaml"
testcluster_config "$MODEL" "$CONFIG"
NODE_TABLE="$D/home/.config/clusterctl/allreduce-table"  # /root/.config/... inside every node
export CLUSTERCTL_NET_TABLE="$T/plan-table"               # where plan (and bench net) read it here
# Other cluster tests run workers on these nodes: their table goes back to what it was.
[ -f "$NODE_TABLE" ] && cp -p "$NODE_TABLE" "$T/node-table.before"
restore() {
  if [ -f "$T/node-table.before" ]; then cp -p "$T/node-table.before" "$NODE_TABLE"; else rm -f "$NODE_TABLE"; fi
  "$REPO/deploy/testcluster" sshd-start 3 >/dev/null 2>&1
  rm -rf "$T"
}
trap restore EXIT
node_table() { ssh -i "$D/id_ed25519" -o UserKnownHostsFile="$D/known_hosts" -o BatchMode=yes "root@10.77.1.$1" \
  'cat ~/.config/clusterctl/allreduce-table'; }
rules_for() { grep -E "^$1 " | sort; }

mkdir -p "$(dirname "$NODE_TABLE")"
printf '2 max ring tcp\n3 1 ring tcp\n' >"$NODE_TABLE"
BENCH=(--min-size 4KiB --max-size 16KiB --formats double --iters 20)

echo "== bench net over the cluster"
out=$("$CLUSTERCTL" bench net "$CONFIG" "${BENCH[@]}" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 0
expect_match "rows for 3 ranks over the real link" "$out" "^# all-reduce, 3 ranks, real link"
expect_match "MPI_Allreduce measured beside ours" "$out" "^\| 16 KiB \| mpi \| mpi \| double \|"
expect_match "the tcp transport measured" "$out" "^\| 16 KiB \| one-shot \| tcp \| double \|"
expect_match "the selection" "$out" "^\| 16 KiB \| (mpi|one-shot|recursive-doubling|ring) over (mpi|tcp) \|"
expect_match "where it was written" "$out" \
  "^selection table for 3 ranks \(one a node\) written on node1 \(/root/.config/clusterctl/allreduce-table\), node2 \(/root/.config/clusterctl/allreduce-table\), node3 \(/root/.config/clusterctl/allreduce-table\) and on this machine \(plan\) \($T/plan-table\)$"
for k in 1 2 3; do
  table=$(node_table "$k")
  expect_match "node$k's table keeps the 2-rank rule" "$table" "^2 max ring tcp$"
  expect_no_match "node$k's old 3-rank rule is replaced" "$table" "^3 1 ring tcp$"
  expect_match "node$k's table has 3-rank rules up to any size" "$table" \
    "^3 max (mpi|one-shot|recursive-doubling|ring)( tcp)?$"
  expect_eq "node$k's 3-rank rules are plan's" "$(rules_for 3 <<<"$table")" "$(rules_for 3 <"$T/plan-table")"
done
expect_eq "no temporary file left beside the node table" "$(ls "$(dirname "$NODE_TABLE")")" "allreduce-table"
expect_no_job_processes "after bench net"
expect_no_sessions_left "after bench net"

echo "== plan reads it"
# Plan's transport is the table's at a decode step (stories260K: 64 doubles, 512 B): the first
# 3-rank rule (the rules go up in size; the first that holds wins).
first=$(grep -m1 "^3 " "$T/plan-table")
want=$([ "$(awk '{print $4}' <<<"$first")" = tcp ] && echo tcp || echo mpi)
out=$("$CLUSTERCTL" plan "$CONFIG" 2>&1)
expect_match "plan's transport names bench net's table" "$out" \
  "^transport: $want: bench net's table \($T/plan-table\) measured .* fastest on 3 ranks"

echo "== a worker job on the nodes reads its node's table"
# worker_job RANKS: a greedy worker run with RANKS ranks on each node, under mpirun on node1.
worker_job() {
  local w="$WORKER --model $MODEL -n 2 --temp 0 --stats --prompt Hi"
  printf '10.77.2.%s slots=%s\n' 1 "$1" 2 "$1" 3 "$1" >"$T/hostfile$1"
  ssh -i "$D/id_ed25519" -o UserKnownHostsFile="$D/known_hosts" -o BatchMode=yes root@10.77.1.1 \
    "PATH=\$PATH:/usr/local/bin; mpirun --bind-to none --allow-run-as-root --hostfile $T/hostfile$1 \
     --mca btl_tcp_if_include 10.77.2.0/24 --mca oob_tcp_if_include 10.77.2.0/24 --mca mpi_yield_when_idle 1 \
     -np $1 -H 10.77.2.1:$1 $w : -np $1 -H 10.77.2.2:$1 $w : -np $1 -H 10.77.2.3:$1 $w" 2>&1
}
out=$(worker_job 1)
expect_match "the worker's all-reduce is the node table's, measured for its 3 ranks" "$out" \
  "^all-reduce: mpi; all-reduce auto \(/root/.config/clusterctl/allreduce-table, rules for 3 ranks\) over "

echo "== 2 ranks a node: the rules for the job's 6 ranks"
sed 's/^  ranks: 1$/  ranks: 2/' "$CONFIG" >"$T/two.yaml"
out=$("$CLUSTERCTL" bench net "$T/two.yaml" "${BENCH[@]}" 2>&1); rc=$?
echo "$out" | tail -3
expect_eq "exit status" "$rc" 0
expect_match "rows for the job's 6 ranks" "$out" "^# all-reduce, 6 ranks, real link"
expect_match "written for 6 ranks, 2 a node" "$out" "^selection table for 6 ranks \(2 a node\) written on node1 "
for k in 1 2 3; do
  table=$(node_table "$k")
  expect_match "node$k's table has 6-rank rules up to any size" "$table" \
    "^6 max (mpi|one-shot|recursive-doubling|ring)( tcp)?$"
  expect_match "node$k's table keeps the 3-rank rules" "$table" "^3 max "
done
out=$(worker_job 2)
expect_match "a 3-node x 2-rank job reads rules measured for 6 ranks" "$out" \
  "^all-reduce: mpi; all-reduce auto \(/root/.config/clusterctl/allreduce-table, rules for 6 ranks\) over "
expect_no_job_processes "after 2 ranks a node"

echo "== --json"
before=$(md5sum <"$NODE_TABLE")
json=$("$CLUSTERCTL" bench net "$CONFIG" "${BENCH[@]}" --json --no-table 2>/dev/null); rc=$?
expect_eq "exit status" "$rc" 0
expect_eq "ranks" "$(json_get '["ranks"]' <<<"$json")" 3
expect_eq "rows: 7 a size (MPI_Allreduce; ours over mpi and tcp) x 3 sizes" "$(json_get '["rows"].length' <<<"$json")" 21
expect_match "the selection's last rule covers any size" "$(json_get '["selection"].slice(-1)[0]' <<<"$json")" \
  '^\{"algorithm":"(mpi|one-shot|recursive-doubling|ring)","ranks":3,"transport":"(mpi|tcp)","up_to_bytes":"max"\}$'
expect_eq "--no-table writes nowhere" "$(json_get '["written"]' <<<"$json")" "[]"
expect_eq "--no-table leaves the node table as it was" "$(md5sum <"$NODE_TABLE")" "$before"

echo "== node3 unreachable"
"$REPO/deploy/testcluster" sshd-stop 3
out=$("$CLUSTERCTL" bench net "$CONFIG" "${BENCH[@]}" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
expect_eq "one error message" "$(grep -c '^error:' <<<"$out")" 1
expect_match "it names the node, the cause" "$out" \
  "^  node3: ssh failed: connection refused by 10\.77\.1\.3:22 \(no sshd is listening there\)"
expect_match "and the fix" "$out" "^    fix: "
expect_eq "the node table is untouched" "$(md5sum <"$NODE_TABLE")" "$before"
expect_no_job_processes "after node3 unreachable"
expect_no_sessions_left "after node3 unreachable"
"$REPO/deploy/testcluster" sshd-start 3

echo "== a rank that dies"
# node3's worker answers preflight's --version, then dies at once under mpirun (signal 9).
printf '#!/bin/sh\n[ "$1" = --version ] && exec %s --version\nkill -9 $$\n' "$WORKER" >"$T/dying-worker"
chmod +x "$T/dying-worker"
sed "s#\(name: node3, host: 10.77.1.3\)#\1, worker: $T/dying-worker#" "$CONFIG" >"$T/dying.yaml"
out=$("$CLUSTERCTL" bench net "$T/dying.yaml" "${BENCH[@]}" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
expect_eq "one error message" "$(grep -c '^error:' <<<"$out")" 1
expect_match "it says the benchmark failed and why" "$out" \
  "^error: bench net: the benchmark over the cluster's 3 ranks failed \(mpirun on node1, exit [1-9][0-9]*\):"
# (mpirun names the rank and node, or only says that a process failed, as its timing falls)
expect_match "mpirun's reason" "$out" "rank 2 with PID [0-9]+ on node 10\.77\.2\.3 \(node3\) exited on signal 9|1 process returned|non-zero exit code"
expect_match "and the fix" "$out" "^  fix: check the nodes with 'clusterctl doctor "
expect_eq "the node table is untouched" "$(md5sum <"$NODE_TABLE")" "$before"
expect_no_job_processes "after a rank died"
expect_no_sessions_left "after a rank died"

echo "== not a cluster file"
out=$("$CLUSTERCTL" bench net "$T/none.yaml" 2>&1); rc=$?
expect_eq "exit status" "$rc" 1
expect_match "it names the file" "$out" "^error: .*$T/none\.yaml"
finish
