#!/usr/bin/env bash
# Issue #17: Ctrl-C (SIGINT) or SIGTERM while `clusterctl up`, `doctor`, `plan` or `bench net` runs
# its checks on the nodes, while `doctor` runs a node's speed probe, or while `up` copies the
# shards, on the 3-node test cluster (ctest fixture `testcluster`), must stop what runs on every
# node, say so in one `error:` line naming the signal and what to run again, exit 128 + the
# signal, and leave nothing behind: no process that was not there before, no ssh session, no
# cluster state, no node speed recorded, no half-cut shards (a partial copy on a node is kept for
# the next `up` to resume from).
# Usage: probe_interrupt_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$(dirname "$0")/testcluster_lib.sh"
cluster_test_start "$@"
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)

# The processes in the nodes' namespaces, "NODE:PID" a line (zombies left out).
node_pids() {
  local k pid
  for k in $(seq "$(cat "$D/nodes")"); do
    for pid in $(ip netns pids "node$k" 2>/dev/null); do
      grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || echo "node$k:$pid"
    done
  done | sort
}
BEFORE=$(node_pids)
# new_pids: the processes in the nodes' namespaces that were not there when the test began.
new_pids() { comm -13 <(echo "$BEFORE") <(node_pids); }
# What a failed check left running would disturb the next test: it goes, by pid, at the end.
kill_leftovers() {
  local p
  for p in $(new_pids); do kill -9 "${p#*:}" 2>/dev/null; done
  rm -rf "$T"
}
trap kill_leftovers EXIT

# Workers that take their time where the signal must find them: answering --version (each node's
# worker check, in `up`'s preflight), and measuring (the real probe, again and again).
printf '#!/bin/sh\ncase " $* " in *" --version "*) sleep 60 ;; esac\nexec %s "$@"\n' "$WORKER" >"$T/slow-version-worker"
printf '#!/bin/sh\ncase " $* " in *" --probe-speed "*) while :; do %s "$@" >/dev/null; done ;; esac\nexec %s "$@"\n' \
  "$WORKER" "$WORKER" >"$T/slow-probe-worker"
chmod +x "$T/slow-version-worker" "$T/slow-probe-worker"
WORKER="$T/slow-version-worker" testcluster_config "$MODEL" "$T/slow-checks.yaml"
WORKER="$T/slow-probe-worker" testcluster_config "$MODEL" "$T/slow-probe.yaml"

# running_on N PATTERN: waits (at most 60 s) until a process whose command line has PATTERN runs
# in N nodes' namespaces.
running_on() {
  local want=$1 pattern=$2 k pid n
  for _ in $(seq 600); do
    n=0
    for k in $(seq "$(cat "$D/nodes")"); do
      for pid in $(ip netns pids "node$k" 2>/dev/null); do
        tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$pattern" && n=$((n + 1)) && break
      done
    done
    [ "$n" -ge "$want" ] && return 0
    sleep 0.1
  done
  return 1
}

# interrupt SIGNAL WHAT NODES PATTERN COMMAND...: runs COMMAND in the background, sends SIGNAL to it
# once PATTERN runs on NODES nodes (and then the command in $THEN_WAIT_FOR, if set, succeeds: at
# most 60 s), and leaves its output in $out and its exit status in $rc. (With job control on, as
# in a terminal: a script's background command otherwise ignores SIGINT.)
interrupt() {
  local sig=$1 what=$2 nodes=$3 pattern=$4 pid
  shift 4
  set -m
  "$@" >"$T/out" 2>&1 &
  pid=$!
  set +m
  if running_on "$nodes" "$pattern"; then pass "$what: it runs on $nodes node(s)"; else fail "$what: it never ran on $nodes node(s)"; fi
  if [ -n "${THEN_WAIT_FOR:-}" ]; then
    for _ in $(seq 600); do eval "$THEN_WAIT_FOR" && break; sleep 0.1; done
  fi
  kill "-$sig" "$pid"
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then fail "$what: clusterctl still runs 60 s after $sig"; kill -9 "$pid"; fi
  wait "$pid"
  rc=$?
  out=$(cat "$T/out")
  echo "$out"
}

