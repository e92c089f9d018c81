#!/usr/bin/env bash
# `clusterctl doctor configs/testcluster-3.yaml` against the 3-node test cluster (ctest fixture
# `testcluster` brings it up): the healthy cluster, then one broken thing at a time — a node
# whose sshd is down, an unknown host key, a changed host key, a link interface that does not
# exist — each with its expected message and no ssh session left behind.
# Usage: doctor_test.sh CLUSTERCTL REPO
CLUSTERCTL="$1"
REPO="$2"
source "$REPO/tests/cluster/testcluster_lib.sh"
require_testcluster_up
CONFIG="$REPO/configs/testcluster-3.yaml"
T=$(mktemp -d)
MODEL=$(shared_model stories260K.gguf)
# derive NAME SED-SCRIPT: a copy of the test cluster's file with one thing changed, in $T
# (the model path made absolute, since the copy no longer sits in configs/).
derive() { sed -e "s#^model: .*#model: $MODEL#" -e "$2" "$CONFIG" >"$T/$1.yaml"; }
trap '[ -f "$T/head_known_hosts" ] && cp "$T/head_known_hosts" "$D/home/.ssh/known_hosts"; nsenter --mount --target "$(cat "$D/node2/sshd.pid")" umount "$T/tiny" 2>/dev/null; rm -rf "$T"; "$REPO/deploy/testcluster" sshd-start 3 >/dev/null 2>&1 || true' EXIT

echo "== healthy cluster"
out=$("$CLUSTERCTL" doctor "$CONFIG" 2>&1); rc=$?
echo "$out"
for k in 1 2 3; do
  expect_match "node$k ssh" "$out" "^node$k +ssh +ok +root@10\.77\.1\.$k:22, host key SHA256:"
  expect_match "node$k os/arch" "$out" "^node$k +os/arch +ok +Linux $(uname -m)$"
  expect_match "node$k memory" "$out" "^node$k +memory +ok +[0-9.]+ [GM]iB available, needs .* \(33\.3% share"
  expect_match "node$k link tb0" "$out" "^node$k +link +ok +thunderbolt tb0: 10\.77\.2\.$k/24$"
  expect_match "node$k mpirun" "$out" "^node$k +mpirun +ok +/"
  expect_match "node$k reach" "$out" "^node$k +reach +ok +reaches .*over thunderbolt tb0"
  expect_match "node$k disk" "$out" "^node$k +disk +ok +[0-9.]+ [GMT]iB free in /tmp/clusterctl-testcluster/cache/node$k, the shard needs "
  # The worker lands from another engineer: until it is installed on the nodes, doctor must say so.
  expect_match "node$k worker ok or missing" "$out" "^node$k +worker +(ok +\S+ [0-9.]+|FAIL +missing)$"
done
expect_match "mpirun's ssh from the head node" "$out" "^node1 +head ssh +ok +mpirun's ssh reaches node2 \(10\.77\.2\.2\), node3 \(10\.77\.2\.3\)$"
expect_match "model sized from the GGUF file" "$out" "^controller +model +ok +.*stories260K\.gguf"
expect_no_match "nothing fails but a missing worker" "$out" "^FAIL node[0-9] (ssh|os/arch|memory|link|mpirun|reach)"
if grep -Eq "FAIL +missing" <<<"$out"; then expect_eq "exit status with the worker missing" "$rc" 1
else expect_eq "exit status of a healthy cluster" "$rc" 0; fi
expect_no_sessions_left "healthy"

json=$("$CLUSTERCTL" doctor "$CONFIG" --json)
expect_match "--json lists checks" "$json" '"check": "reach"'
expect_match "--json has ok" "$json" '"ok": (true|false)'

