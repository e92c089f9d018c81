#!/usr/bin/env bash
# `clusterctl pull` against a local hub (hub_test_server.py: real HTTP, listing pages, redirects
# to a "CDN", ranges, LFS SHA-256, a gated repo, a connection cut mid-file, a corrupted byte),
# serving tiny GGUF files made here by `clusterctl model synth`:
#   a single file and a split one (3 parts) into the standard hub cache layout; resume after a cut
#   connection and after a stopped run, with the server's log showing no byte sent twice; a
#   corrupted byte refused by SHA-256 and the bad download deleted; a missing quant named with the
#   ones that exist; a gated repo refused without a token (naming the fix) and pulled with it (the
#   token never reaching the CDN); no network (and the copy pulled earlier used); HF_HUB_CACHE;
#   `run` and `run --ranks 2` with a repo name pull and answer as a run of the file does; `serve`
#   with a repo name serves it under that name.
# Usage: pull_test.sh CLUSTERCTL SHARED_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"
CTL=$(realpath "${1:?usage: pull_test.sh CLUSTERCTL SHARED_DIR SOURCE_DIR}")
SHARED=${2:?}
SRC=${3:?}
VOCAB=$SHARED/models/stories260K.gguf
require_shared_file "$VOCAB"
T=$(mktemp -d)
HUB_PID=
cleanup() { [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
failures=0
pass() { echo "ok: $1"; }
fail() { echo "FAIL: $1"; failures=$((failures + 1)); }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }  # check NAME CONDITION
contains() { grep -qF -- "$2" <<<"$1"; }
export CLUSTERCTL_STATE_DIR="$T/no-clusters"
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_HUB_OFFLINE HF_TOKEN_PATH

echo "== tiny models in a local hub"
R=$T/repos
mkdir -p "$R/testorg/Tiny-GGUF/F16" "$R/testorg/Gated-GGUF" "$R/testorg/Bad-GGUF"
synth() { "$CTL" model synth --shape tiny --vocab "$VOCAB" --threads 1 "$@" >/dev/null || fail "synth $*"; }
synth --type Q8_0 --seed 1 "$R/testorg/Tiny-GGUF/Tiny-Q8_0.gguf"
synth --type Q4_0 --seed 1 "$R/testorg/Tiny-GGUF/Tiny-Q4_0.gguf"
synth --type F16 --seed 1 --parts 3 "$R/testorg/Tiny-GGUF/F16/Tiny-F16.gguf"
synth --type Q4_0 --seed 4 "$R/testorg/Tiny-GGUF/mmproj-Tiny-F16.gguf"
echo "# Tiny" >"$R/testorg/Tiny-GGUF/README.md"
synth --type Q8_0 --seed 3 "$R/testorg/Gated-GGUF/Gated-Q8_0.gguf"
synth --type Q4_0 --seed 2 "$R/testorg/Bad-GGUF/Bad-Q4_0.gguf"
Q4_SIZE=$(stat -c %s "$R/testorg/Tiny-GGUF/Tiny-Q4_0.gguf")
Q8_SIZE=$(stat -c %s "$R/testorg/Tiny-GGUF/Tiny-Q8_0.gguf")
CUT=$((Q4_SIZE / 3))
LOG=$T/served.jsonl
source "$SRC/tests/hub/hub_server_lib.sh"
start_hub "$SRC" "$R" "$LOG" --page-size 2 --gated testorg/Gated-GGUF --token hf_good \
  --cut-once "testorg/Tiny-GGUF/Tiny-Q4_0.gguf:$CUT" --corrupt testorg/Bad-GGUF/Bad-Q4_0.gguf || exit 1
export HF_HOME=$T/hf
CACHE=$HF_HOME/hub/models--testorg--Tiny-GGUF

echo "== a single file, the quant in any case"
out=$("$CTL" pull testorg/Tiny-GGUF:q8_0 2>"$T/err"); rc=$?
cat "$T/err"
check "pull :q8_0 exits 0" '[ $rc = 0 ]'
COMMIT=$(cat "$CACHE/refs/main" 2>/dev/null)
HUB_COMMIT=$(curl -sI "$HF_ENDPOINT/testorg/Tiny-GGUF/resolve/main/README.md" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-repo-commit"{print $2}')
check "refs/main holds the hub's commit ($HUB_COMMIT)" '[ -n "$COMMIT" ] && [ "$COMMIT" = "$HUB_COMMIT" ]'
check "the path printed is the snapshot's file" '[ "$out" = "$CACHE/snapshots/$COMMIT/Tiny-Q8_0.gguf" ]'
SHA8=$(sha256sum "$R/testorg/Tiny-GGUF/Tiny-Q8_0.gguf" | cut -d' ' -f1)
check "the snapshot file links to ../../blobs/<sha256>" '[ "$(readlink "$out")" = "../../blobs/$SHA8" ]'
check "the blob holds the hub's bytes" 'cmp -s "$CACHE/blobs/$SHA8" "$R/testorg/Tiny-GGUF/Tiny-Q8_0.gguf"'
check "nothing .incomplete is left" '[ -z "$(find "$HF_HOME" -name "*.incomplete")" ]'
check "the summary says verified" 'contains "$(cat "$T/err")" "SHA-256 verified"'
out2=$("$CTL" pull testorg/Tiny-GGUF:Q8_0 --json 2>/dev/null)
check "a second pull downloads nothing" 'contains "$out2" "\"received\": 0"'
check "the download was served once" '[ "$(served "$LOG" "$SHA8")" = "0:$Q8_SIZE" ]'

echo "== a split model: every part"
out=$("$CTL" pull testorg/Tiny-GGUF:F16 2>"$T/err"); rc=$?
check "pull :F16 exits 0" '[ $rc = 0 ]' || cat "$T/err"
check "the path is the first part" '[ "$out" = "$CACHE/snapshots/$COMMIT/F16/Tiny-F16-00001-of-00003.gguf" ]'
for k in 1 2 3; do
  f=F16/Tiny-F16-0000$k-of-00003.gguf
  check "part $k linked and equal to the hub's" 'cmp -s "$CACHE/snapshots/$COMMIT/$f" "$R/testorg/Tiny-GGUF/$f"'
done
check "the split model opens (inspect)" '"$CTL" inspect "$out" >/dev/null 2>&1'

echo "== resume after the connection is cut mid-file"
out=$("$CTL" pull testorg/Tiny-GGUF:Q4_0 2>"$T/err"); rc=$?
cat "$T/err"
check "pull :Q4_0 exits 0 after the cut" '[ $rc = 0 ]'
SHA4=$(sha256sum "$R/testorg/Tiny-GGUF/Tiny-Q4_0.gguf" | cut -d' ' -f1)
check "the server served [0,$CUT) then [$CUT,$Q4_SIZE): no byte twice ($(served "$LOG" "$SHA4"))" \
  '[ "$(served "$LOG" "$SHA4")" = "0:$CUT $CUT:$((Q4_SIZE - CUT))" ]'
check "the resumed file is whole" 'cmp -s "$out" "$R/testorg/Tiny-GGUF/Tiny-Q4_0.gguf"'

echo "== resume a download an earlier run left (.incomplete)"
export HF_HOME=$T/hf2
head -c 100000 "$R/testorg/Tiny-GGUF/Tiny-Q8_0.gguf" >"$T/part"
mkdir -p "$HF_HOME/hub/models--testorg--Tiny-GGUF/blobs"
cp "$T/part" "$HF_HOME/hub/models--testorg--Tiny-GGUF/blobs/$SHA8.incomplete"
out=$("$CTL" pull testorg/Tiny-GGUF/Tiny-Q8_0.gguf --json 2>"$T/err"); rc=$?
check "pull REPO/FILE.gguf exits 0" '[ $rc = 0 ]' || cat "$T/err"
check "only the bytes after the 100000 kept were served" '[ "$(served "$LOG" "$SHA8")" = "0:$Q8_SIZE 100000:$((Q8_SIZE - 100000))" ]'
check "--json counts them" 'contains "$out" "\"received\": $((Q8_SIZE - 100000))" && contains "$out" "\"already\": 100000"'

echo "== HF_HUB_CACHE"
out=$(HF_HUB_CACHE=$T/elsewhere "$CTL" pull testorg/Tiny-GGUF:Q8_0 2>/dev/null)
check "the model lands in HF_HUB_CACHE" '[[ "$out" == "$T/elsewhere/models--testorg--Tiny-GGUF/snapshots/"* ]] && [ -f "$out" ]'
export HF_HOME=$T/hf

echo "== a corrupted byte is refused by SHA-256"
err=$("$CTL" pull testorg/Bad-GGUF:Q4_0 2>&1 >/dev/null); rc=$?
echo "$err"
check "pull exits 1" '[ $rc = 1 ]'
check "the error says the SHA-256 check failed and the download was deleted" \
  'contains "$err" "failed its SHA-256 check" && contains "$err" "the bad download was deleted"'
check "no blob, part or snapshot is left" '[ -z "$(find "$HF_HOME/hub/models--testorg--Bad-GGUF" -type f -path "*blobs*" 2>/dev/null)" ] && [ ! -e "$HF_HOME/hub/models--testorg--Bad-GGUF/snapshots" ]'

echo "== a missing quant names the ones that exist"
err=$("$CTL" pull testorg/Tiny-GGUF:Q5_K_S 2>&1 >/dev/null); rc=$?
echo "$err"
check "pull exits 1" '[ $rc = 1 ]'
check "the error names Q4_0, Q8_0 and F16 (3 parts), not the projector" \
  'contains "$err" "has no quant '"'"'Q5_K_S'"'"'" && contains "$err" "Q4_0" && contains "$err" "Q8_0" && contains "$err" "F16 (3 parts)" && ! contains "$err" "mmproj"'
err=$("$CTL" pull testorg/Tiny-GGUF 2>&1 >/dev/null)
check "no quant and no Q4_K_M: asks for one" 'contains "$err" "name one as testorg/Tiny-GGUF:QUANT"'
err=$("$CTL" pull testorg/No-Such-GGUF:Q4_0 2>&1 >/dev/null)
check "a repo that does not exist is named" 'contains "$err" "there is no model testorg/No-Such-GGUF"'

echo "== a gated repo"
err=$("$CTL" pull testorg/Gated-GGUF:Q8_0 2>&1 >/dev/null); rc=$?
echo "$err"
check "without a token: exit 1, says gated, HF_TOKEN and the licence" \
  '[ $rc = 1 ] && contains "$err" "is a gated model" && contains "$err" "set HF_TOKEN" && contains "$err" "licence"'
err=$(HF_TOKEN=hf_wrong "$CTL" pull testorg/Gated-GGUF:Q8_0 2>&1 >/dev/null); rc=$?
check "with a token without access: says so" '[ $rc = 1 ] && contains "$err" "has no access"'
out=$(HF_TOKEN=hf_good "$CTL" pull testorg/Gated-GGUF:Q8_0 2>"$T/err"); rc=$?
check "with the token: pulled (and the CDN, which refuses tokens, got none)" '[ $rc = 0 ] && [ -f "$out" ]' || cat "$T/err"

echo "== no network"
err=$(HF_ENDPOINT=http://127.0.0.1:9 HF_HOME=$T/empty "$CTL" pull testorg/Tiny-GGUF:Q8_0 2>&1 >/dev/null); rc=$?
echo "$err"
check "nothing cached: exit 1, says the hub cannot be reached" '[ $rc = 1 ] && contains "$err" "cannot reach the Hugging Face hub"'
out=$(HF_ENDPOINT=http://127.0.0.1:9 "$CTL" pull testorg/Tiny-GGUF:Q8_0 2>"$T/err"); rc=$?
check "cached: the copy pulled earlier, with a warning" '[ $rc = 0 ] && [ -f "$out" ] && contains "$(cat "$T/err")" "pulled earlier"' || cat "$T/err"

n_before=$(wc -l <"$LOG")
out=$(HF_HUB_OFFLINE=1 "$CTL" pull testorg/Tiny-GGUF:F16 2>"$T/err"); rc=$?
check "HF_HUB_OFFLINE=1: the cached split model, the hub not asked" \
  '[ $rc = 0 ] && [ "$out" = "$CACHE/snapshots/$COMMIT/F16/Tiny-F16-00001-of-00003.gguf" ] && [ "$(wc -l <"$LOG")" = "$n_before" ]' || cat "$T/err"
err=$(HF_HUB_OFFLINE=1 HF_HOME=$T/empty "$CTL" pull testorg/Tiny-GGUF:Q8_0 2>&1 >/dev/null); rc=$?
check "HF_HUB_OFFLINE=1, not cached: says so" '[ $rc = 1 ] && contains "$err" "HF_HUB_OFFLINE is set"'

echo "== a cluster file's model: a name; plan reads the pulled copy, without downloading"
printf 'cluster: planned\nmodel: %s\nnodes:\n  - {name: a, host: a.local, memory: 1GB, link: {type: ethernet, interface: eth0}}\n  - {name: b, host: b.local, memory: 1GB, link: {type: ethernet, interface: eth0}}\n' \
  testorg/Tiny-GGUF:Q8_0 >"$T/c.yaml"
out=$("$CTL" plan "$T/c.yaml" --offline --json 2>"$T/err"); rc=$?
check "plan --offline uses the snapshot's file" '[ $rc = 0 ] && contains "$out" "$CACHE/snapshots/$COMMIT/Tiny-Q8_0.gguf"' || { echo "$out"; cat "$T/err"; }
err=$(HF_HOME=$T/empty "$CTL" plan "$T/c.yaml" --offline 2>&1); rc=$?
check "not pulled: plan says to pull it" '[ $rc = 1 ] && contains "$err" "clusterctl pull testorg/Tiny-GGUF:Q8_0"'
out=$("$CTL" config validate "$T/c.yaml" 2>&1)
check "config validate calls it a model on Hugging Face" 'contains "$out" "(a model on Hugging Face; \`up\` pulls it)"' || echo "$out"

echo "== run with a repo name pulls, then answers as the file does"
want=$("$CTL" run "$R/testorg/Tiny-GGUF/Tiny-Q4_0.gguf" "Once upon a time" -n 8 --temp 0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generated_ids"])')
export HF_HOME=$T/hf3
got=$("$CTL" run testorg/Tiny-GGUF:Q4_0 "Once upon a time" -n 8 --temp 0 --json 2>"$T/err" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generated_ids"])')
check "run testorg/Tiny-GGUF:Q4_0 = run of the file ($want)" '[ -n "$want" ] && [ "$got" = "$want" ]' || cat "$T/err"
check "run pulled into the cache" '[ -n "$(find "$HF_HOME/hub/models--testorg--Tiny-GGUF/blobs" -name "$SHA4")" ]'
if command -v mpirun >/dev/null; then
  export HF_HOME=$T/hf4
  got=$("$CTL" run --ranks 2 testorg/Tiny-GGUF:Q4_0 "Once upon a time" -n 8 --temp 0 --json 2>"$T/err" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generated_ids"])')
  check "run --ranks 2 testorg/Tiny-GGUF:Q4_0 = run of the file" '[ "$got" = "$want" ]' || tail -5 "$T/err"
fi

echo "== serve with a repo name: the name is the API's model id"
export HF_HOME=$T/hf
"$CTL" serve testorg/Tiny-GGUF:Q8_0 --port 0 >"$T/serve.out" 2>"$T/serve.err" &
SERVE_PID=$!
for _ in $(seq 100); do grep -q '^serving' "$T/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$T/serve.out" | head -1)
models=$(curl -s "$URL/v1/models")
kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
check "serve testorg/Tiny-GGUF:Q8_0 answers /v1/models with that id" 'contains "$models" "\"id\":\"testorg/Tiny-GGUF:Q8_0\""' ||
  { echo "$models"; cat "$T/serve.err"; }

[ "$failures" = 0 ] && echo "pull: all cases hold" || echo "pull: $failures case(s) failed"
[ "$failures" = 0 ]
