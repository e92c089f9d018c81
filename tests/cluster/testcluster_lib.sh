# Shared by the cluster tests: the start of a test, skip rules, assertions, and the "nothing left
# running" check.
# Sourced; the functions that use $REPO (the source tree) run after cluster_test_start sets it.
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

# cluster_test_start CLUSTERCTL CLUSTERCTL-WORKER REPO: the start of a test on the running test
# cluster (sourced from REPO): the arguments as CLUSTERCTL, WORKER (absolute paths) and REPO, the
# skip rules, and the cluster must be up.
cluster_test_start() {
  CLUSTERCTL=$(realpath "$1")
  WORKER=$(realpath "$2")
  REPO="$3"
  require_testcluster_up
}

# The skip rules, then the test cluster must be up (the ctest fixture `testcluster` brings it up).
require_testcluster_up() {
  skip_unless_root
  [ -f "$D/nodes" ] || { echo "FAIL: the test cluster is not up (run: deploy/testcluster up)"; exit 1; }
}

# controller_state_in_tmp: $T, a new temporary folder, holds this test's controller state and cache.
controller_state_in_tmp() {
  T=$(mktemp -d)
  export CLUSTERCTL_STATE_DIR="$T/state" CLUSTERCTL_CACHE_DIR="$T/controller-cache"
}

# shared_model FILE: the absolute path of ../shared/models/FILE next to the source tree.
shared_model() { (cd "$REPO/configs" && realpath -m "../../shared/models/$1"); }

# testcluster_config MODEL OUT [SED-ARGS...]: configs/testcluster-3.yaml with `model: MODEL` and
# this build's worker ($WORKER), changed further by SED-ARGS, written to OUT.
testcluster_config() {
  local model=$1 out=$2
  shift 2
  sed -e "s#^model: .*#model: $model#" -e "s#^defaults:#defaults:\n  worker: $WORKER#" "$@" \
    "$REPO/configs/testcluster-3.yaml" >"$out"
}

require_node() {
  command -v node >/dev/null || { echo "FAIL: node (Node.js) is needed to read JSON; deploy/install-deps.sh installs it"; exit 1; }
}
# json_get EXPR: EXPR (e.g. '["data"][0]["id"]') of the JSON on stdin; objects printed as JSON.
json_get() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=eval("JSON.parse(s)"+process.argv[1]);console.log(typeof v==="object"?JSON.stringify(v):v)})' "$1"; }

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

# limit_node_link K RATE: node K's eth0, which SSH and so the shard copies take, limited to RATE
# (e.g. 500kbit) both ways with tbf (netem is not in every kernel; a rate is all the tests need);
# unlimit_node_link K takes the limit off again.
limit_node_link() {
  tc qdisc replace dev "v$1-eth" root tbf rate "$2" burst 16kb latency 400ms
  ip netns exec "node$1" tc qdisc replace dev eth0 root tbf rate "$2" burst 16kb latency 400ms
}
unlimit_node_link() {
  tc qdisc del dev "v$1-eth" root 2>/dev/null
  ip netns exec "node$1" tc qdisc del dev eth0 root 2>/dev/null
}

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
