#!/usr/bin/env bash
# The layers point one way: collectives <- worker <- controller. Fails, naming each file and
# line, when a file under worker/ or collectives/ includes a header of a layer above it, or a
# file outside collectives/ includes a collectives backend (mpi.h, collectives/mpi/...).
# Usage: check_includes.sh SOURCE_DIR
set -u
src=${1:?usage: check_includes.sh SOURCE_DIR}
cd "$src" || exit 2
status=0
check() {  # LAYER FORBIDDEN_PREFIX...
  local layer=$1
  shift
  for above in "$@"; do
    hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]${above}/" "$layer" \
             --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' --include='*.mm' \
             --include='*.inc' || true)
    if [ -n "$hits" ]; then
      echo "$layer/ must not include $above/ (collectives <- worker <- controller):"
      echo "$hits" | sed 's/^/  /'
      status=1
    fi
  done
}
check collectives controller worker
check worker controller
# Only collectives/ names a backend's types: the others open one by name (collectives/session.h).
for layer in worker controller; do
  hits=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](mpi\.h|collectives/(mpi|local)/)' "$layer" \
           --include='*.h' --include='*.cpp' || true)
  if [ -n "$hits" ]; then
    echo "$layer/ must not include a collectives backend (open it by name with collectives::open_session):"
    echo "$hits" | sed 's/^/  /'
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "Move what the lower layer needs down into it (the engine's flags and verbs live in worker/tools)."
else
  echo "layering: collectives/ and worker/ include nothing of a layer above them"
fi
exit $status
