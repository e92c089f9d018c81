#!/usr/bin/env bash
# Issue #17: Ctrl-C (SIGINT) or SIGTERM while `clusterctl bench net CLUSTER.yaml` or doctor's link
# probe runs its all-reduces on the 3-node test cluster (ctest fixture `testcluster`) must end
# mpirun on node1 and every rank on every node, say so in one `error:` line naming the signal and
# what to run again, exit 128 + the signal, and leave nothing behind: no worker, orted, mpirun or
# ssh session on any node, no hostfile, no table written or half-written.
# Usage: bench_net_interrupt_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$(dirname "$0")/testcluster_lib.sh"
cluster_test_start "$@"
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)
NODE_TABLE="$D/home/.config/clusterctl/allreduce-table"  # /root/.config/... inside every node
HOSTFILE=/tmp/clusterctl-bench-net-testcluster.hostfile    # the namespaces share this /tmp
export CLUSTERCTL_NET_TABLE="$T/plan-table"
# What a failed check left running would disturb the next test: it goes, by pid, at the end.
kill_leftovers() {
  local k pid
  for k in 1 2 3; do
    for pid in $(ip netns pids "node$k" 2>/dev/null); do
      case "$(cat "/proc/$pid/comm" 2>/dev/null)" in clusterctl-wor* | orted | mpirun) kill -9 "$pid" ;; esac
    done
  done
  rm -rf "$T"
}
trap kill_leftovers EXIT
testcluster_config "$MODEL" "$T/c.yaml"
# Doctor's link probe asks for the worker's default iterations: its ranks here run a million, so
# that they last until a signal ends them (bench net is asked for as many with --iters).
printf '#!/bin/sh\ncase " $* " in *" --bench-net "*) exec %s "$@" --iters 1000000 ;; esac\nexec %s "$@"\n' \
  "$WORKER" "$WORKER" >"$T/long-worker"
chmod +x "$T/long-worker"
WORKER="$T/long-worker" testcluster_config "$MODEL" "$T/long.yaml"
table_state() { md5sum "$NODE_TABLE" 2>/dev/null; ls -a "$(dirname "$NODE_TABLE")" 2>/dev/null | tr '\n' ' '; }

# ranks_on_every_node: waits (at most 60 s) until a clusterctl-worker runs in every node's namespace.
ranks_on_every_node() {
  local k pid n
  for _ in $(seq 600); do
    n=0
    for k in 1 2 3; do
      for pid in $(ip netns pids "node$k" 2>/dev/null); do
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in clusterctl-wor*) n=$((n + 1)) && break ;; esac
      done
    done
    [ "$n" = 3 ] && return 0
    sleep 0.1
  done
  return 1
}

# interrupt SIGNAL WHAT COMMAND...: runs COMMAND in the background, sends SIGNAL to it once its ranks
# run on every node, and leaves its output in $out and its exit status in $rc. (With job control on,
# as in a terminal: a script's background command otherwise starts with SIGINT ignored.)
interrupt() {
  local sig=$1 what=$2 pid
  shift 2
  set -m
  "$@" >"$T/out" 2>&1 &
  pid=$!
  set +m
  if ranks_on_every_node; then pass "$what: its ranks run on every node"; else fail "$what: its ranks never ran on every node"; fi
  sleep 1  # past MPI_Init, into the all-reduces
  kill "-$sig" "$pid"
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then fail "$what: it still runs 60 s after $sig"; kill -9 "$pid"; fi
  wait "$pid"
  rc=$?
  out=$(cat "$T/out")
  echo "$out"
}

# nothing_left WHAT: no process, session, hostfile or table change after WHAT.
nothing_left() {
  expect_no_job_processes "$1"
  expect_no_sessions_left "$1"
  expect_eq "$1: no hostfile left on node1" "$(ls "$HOSTFILE" 2>/dev/null)" ""
  expect_eq "$1: the node table and its folder are as they were" "$(table_state)" "$before"
  expect_eq "$1: no table for plan written here" "$(ls "$T/plan-table"* 2>/dev/null)" ""
}

before=$(table_state)
BENCH=(--min-size 16KiB --max-size 16KiB --formats double --algorithms one-shot --iters 1000000)

echo "== Ctrl-C during bench net"
interrupt INT "bench net, SIGINT" "$CLUSTERCTL" bench net "$T/c.yaml" "${BENCH[@]}"
expect_eq "exit status 128 + SIGINT" "$rc" 130
expect_eq "one error line" "$(grep -c '^error:' <<<"$out")" 1
expect_match "it names the signal, what was stopped and what to run again" "$out" \
  "^error: bench net: interrupted by SIGINT; mpirun was stopped on node1, and with it the ranks it started on every node; no selection table was written \(run 'clusterctl bench net $T/c\.yaml' again to measure the link\)$"
nothing_left "after SIGINT to bench net"

echo "== SIGTERM during bench net"
interrupt TERM "bench net, SIGTERM" "$CLUSTERCTL" bench net "$T/c.yaml" "${BENCH[@]}"
expect_eq "exit status 128 + SIGTERM" "$rc" 143
expect_match "it names the signal" "$out" "^error: bench net: interrupted by SIGTERM; mpirun was stopped on node1"
nothing_left "after SIGTERM to bench net"

echo "== Ctrl-C during doctor's link probe"
HOSTFILE=/tmp/clusterctl-doctor-testcluster.hostfile
interrupt INT "doctor's link probe, SIGINT" "$CLUSTERCTL" doctor "$T/long.yaml"
expect_eq "exit status 128 + SIGINT" "$rc" 130
expect_eq "one error line" "$(grep -c '^error:' <<<"$out")" 1
expect_match "it names the signal, what was stopped and what to run again" "$out" \
  "^error: doctor: interrupted by SIGINT during the link probe; mpirun was stopped on node1, and with it the ranks it started on every node; the link's speed was not recorded \(run 'clusterctl doctor $T/long\.yaml' again\)$"
expect_eq "no link speed recorded" "$(ls "$CLUSTERCTL_STATE_DIR/link-speeds.cache" 2>/dev/null)" ""
nothing_left "after SIGINT to doctor"
finish
