# Shared by the CLI tests that bring a cluster `up` on this machine (ranks on localhost, not the
# network-namespace test cluster): the start of a test, a greedy completion through the cluster's
# API, and one process's greedy text to compare it with.
# Sourced after ../shared_data.sh.

# local_up_start CLUSTER CLUSTERCTL CLUSTERCTL-WORKER SHARED_DIR: CTL, WORKER (absolute path),
# MODEL (stories260K.gguf of SHARED_DIR; the test skips when it is absent), T (a new temporary
# folder holding the controller's state and cache) and PORT (a random API port). On exit the
# cluster CLUSTER is brought down and T removed.
local_up_start() {
  CLUSTER=$1
  CTL=${2:?usage: $(basename "$0") CLUSTERCTL CLUSTERCTL-WORKER SHARED_DIR}
  WORKER=$(realpath "${3:?usage: $(basename "$0") CLUSTERCTL CLUSTERCTL-WORKER SHARED_DIR}")
  MODEL=${4:?usage: $(basename "$0") CLUSTERCTL CLUSTERCTL-WORKER SHARED_DIR}/models/stories260K.gguf
  require_shared_file "$MODEL"
  T=$(mktemp -d)
  export CLUSTERCTL_STATE_DIR=$T/state CLUSTERCTL_CACHE_DIR=$T/cache
  PORT=$((20000 + RANDOM % 20000))
  trap '"$CTL" down "$CLUSTER" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
}

# api_greedy_text N: the text of N greedy tokens after "Once upon a time" from the cluster's API.
api_greedy_text() {
  curl -s --max-time 60 "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":$1,\"temperature\":0}" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['choices'][0]['text'])"
}

# one_process_greedy_text N: the same N tokens from one local process (`clusterctl run`, no cluster).
one_process_greedy_text() {
  CLUSTERCTL_STATE_DIR="$T/none" "$CTL" run "$MODEL" "Once upon a time" -n "$1" --temp 0 --json 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['text'])"
}
