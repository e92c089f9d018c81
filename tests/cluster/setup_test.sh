#!/usr/bin/env bash
# Setup of the `testcluster` fixture: `deploy/testcluster up` (3 nodes), checked.
REPO="$1"
source "$REPO/tests/cluster/testcluster_lib.sh"
skip_unless_root
"$REPO/deploy/testcluster" up --nodes 3 || { echo "FAIL: deploy/testcluster up"; exit 1; }
status=$("$REPO/deploy/testcluster" status); rc=$?
echo "$status"
expect_eq "status exit code" "$rc" 0
for k in 1 2 3; do expect_match "node$k up" "$status" "^node$k +10\.77\.1\.$k/24 +10\.77\.2\.$k/24 +up"; done
expect_eq "ssh with the generated config" "$(ssh -F "$D/ssh_config" 10.77.2.2 hostname 2>&1)" node2
expect_eq "node to node by name" "$(ip netns exec node1 ssh -F "$D/ssh_config" node3 hostname 2>&1)" node3
finish