echo "== the nodes' speeds and the link between them, recorded for plan"
WORKER=$(cd "$(dirname "$CLUSTERCTL")/../worker" && pwd)/clusterctl-worker
derive speeds "s#^defaults:#defaults:\n  worker: $WORKER#"
out=$(CLUSTERCTL_STATE_DIR="$T/state" "$CLUSTERCTL" doctor "$T/speeds.yaml" 2>&1); rc=$?
echo "$out" | tail -4
expect_eq "exit status with the build's worker" "$rc" 0
expect_match "node speeds" "$out" "^node1 +[0-9.]+ GB/s +[0-9.]+ GB/s +[0-9.]+ GFLOPS +1$"
expect_match "link measured" "$out" "^link: [0-9.]+ us, [0-9.]+ GB/s \(one-shot double all-reduces of .* over the cluster's 3 ranks"
expect_match "the nodes are one machine (one boot id)" "$out" "^node1 shares its machine \(boot id\) with 2 other node\(s\)"
out=$(CLUSTERCTL_STATE_DIR="$T/state" "$CLUSTERCTL" plan "$T/speeds.yaml" 2>&1)
expect_match "plan takes the recorded link" "$out" "link: measured by doctor, [0-9]+ us, [0-9.]+ GB/s \(doctor, "
# The 3 nodes' one-thread ranks on this machine's cores: where they outnumber the cores, the cores
# are probed with as many ranks as fill them and plan shares them among the 3 in time.
if [ "$(nproc)" -lt 3 ]; then
  expect_match "3 ranks take turns on the cores" "$out" "3 threads take turns on $(nproc) cores: [0-9]+ % of their machine's rate"
else
  expect_no_match "each rank has a core" "$out" "take turns on"
fi
expect_no_sessions_left "speeds"

echo "== node2's and node3's boot ids cannot be read (/proc/sys/kernel/random hidden in their namespaces)"
# Their machines cannot be told, so each is a machine of its own, as up places their ranks: each
# node probed alone (not node2 and node3 together for a shared unknown), and the link not taken
# for one machine's.
hide_boot_id() { nsenter --mount --target "$(cat "$D/node$1/sshd.pid")" mount -t tmpfs tmpfs /proc/sys/kernel/random; }
show_boot_id() { nsenter --mount --target "$(cat "$D/node$1/sshd.pid")" umount /proc/sys/kernel/random; }
hide_boot_id 2 && hide_boot_id 3
out=$(CLUSTERCTL_STATE_DIR="$T/state" "$CLUSTERCTL" doctor "$T/speeds.yaml" --json 2>"$T/err"); rc=$?
show_boot_id 2; show_boot_id 3
expect_eq "exit status with the boot ids hidden" "$rc" 0
require_node
expect_eq "each node probed alone" \
  "$(json_get '.speed.map(x => x.node + " " + x.shares_machine_with).join(", ")' <<<"$out")" "node1 0, node2 0, node3 0"
expect_match "the link measured" "$out" '"latency_us"'
expect_no_match "the link not taken for one machine's" "$out" "its nodes share one machine"
expect_no_sessions_left "boot ids hidden"

echo "== this machine's worker is found beside clusterctl, not only on PATH"
out=$(PATH=/usr/bin:/bin "$CLUSTERCTL" doctor "$REPO/configs/local.yaml" 2>&1)
expect_match "local worker found beside clusterctl" "$out" "^local +worker +ok +/\S+/clusterctl-worker [0-9]+\.[0-9]+\.[0-9]+$"

