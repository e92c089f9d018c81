#!/usr/bin/env bash
# The main job of the README on a local default (a one-machine cluster):
# installs dependencies, builds, then runs a model on this machine.
#   deploy/quickstart.sh                  synthesizes a small random-weight model (its output is random text)
#   deploy/quickstart.sh MODEL.gguf       uses your model
#   PROMPT="..." deploy/quickstart.sh     another prompt
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc 2>/dev/null || sysctl -n hw.ncpu)}
PROMPT=${PROMPT:-Once upon a time}

bash deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build build -j "$JOBS"
CTL=$PWD/build/controller/clusterctl

MODEL=${1:-}
if [ -z "$MODEL" ]; then
  MODEL=$PWD/build/models/quickstart-tiny-random.gguf
  mkdir -p "$(dirname "$MODEL")"
  echo
  echo "No model given: synthesizing a small RANDOM-WEIGHT model at $MODEL."
  echo "Its output is random text; pass a real GGUF file (e.g. a Llama 3.2 1B Q4_0) to get real answers."
  [ -f "$MODEL" ] || "$CTL" model synth --shape tiny --type Q8_0 "$MODEL"
fi
echo
"$CTL" inspect "$MODEL" | head -8
echo
"$CTL" run "$MODEL" "$PROMPT" -n 48
