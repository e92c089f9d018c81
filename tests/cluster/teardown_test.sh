#!/usr/bin/env bash
# Cleanup of the `testcluster` fixture: `deploy/testcluster down` must leave nothing behind —
# no node namespace, no bridge, no sshd of ours — and a second `down` must succeed too.
REPO="$1"
source "$REPO/tests/cluster/testcluster_lib.sh"
skip_unless_root
"$REPO/deploy/testcluster" down || fail "down failed"
"$REPO/deploy/testcluster" down || fail "second down failed (teardown must be idempotent)"
expect_eq "no node namespaces" "$(ip netns list | grep -c '^node[0-9]')" 0
expect_eq "no bridges" "$(ip -o link show | grep -cE ': br-(eth|tb)[:@]')" 0
expect_eq "no sshd of ours" "$(pgrep -f "sshd -f $D/node" | wc -l)" 0
expect_eq "no veths" "$(ip -o link show | grep -cE ': v[0-9]+-(eth|tb)[:@]')" 0
finish