echo "== node3's sshd is down"
"$REPO/deploy/testcluster" sshd-stop 3
out=$("$CLUSTERCTL" doctor "$CONFIG" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
expect_match "table" "$out" "^node3 +ssh +FAIL +root@10\.77\.1\.3:22: connection refused$"
expect_match "cause" "$out" "^FAIL node3 ssh: connection refused by 10\.77\.1\.3:22 \(no sshd is listening there\)$"
expect_match "fix" "$out" "fix: start sshd on the node, or correct 'host'/'port'"
expect_match "other nodes still checked" "$out" "^node1 +link +ok"
expect_match "node3's checks skipped" "$out" "^node3 +memory +skipped +needs ssh"
expect_no_sessions_left "sshd down"
"$REPO/deploy/testcluster" sshd-start 3

echo "== a node address where no machine answers"
derive gone "s#10\.77\.1\.3#10.77.1.9#"
out=$("$CLUSTERCTL" doctor "$T/gone.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
expect_match "table" "$out" "^node3 +ssh +FAIL +root@10\.77\.1\.9:22: unreachable$"
expect_match "cause" "$out" "^FAIL node3 ssh: 10\.77\.1\.9:22 is unreachable \(No route to host\): the machine is off, or the address is wrong$"
expect_match "fix" "$out" "fix: check that the node is on and that 'host' in the cluster file is its address \(ping 10\.77\.1\.9\)"
expect_no_sessions_left "unreachable node"

echo "== unknown host key"
: >"$T/empty_known_hosts"
derive unknown "s#known_hosts: .*#known_hosts: $T/empty_known_hosts#"
out=$("$CLUSTERCTL" doctor "$T/unknown.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
fp=$(ssh-keygen -lf "$D/node1/ssh_host_ed25519_key.pub" | awk '{print $2}')
expect_match "names the key and its fingerprint" "$out" \
  "^FAIL node1 ssh: host key of 10\.77\.1\.1 is not in $T/empty_known_hosts \(ssh-ed25519 ${fp//+/\\+}\); refusing to trust it unchecked$"
expect_match "gives the command that accepts it" "$out" "ssh-keyscan -p 22 -t ed25519 10\.77\.1\.1 >> '$T/empty_known_hosts'"
expect_eq "known_hosts left untouched" "$(wc -c <"$T/empty_known_hosts")" 0
expect_no_match "no check ran on an untrusted node" "$out" "^node[123] +os/arch +ok"
# The printed command really accepts the key (after the user compared fingerprints).
ssh-keyscan -p 22 -t ed25519 10.77.1.1 >>"$T/empty_known_hosts" 2>/dev/null
out=$("$CLUSTERCTL" doctor "$T/unknown.yaml" 2>&1)
expect_match "the suggested command works" "$out" "^node1 +ssh +ok"
expect_no_sessions_left "unknown key"

echo "== changed host key"
ssh-keygen -q -t ed25519 -N '' -f "$T/impostor"
sed "s#^\(10\.77\.1\.2,[^ ]*\) .*#\1 $(cut -d' ' -f1,2 "$T/impostor.pub")#" "$D/known_hosts" >"$T/changed_known_hosts"
derive changed "s#known_hosts: .*#known_hosts: $T/changed_known_hosts#"
out=$("$CLUSTERCTL" doctor "$T/changed.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
fp=$(ssh-keygen -lf "$D/node2/ssh_host_ed25519_key.pub" | awk '{print $2}')
expect_match "table" "$out" "^node2 +ssh +FAIL +root@10\.77\.1\.2:22: host key CHANGED$"
expect_match "names the new fingerprint" "$out" "^FAIL node2 ssh: host key of 10\.77\.1\.2 CHANGED: the server now presents ssh-ed25519 ${fp//+/\\+}"
expect_match "fix removes the old key first" "$out" "ssh-keygen -R '10\.77\.1\.2' -f '$T/changed_known_hosts' && ssh-keyscan"
expect_match "the other nodes pass" "$out" "^node1 +ssh +ok"
expect_no_sessions_left "changed key"

echo "== link interface that does not exist"
derive noif "s#interface: tb0#interface: tb9#"
out=$("$CLUSTERCTL" doctor "$T/noif.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
expect_match "table" "$out" "^node2 +link +FAIL +interface tb9 missing$"
expect_match "cause lists the interfaces" "$out" "^FAIL node2 link: node2 has no interface tb9 \(it has: lo, eth0, tb0\)$"
expect_match "the model is still sized" "$out" "^controller +model +ok"
expect_match "fix" "$out" "set 'link: interface' of node2 in $T/noif.yaml to one of: lo, eth0, tb0"
expect_no_sessions_left "missing interface"

echo "== a worker of another version"
# The nodes share this machine's filesystem, so a worker path under $T exists on every node.
printf '#!/bin/sh\necho "clusterctl-worker 0.0.9"\n' >"$T/old-worker"; chmod +x "$T/old-worker"
version=$("$CLUSTERCTL" --version | awk '{print $2}')
derive oldworker "s#^  threads: 1#  threads: 1\n  worker: $T/old-worker#"
out=$("$CLUSTERCTL" doctor "$T/oldworker.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
expect_match "table" "$out" "^node1 +worker +FAIL +version 0\.0\.9$"
expect_match "cause names both versions" "$out" "^FAIL node1 worker: the worker on node1 is version 0\.0\.9 but this controller is ${version//./\\.}$"
expect_match "fix" "$out" "install clusterctl-worker $version on the node \(versions must match exactly\)"
printf '#!/bin/sh\necho "clusterctl-worker %s"\n' "$version" >"$T/old-worker"
out=$("$CLUSTERCTL" doctor "$T/oldworker.yaml" 2>&1)
expect_match "the same version passes" "$out" "^node2 +worker +ok +$T/old-worker $version$"
expect_no_sessions_left "worker version"

echo "== the head node cannot ssh to node2 (what mpirun needs), though this machine can"
cp "$D/home/.ssh/known_hosts" "$T/head_known_hosts"
restore_head() { cp "$T/head_known_hosts" "$D/home/.ssh/known_hosts"; }
grep -v '10\.77\.2\.2' "$T/head_known_hosts" >"$D/home/.ssh/known_hosts"
out=$("$CLUSTERCTL" doctor "$CONFIG" 2>&1); rc=$?
restore_head
echo "$out"
expect_eq "exit status" "$rc" 1
expect_match "table" "$out" "^node1 +head ssh +FAIL +cannot ssh to node2$"
expect_match "cause" "$out" "^FAIL node1 head ssh: mpirun on node1 starts the other nodes' ranks over ssh, which fails for node2 \(10\.77\.2\.2\): .*Host key verification failed"
expect_match "fix" "$out" "fix: on node1, make 'ssh 10\.77\.2\.2 true' work without a password"
expect_no_match "node3 is fine" "$out" "fails for .*node3"
expect_no_sessions_left "head ssh"

echo "== too little disk for node2's shard (a 64 KiB tmpfs as its cache_dir)"
mkdir -p "$T/tiny"
sshd2=$(cat "$D/node2/sshd.pid")
nsenter --mount --target "$sshd2" mount -t tmpfs -o size=64k tmpfs "$T/tiny"
derive tinydisk "s#\(name: node2, host: 10.77.1.2\), cache_dir: [^}]*#\1, cache_dir: $T/tiny#"
out=$("$CLUSTERCTL" doctor "$T/tinydisk.yaml" 2>&1); rc=$?
echo "$out"
expect_eq "exit status" "$rc" 1
expect_match "table" "$out" "^node2 +disk +FAIL +[0-9.]+ KiB free in $T/tiny, the shard needs "
expect_match "cause" "$out" "^FAIL node2 disk: node2 has [0-9.]+ KiB free in $T/tiny but its shard needs "
expect_match "fix" "$out" "fix: free disk space on node2, set its 'cache_dir' in $T/tinydisk.yaml to a disk with room"
expect_match "node1's disk is fine" "$out" "^node1 +disk +ok"
nsenter --mount --target "$sshd2" umount "$T/tiny"
expect_no_sessions_left "disk"

echo "== a config error stops doctor before any connection"
printf 'cluster: x\nmodel: m.gguf\nnodes:\n  - {name: a, host: 10.77.1.1, prot: 22}\n' >"$T/bad.yaml"
out=$("$CLUSTERCTL" doctor "$T/bad.yaml" 2>&1); rc=$?
expect_eq "exit status" "$rc" 1
expect_match "file:line:column and hint" "$out" "$T/bad.yaml:4:32: error: unknown key 'prot' in node 'a'"
finish