# nothing_left WHAT: no process the test's command started, and no ssh session, on any node.
nothing_left() {
  local left=""
  for _ in $(seq 30); do
    left=$(new_pids)
    [ -z "$left" ] && break
    sleep 0.1
  done
  if [ -z "$left" ]; then
    pass "$1: no process left on any node"
  else
    fail "$1: still running:$(for p in $left; do echo -n " ${p%%:*}:$(tr '\0' ' ' <"/proc/${p#*:}/cmdline" 2>/dev/null)"; done)"
  fi
  expect_no_sessions_left "$1"
}

echo "== Ctrl-C during up's checks"
interrupt INT "up's checks, SIGINT" 3 "slow-version-worker.* --version" "$CLUSTERCTL" up "$T/slow-checks.yaml"
expect_eq "exit status 128 + SIGINT" "$rc" 130
expect_eq "one error line" "$(grep -c '^error:' <<<"$out")" 1
expect_match "it names the signal, what was stopped and what to run again" "$out" \
  "^error: up: interrupted by SIGINT during the checks; the checks were stopped on every node; nothing was started \(run 'clusterctl up $T/slow-checks\.yaml' again\)$"
nothing_left "after SIGINT to up"
expect_eq "no cluster state recorded" "$(ls "$CLUSTERCTL_STATE_DIR" 2>/dev/null)" ""

echo "== SIGTERM during up's checks"
interrupt TERM "up's checks, SIGTERM" 3 "slow-version-worker.* --version" "$CLUSTERCTL" up "$T/slow-checks.yaml"
expect_eq "exit status 128 + SIGTERM" "$rc" 143
expect_match "it names the signal" "$out" "^error: up: interrupted by SIGTERM during the checks; the checks were stopped on every node"
nothing_left "after SIGTERM to up"

echo "== SIGTERM during doctor's speed probe"
interrupt TERM "doctor's speed probe, SIGTERM" 1 "clusterctl-worker --probe-speed" "$CLUSTERCTL" doctor "$T/slow-probe.yaml"
expect_eq "exit status 128 + SIGTERM" "$rc" 143
expect_eq "one error line" "$(grep -c '^error:' <<<"$out")" 1
expect_match "it names the signal, the probe stopped and what to run again" "$out" \
  "^error: doctor: interrupted by SIGTERM during node1's speed probe; the probe was stopped on node1; no node's speed was recorded \(run 'clusterctl doctor $T/slow-probe\.yaml' again\)$"
nothing_left "after SIGTERM to doctor"
expect_eq "no node speed recorded" "$(ls "$CLUSTERCTL_STATE_DIR/node-speeds.cache"* 2>/dev/null)" ""

echo "== Ctrl-C during doctor's checks"
interrupt INT "doctor's checks, SIGINT" 3 "slow-version-worker.* --version" "$CLUSTERCTL" doctor "$T/slow-checks.yaml"
expect_eq "exit status 128 + SIGINT" "$rc" 130
expect_match "it names the signal and what to run again" "$out" \
  "^error: doctor: interrupted by SIGINT during the checks; the checks were stopped on every node; nothing was recorded \(run 'clusterctl doctor $T/slow-checks\.yaml' again\)$"
nothing_left "after SIGINT to doctor's checks"

F="$T/slow-checks\.yaml"
for cmd in "plan|nothing was planned \(run 'clusterctl plan $F' again\)" \
  "bench net|no selection table was written \(run 'clusterctl bench net $F' again to measure the link\)"; do
  verb=${cmd%%|*}
  echo "== Ctrl-C during $verb's checks"
  # shellcheck disable=SC2086 # "bench net" is two words
  interrupt INT "$verb's checks, SIGINT" 3 "slow-version-worker.* --version" "$CLUSTERCTL" $verb "$T/slow-checks.yaml"
  expect_eq "exit status 128 + SIGINT" "$rc" 130
  expect_eq "one error line" "$(grep -c '^error:' <<<"$out")" 1
  expect_match "it names the signal and what to run again" "$out" \
    "^error: $verb: interrupted by SIGINT during the checks; the checks were stopped on every node; ${cmd#*|}$"
  nothing_left "after SIGINT to $verb's checks"
