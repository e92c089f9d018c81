#!/usr/bin/env bash
# `clusterctl up` refusing, all or nothing, on the 3-node test cluster (ctest fixture
# `testcluster`): each broken thing must give its message (node, step, cause, fix), exit 1,
# record no cluster and leave no clusterctl-worker, orted, mpirun or ssh session behind.
# Usage: up_failures_test.sh CLUSTERCTL CLUSTERCTL-WORKER REPO
source "$3/tests/cluster/testcluster_lib.sh"
cluster_test_start "$@"
controller_state_in_tmp
MODEL=$(shared_model stories260K.gguf)
BASE="$T/base.yaml"
testcluster_config "$MODEL" "$BASE"
# derive NAME SED-SCRIPT: the test cluster's file with one thing broken.
derive() { sed -e "$2" "$BASE" >"$T/$1.yaml"; }
trap '"$REPO/deploy/testcluster" sshd-start 3 >/dev/null 2>&1; "$CLUSTERCTL" down testcluster >/dev/null 2>&1; rm -rf "$T"' EXIT

# up_fails NAME CONFIG REGEX [up options]: up exits 1 with a line matching REGEX and leaves nothing.
up_fails() {
  local name=$1 config=$2 regex=$3
  shift 3
  echo "== $name"
  out=$("$CLUSTERCTL" up "$config" "$@" 2>&1); rc=$?
  echo "$out" | tail -n 25
  expect_eq "$name: exit status" "$rc" 1
  expect_match "$name: message" "$out" "$regex"
  expect_match "$name: a fix or hint" "$out" "^  (fix|hint): "
  [ -e "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && fail "$name: a cluster was recorded" || pass "$name: nothing recorded"
  expect_no_job_processes "$name"
  expect_no_sessions_left "$name"
}

"$REPO/deploy/testcluster" sshd-stop 3
up_fails "sshd down on node3" "$BASE" \
  "^error: up failed at node node3, step preflight \(ssh\): connection refused by 10\.77\.1\.3:22 \(no sshd is listening there\)"
"$REPO/deploy/testcluster" sshd-start 3

grep -v '^10\.77\.1\.2,' "$D/known_hosts" >"$T/known_hosts_without_node2"
derive unknown-key "s#known_hosts: .*#known_hosts: $T/known_hosts_without_node2#"
up_fails "unknown host key of node2" "$T/unknown-key.yaml" \
  "^error: up failed at node node2, step preflight \(ssh\): host key of 10\.77\.1\.2 is not in .* \(ssh-ed25519 SHA256:.*refusing to trust it"

ssh-keygen -q -t ed25519 -N '' -f "$T/other_host_key"
awk -v other="$(cut -d' ' -f1,2 "$T/other_host_key.pub")" '/^10\.77\.1\.2,/ {print $1, other; next} {print}' "$D/known_hosts" >"$T/known_hosts_changed"
derive changed-key "s#known_hosts: .*#known_hosts: $T/known_hosts_changed#"
up_fails "changed host key of node2" "$T/changed-key.yaml" \
  "^error: up failed at node node2, step preflight \(ssh\): host key of 10\.77\.1\.2 CHANGED"

derive no-link "s#interface: tb0#interface: tb9#"
up_fails "link interface that does not exist" "$T/no-link.yaml" \
  "^error: up failed at node node[123], step preflight \(link\): node[123] has no interface tb9 \(it has: .*tb0"

derive little-memory "s#\(name: node2, host: 10.77.1.2\)#\1, memory: 64KiB#"
up_fails "too little memory on node2 (memory: 64KiB)" "$T/little-memory.yaml" \
  "^error: up failed at node node2, step preflight \(memory\): .* does not fit in 1 node\(s\)' memory: node2 needs .* and has 64\.0 KiB \(its 'memory:' limit\)"

derive tiny-share "s#\(name: node3, host: 10.77.1.3\)#\1, weight: 0.05#"
up_fails "a weight that gives node3 less than one unit of the model" "$T/tiny-share.yaml" \
  "^error: up failed at node controller, step split: the split 20,20,1 over 3 rank\(s\) cannot be cut from .*stories260K\.gguf: .*nearest split that can be made"

mkdir -p "$T/other-version"
printf '#!/bin/sh\necho "clusterctl-worker 0.0.1"\n' >"$T/other-version/clusterctl-worker"
chmod +x "$T/other-version/clusterctl-worker"
derive other-version "s#worker: .*#worker: $T/other-version/clusterctl-worker#"
up_fails "worker binary of another version" "$T/other-version.yaml" \
  "^error: up failed at node node1, step preflight \(worker\): the worker on node1 is version 0\.0\.1 but this controller is [0-9]+\.[0-9]+\.[0-9]+"

derive loopback "s#listen: 0.0.0.0:8080#listen: 127.0.0.1:8080#"
up_fails "API on the head node's loopback" "$T/loopback.yaml" \
  "^error: up failed at node node1, step api: api.listen is 127\.0\.0\.1:8080, so rank 0 on node1 would accept connections from node1 itself only"

# Failures after the job started: everything it started must be stopped on every node.
VERSION=$("$WORKER" --version | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)
mkdir -p "$T/exits" "$T/hangs"
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "clusterctl-worker %s"; exit 0; }\necho "clusterctl-worker: error: this worker refuses to serve (test)" >&2\nexit 3\n' "$VERSION" >"$T/exits/clusterctl-worker"
# (no exec: the script itself stays the process named clusterctl-worker that must be ended; it
# also leaves a copy of itself in its own session, out of mpirun's reach, as a crashed launcher
# could: up must find that one on its node by its command line and end it too)
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "clusterctl-worker %s"; exit 0; }\n[ -z "$DETACHED" ] && DETACHED=1 setsid "$0" "$@" </dev/null >/dev/null 2>&1 &\nwhile :; do sleep 0.2; done\n' "$VERSION" >"$T/hangs/clusterctl-worker"
chmod +x "$T/exits/clusterctl-worker" "$T/hangs/clusterctl-worker"
derive exits "s#worker: .*#worker: $T/exits/clusterctl-worker#"
up_fails "worker that exits at start" "$T/exits.yaml" \
  "^error: up failed at node node1, step launch: mpirun exited before the cluster answered http://10\.77\.1\.1:8080/health"
