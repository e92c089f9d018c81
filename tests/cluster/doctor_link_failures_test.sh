#!/usr/bin/env bash
# Issue #17: what `clusterctl doctor CLUSTER.yaml` tells a user when its link probe (the cluster's
# all-reduces under mpirun on node1, on the 3-node test cluster: ctest fixture `testcluster`) fails
# on one node: node3's rank dies, or node3's daemon is lost as when the node drops off the link.
# The line must name node3 and the reason the ranks or mpirun gave (bench net's why_it_stopped),
# not the first bytes of mpirun's output; nothing may be recorded or left running.
# Usage: doctor_link_failures_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$(dirname "$0")/testcluster_lib.sh"
cluster_test_start "$@"
controller_state_in_tmp
trap 'rm -rf "$T"' EXIT
MODEL=$(shared_model stories260K.gguf)

# node3_worker NAME ACTION: a config whose node3 runs a worker that does ACTION instead of the link
# probe's all-reduces (--bench-net), and is the real worker otherwise (preflight, the speed probe).
node3_worker() {
  printf '#!/bin/sh\ncase " $* " in *" --bench-net "*) %s ;; esac\nexec %s "$@"\n' "$2" "$WORKER" >"$T/$1-worker"
  chmod +x "$T/$1-worker"
  testcluster_config "$MODEL" "$T/$1.yaml" -e "s#\(name: node3, host: 10.77.1.3\)#\1, worker: $T/$1-worker#"
}

# doctor_link NAME: doctor's output for $T/NAME.yaml in $out, its link line in $line.
doctor_link() {
  out=$("$CLUSTERCTL" doctor "$T/$1.yaml" 2>&1)
  rc=$?
  echo "$out" | sed -n '/^link/,$p'
  line=$(sed -n '/^link not measured/,$p' <<<"$out")
  expect_eq "$1: exit status (the checks passed)" "$rc" 0
  expect_match "$1: the link was not measured, and plan's fallback named" "$line" \
    "^link not measured \('plan' takes the link type's preset, or --link\): the all-reduce over the link \(mpirun on node1\) failed \(exit [1-9][0-9]*\):$"
  expect_eq "$1: nothing recorded" "$(ls "$CLUSTERCTL_STATE_DIR/link-speeds.cache" 2>/dev/null)" ""
  expect_no_job_processes "$1"
  expect_no_sessions_left "$1"
}

echo "== node3's rank dies"
node3_worker dies 'kill -9 $$'
doctor_link dies
# (mpirun names the rank and node, or only says that a process failed, as its timing falls)
expect_match "dies: mpirun's reason, naming node3" "$line" \
  "^  \| .*(rank 2 with PID [0-9]+ on node 10\.77\.2\.3 \(node3\) exited on signal 9|1 process returned|non-zero exit code)"
expect_no_match "dies: not mpirun's banner" "$line" "^  \| -+$"

echo "== node3's daemon is lost"
node3_worker lost 'kill -9 $PPID; exit 1'
doctor_link lost
expect_match "lost: mpirun's reason, naming node3" "$line" \
  "^  \| .*(on node 10\.77\.2\.3 \(node3\)|lost communication|non-zero exit code)"
finish
