# Starts tests/hub/hub_test_server.py for a test: start_hub SRC ROOT LOG [server flags...] sets
# HUB_PID and exports HF_ENDPOINT (http://127.0.0.1:PORT). The caller kills $HUB_PID at exit.
start_hub() {
  local src=$1 root=$2 log=$3
  shift 3
  local portfile
  portfile=$(mktemp)
  python3 "$src/tests/hub/hub_test_server.py" --root "$root" --log "$log" "$@" >"$portfile" 2>"$portfile.err" &
  HUB_PID=$!
  for _ in $(seq 100); do grep -q '^port' "$portfile" 2>/dev/null && break; sleep 0.1; done
  local port
  port=$(awk '/^port/{print $2}' "$portfile")
  if [ -z "$port" ]; then
    echo "FAIL: the hub test server did not start: $(cat "$portfile.err")"
    rm -f "$portfile" "$portfile.err"
    return 1
  fi
  rm -f "$portfile" "$portfile.err"
  export HF_ENDPOINT=http://127.0.0.1:$port
}

# served LOG SHA256: "start:sent" of each download of that object the server logged, in order.
served() {
  python3 -c 'import json,sys; print(" ".join("%d:%d" % (e["start"], e["sent"]) for e in map(json.loads, open(sys.argv[1])) if e["sha256"] == sys.argv[2]))' "$1" "$2"
}
