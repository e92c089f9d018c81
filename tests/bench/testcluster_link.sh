# Sourced by the benchmark scripts that plan for the 3-node test cluster (planner_accuracy.sh,
# network_e2e.sh). measure_testcluster_link WORKER CLUSTER ERRFILE prints LATENCY,BANDWIDTH for
# `plan --link`: the test cluster's link as its 3 ranks see it (namespaces on this machine's cores:
# a message costs far more than the `veth` preset's 2 idle ranks), from `bench net`'s one-shot
# double all-reduces over them (mpirun on node1 as `up` launches the job, with the hostfile `up`
# wrote for CLUSTER): the latency from 4 KiB, the bandwidth from 4 to 64 KiB (each rank sends
# (N - 1) x the message).
# With MESSAGE_BYTES (4th argument: a decode step's all-reduce, n_embd x 8 for double), only that
# size is measured, and the latency is its median less the bytes each rank sends (2 x MESSAGE) at
# the veth preset's 1.5 GB/s, so that plan's latency + bandwidth terms give exactly that median (the
# slope from 4 to 64 KiB moves a lot between runs on a busy machine).
measure_testcluster_link() {
  local D=/tmp/clusterctl-testcluster a j min=4KiB max=64KiB
  [ -n "${4:-}" ] && min=$4 max=$4
  a="$1 --bench-net --json --no-table --algorithms one-shot --formats double --min-size $min --max-size $max"
  j=$(ssh -i $D/id_ed25519 -o UserKnownHostsFile=$D/known_hosts -o BatchMode=yes root@10.77.1.1 \
    "PATH=\$PATH:/usr/local/bin; mpirun --bind-to none --allow-run-as-root --hostfile $D/cache/node1/$2.hostfile \
     --mca btl_tcp_if_include 10.77.2.0/24 --mca oob_tcp_if_include 10.77.2.0/24 --mca mpi_yield_when_idle 1 \
     -np 1 -H 10.77.2.1:1 $a : -np 1 -H 10.77.2.2:1 $a : -np 1 -H 10.77.2.3:1 $a" 2>"$3")
  if [ -n "${4:-}" ]; then
    jq -r --argjson m "$4" '[.rows[] | select(.algorithm == "one-shot" and .format == "double")][0].median_us |
      "\([. - 2 * $m / 1500, 1] | max | . * 10 | round / 10)us,1.5gbyte"' <<<"$j" 2>/dev/null
    return
  fi
  jq -r '[.rows[] | select(.algorithm == "one-shot" and .format == "double")] as $r |
    ($r | map(select(.bytes == 4096))[0].median_us) as $s | ($r | map(select(.bytes == 65536))[0].median_us) as $l |
    (if $l > $s then 2 * (65536 - 4096) / ($l - $s) / 1000 else 1.5 end) as $bw |
    "\([($s - 2 * 4096 / ($bw * 1000)), 1] | max | . * 10 | round / 10)us,\($bw * 1000 | round / 1000)gbyte"' \
    <<<"$j" 2>/dev/null
}

# testcluster_plan_link WORKER CLUSTER ERRFILE CLUSTERCTL MESSAGE_BYTES prints LATENCY,BANDWIDTH for
# `plan --link` at a decode message (llama3-1b: 2048 doubles, 16384). The probe already counts the
# 3 ranks meeting on 2 cores (doctor probes them together), so the link adds what an all-reduce
# over veth costs beyond the same 3 ranks' all-reduce on shared memory (`bench net --ranks 3`
# here), plus shared memory's 10 us. Prints nothing when a measurement failed.
testcluster_plan_link() {
  local veth shm
  veth=$(measure_testcluster_link "$1" "$2" "$3" "$5")
  shm=$("$4" bench net --ranks 3 --json --no-table --algorithms one-shot --formats double --min-size "$5" \
    --max-size "$5" 2>>"$3" | jq -r '[.rows[] | select(.format == "double")][0].median_us')
  echo "link over veth, 3 ranks: $veth ($5 B one-shot); the same on shared memory: $shm us" >&2
  [ -n "$veth" ] && [ -n "$shm" ] && [ "$shm" != null ] &&
    awk -v v="${veth%%us*}" -v s="$shm" 'BEGIN {l = v - s + 10; if (l < 10) l = 10; printf "%.1fus,1.5gbyte\n", l}'
}

# testcluster_net_table WORKER ERRFILE MESSAGE_BYTES TABLE [EMULATE]: `bench net` over the test
# cluster's 3 ranks (mpirun on node1 over the link, as `up` launches a job) at one decode message
# size, every exact algorithm over both transports (EMULATE: under that emulated link), writing
# the selection table to TABLE as `bench net` does for the workers. Prints the table's rule.
testcluster_net_table() {
  local D=/tmp/clusterctl-testcluster a
  a="$1 --bench-net --json --algorithms mpi,one-shot,recursive-doubling --formats double --transports mpi,tcp"
  a+=" --min-size $3 --max-size $3 --iters 200 --table $4${5:+ --emulate-link $5}"
  ssh -i $D/id_ed25519 -o UserKnownHostsFile=$D/known_hosts -o BatchMode=yes root@10.77.1.1 \
    "PATH=\$PATH:/usr/local/bin; mpirun --bind-to none --allow-run-as-root --hostfile $D/hostfile \
     --mca btl_tcp_if_include 10.77.2.0/24 --mca oob_tcp_if_include 10.77.2.0/24 --mca mpi_yield_when_idle 1 \
     -np 1 -H 10.77.2.1:1 $a : -np 1 -H 10.77.2.2:1 $a : -np 1 -H 10.77.2.3:1 $a" 2>"$2" |
    jq -r '.rows | sort_by(.median_us) | map("\(.algorithm)/\(.transport) \(.median_us * 10 | round / 10) us") | join(", ")'
  grep -v '^#' "$4" 2>/dev/null | tr '\n' ' '
}