expect_match "worker's message shown" "$out" "this worker refuses to serve \(test\)"
derive hangs "s#worker: .*#worker: $T/hangs/clusterctl-worker#"
up_fails "worker that never answers /health" "$T/hangs.yaml" \
  "^error: up failed at node node1, step health check: rank 0 did not answer http://10\.77\.1\.1:8080/health with 200 within 4 s" \
  --timeout 4
expect_match "everything stopped" "$out" "nothing is left running on any node"

echo "== up interrupted (SIGINT) while waiting for /health"
"$CLUSTERCTL" up "$T/hangs.yaml" >"$T/interrupted.out" 2>&1 &
up_pid=$!
for _ in $(seq 100); do grep -q "^waiting for " "$T/interrupted.out" && break; sleep 0.1; done
sleep 0.5
kill -INT "$up_pid"
wait "$up_pid"; rc=$?
out=$(cat "$T/interrupted.out")
echo "$out" | tail -n 4
expect_eq "interrupted: exit status" "$rc" 1
expect_match "interrupted: message" "$out" "^error: up failed at node node1, step health check: interrupted while waiting for http://10\.77\.1\.1:8080/health"
expect_match "interrupted: everything stopped" "$out" "nothing is left running on any node"
[ -e "$CLUSTERCTL_STATE_DIR/testcluster.json" ] && fail "interrupted: a cluster was recorded" || pass "interrupted: nothing recorded"
expect_no_job_processes "interrupted"
expect_no_sessions_left "interrupted"

echo "== bad YAML"
printf 'cluster: testcluster\nmodel: %s\nnodes: [\n' "$MODEL" >"$T/bad.yaml"
up_fails "bad YAML" "$T/bad.yaml" "^error: .*bad\.yaml.*1 problem|bad\.yaml:[0-9]+:[0-9]+: error: YAML syntax"
derive unknown-key-yaml "s#^context:#contxt:#"
up_fails "unknown key" "$T/unknown-key-yaml.yaml" "unknown-key-yaml\.yaml:[0-9]+:1: error: unknown key 'contxt' at the top level"
finish
