# Shared by the cluster tests: skip rules, assertions, and the "nothing left running" check.
# Sourced; expects $REPO (the source tree).
set -uo pipefail

D="${CLUSTERCTL_TESTCLUSTER_DIR:-/tmp/clusterctl-testcluster}"
FAILURES=0

skip_unless_root() {
  if [ "$(id -u)" != 0 ]; then echo "SKIP: the cluster tests need root (network namespaces, sshd); CI runs them as root"; exit 77; fi
  for tool in ip /usr/sbin/sshd ssh-keygen unshare ping; do
    if ! command -v "$tool" >/dev/null; then
      echo "SKIP: '$tool' is missing (deploy/install-deps.sh installs iproute2, openssh-server, iputils-ping)"
      [ "${CI:-}" = true ] && exit 1
      exit 77
    fi
  done
}

fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok: $*"; }

# expect_match NAME TEXT REGEX: TEXT has a line matching the extended REGEX
expect_match() {
  if grep -Eq -- "$3" <<<"$2"; then pass "$1"; else fail "$1: no line matches /$3/ in:"; echo "$2" | sed 's/^/    | /'; fi
}
expect_no_match() {
  if grep -Eq -- "$3" <<<"$2"; then fail "$1: unexpected line /$3/:"; grep -E -- "$3" <<<"$2" | sed 's/^/    | /'; else pass "$1"; fi
}
expect_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$3', got '$2'"; fi; }

# After a controller command, no SSH session of ours may survive on any node: each node's
# sshd must be back to having no children (sessions are sshd children).
expect_no_sessions_left() {
  local k pid children
  for k in $(seq "$(cat "$D/nodes")"); do
    [ -f "$D/node$k/sshd.pid" ] || continue
    pid=$(cat "$D/node$k/sshd.pid")
    for _ in $(seq 50); do
      children=$(pgrep -P "$pid" | while read -r c; do grep -q '^State:.*Z' "/proc/$c/status" 2>/dev/null || echo "$c"; done)
      [ -z "$children" ] && break
      sleep 0.05
    done
    if [ -n "$children" ]; then fail "$1: node$k still has ssh sessions: $(echo "$children" | tr '\n' ' ')"; return; fi
  done
  pass "$1: no ssh sessions left on any node"
}

finish() {
  if [ "$FAILURES" -gt 0 ]; then echo "$FAILURES check(s) failed"; exit 1; fi
  echo "all passed"
}

# No clusterctl-worker, orted or mpirun in any node's network namespace (`ip netns pids`), nor
# anywhere else on the machine with our test cluster's marks (the namespaces share one pid space).
expect_no_job_processes() {
  local k pid comm found=""
  for _ in $(seq 30); do
    found=""
    for k in $(seq "$(cat "$D/nodes")"); do
      for pid in $(ip netns pids "node$k" 2>/dev/null); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && continue
        case "$comm" in clusterctl-wor*|orted|mpirun) found+=" node$k:$comm($pid)" ;; esac
      done
    done
    [ -z "$found" ] && break
    sleep 0.1
  done
  if [ -n "$found" ]; then fail "$1: still running:$found"; else pass "$1: no clusterctl-worker, orted or mpirun in any node namespace"; fi
}

# "RX TX" bytes of IFACE in node K's namespace.
link_bytes() {
  ip netns exec "node$1" cat "/sys/class/net/$2/statistics/rx_bytes" "/sys/class/net/$2/statistics/tx_bytes" | tr '\n' ' '
}