done

echo "== Ctrl-C during up's shard copy (node2's eth0, which the copy takes, at 64 kbit/s)"
# node2 gets its shard at 8 KB/s: the signal finds its copy running. It must stop there at once
# (not run on through what the controller's socket still held), keep what node2 received for the
# next up to resume from, and remove nothing else; the next up copies node2 only the rest.
trap 'unlimit_node_link 2; "$CLUSTERCTL" down testcluster >/dev/null 2>&1; kill_leftovers' EXIT
testcluster_config "$MODEL" "$T/copy.yaml"
rm -rf "$D"/cache/node2/stories260K-*
limit_node_link 2 64kbit
partial_bytes() { stat -c %s "$D"/cache/node2/stories260K-*/.stories260K.rank1of3.gguf.partial 2>/dev/null || echo 0; }
THEN_WAIT_FOR='[ "$(partial_bytes)" -ge 16384 ]' \
  interrupt INT "up's copy to node2, SIGINT" 1 "tee .*cache/node2/.*partial" "$CLUSTERCTL" up "$T/copy.yaml"
expect_eq "exit status 128 + SIGINT" "$rc" 130
expect_eq "one error line" "$(grep -c '^error:' <<<"$out")" 1
expect_match "it names the signal, the copies stopped, that they resume, and what to run again" "$out" \
  "^error: up: interrupted by SIGINT while copying the shards; the copies were stopped on every node \(each resumes where it stopped on the next up\); nothing was started \(run 'clusterctl up $T/copy\.yaml' again\)$"
nothing_left "after SIGINT to up's copy"
unlimit_node_link 2
expect_eq "no cluster state recorded" "$(ls "$CLUSTERCTL_STATE_DIR" 2>/dev/null)" ""
expect_eq "no temp folder left in the controller's cut cache" "$(ls -a "$CLUSTERCTL_CACHE_DIR/cut" | grep -c '^\.tmp')" 0
cut=$(ls "$CLUSTERCTL_CACHE_DIR"/cut/stories260K-*/stories260K.rank1of3.gguf)
kept=$(partial_bytes)
whole=$(stat -c %s "$cut")
if [ "$kept" -gt 0 ] && [ "$kept" -lt "$whole" ]; then pass "node2 keeps a partial copy ($kept of $whole bytes)"
else fail "node2's partial copy: $kept of $whole bytes (want some, not all)"; fi
expect_eq "node2 has no shard yet" "$(ls "$D"/cache/node2/stories260K-*/stories260K.rank1of3.gguf 2>/dev/null)" ""
out=$("$CLUSTERCTL" up "$T/copy.yaml" 2>&1); rc=$?
expect_eq "the next up's exit status" "$rc" 0
sent=$(grep -o '^  node2: [0-9.]* [KM]*i*B copied' <<<"$out" | awk '{v=$2; if ($3=="KiB") v*=1024; if ($3=="MiB") v*=1048576; printf "%d", v}')
if [ -n "$sent" ] && [ "$sent" -le $((whole - kept + 1024)) ]; then pass "the next up sent node2 only the rest ($sent bytes)"
else fail "the next up sent node2 ${sent:-?} bytes, not the $((whole - kept)) left: $(grep node2: <<<"$out")"; fi
f=$(ls "$D"/cache/node2/stories260K-*/stories260K.rank1of3.gguf 2>/dev/null)
[ -n "$f" ] && expect_eq "node2's resumed shard is the cut" "$(sha256sum <"$f")" "$(sha256sum <"$cut")" || fail "no shard on node2"
"$CLUSTERCTL" down testcluster >/dev/null 2>&1 || fail "down after the resumed up"
finish
