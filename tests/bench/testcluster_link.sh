# Sourced by the benchmark scripts that plan for the 3-node test cluster (network_e2e.sh). Each
# measure runs `clusterctl bench net CLUSTER.yaml`, the command users run: the nodes checked as
# doctor does, then mpirun on node1 over the link as `up` launches the job, with the cluster file's
# ranks, transport and emulate:.
# measure_testcluster_link CLUSTERCTL CLUSTER.yaml ERRFILE [MESSAGE_BYTES] prints LATENCY,BANDWIDTH
# for `plan --link`: the test cluster's link as its 3 ranks see it (namespaces on this machine's
# cores: a message costs far more than the `veth` preset's 2 idle ranks), from one-shot double
# all-reduces over them: the latency from 4 KiB, the bandwidth from 4 to 64 KiB (each rank sends
# (N - 1) x the message).
# With MESSAGE_BYTES (a decode step's all-reduce, n_embd x 8 for double), only that size is
# measured, and the latency is its median less the bytes each rank sends (2 x MESSAGE) at the veth
# preset's 1.5 GB/s, so that plan's latency + bandwidth terms give exactly that median (the slope
# from 4 to 64 KiB moves a lot between runs on a busy machine).
measure_testcluster_link() {
  local j min=4KiB max=64KiB
  [ -n "${4:-}" ] && min=$4 max=$4
  j=$("$1" bench net "$2" --json --no-table --algorithms one-shot --formats double --min-size "$min" \
    --max-size "$max" 2>"$3")
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

# testcluster_plan_link CLUSTERCTL CLUSTER.yaml ERRFILE MESSAGE_BYTES prints LATENCY,BANDWIDTH for
# `plan --link` at a decode message (llama3-1b: 2048 doubles, 16384). The probe already counts the
# 3 ranks meeting on 2 cores (doctor probes them together), so the link adds what an all-reduce
# over veth costs beyond the same 3 ranks' all-reduce on shared memory (`bench net --ranks 3`
# here), plus shared memory's 10 us. Prints nothing when a measurement failed.
testcluster_plan_link() {
  local veth shm
  veth=$(measure_testcluster_link "$1" "$2" "$3" "$4")
  shm=$("$1" bench net --ranks 3 --json --no-table --algorithms one-shot --formats double --min-size "$4" \
    --max-size "$4" 2>>"$3" | jq -r '[.rows[] | select(.format == "double")][0].median_us')
  echo "link over veth, 3 ranks: $veth ($4 B one-shot); the same on shared memory: $shm us" >&2
  [ -n "$veth" ] && [ -n "$shm" ] && [ "$shm" != null ] &&
    awk -v v="${veth%%us*}" -v s="$shm" 'BEGIN {l = v - s + 10; if (l < 10) l = 10; printf "%.1fus,1.5gbyte\n", l}'
}

# testcluster_net_table CLUSTERCTL CLUSTER.yaml ERRFILE MESSAGE_BYTES: bench net over the cluster's
# ranks at one decode message size, every exact algorithm over both transports (under the file's
# emulate: link, if any), writing the selection table where `plan` reads it ($CLUSTERCTL_NET_TABLE)
# as a user's run does. Prints the rows, fastest first, and the table's rules. The nodes' own table
# (their shared home, $D/home) is put back as it was: other runs read it.
testcluster_net_table() {
  local node_table=/tmp/clusterctl-testcluster/home/.config/clusterctl/allreduce-table saved=""
  [ -f "$node_table" ] && saved=$(cat "$node_table")
  "$1" bench net "$2" --json --algorithms mpi,one-shot,recursive-doubling --formats double \
    --transports mpi,tcp --min-size "$4" --max-size "$4" --iters 200 2>"$3" |
    jq -r '.rows | sort_by(.median_us) | map("\(.algorithm)/\(.transport) \(.median_us * 10 | round / 10) us") | join(", ")'
  if [ -n "$saved" ]; then printf '%s\n' "$saved" >"$node_table"; else rm -f "$node_table"; fi
  grep -v '^#' "$CLUSTERCTL_NET_TABLE" 2>/dev/null | tr '\n' ' '
}
