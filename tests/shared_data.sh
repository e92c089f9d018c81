# Shared data (../shared) for the shell tests, as tests/unit/shared_data.h for the C++ ones.
# Sourced: source "$(dirname "${BASH_SOURCE[0]}")/../shared_data.sh"

# require_shared_file PATH: PATH absent -> the test skips (exit 77) saying so, but under CI=true
# missing shared data is a failure (exit 1).
require_shared_file() {
  if [ ! -f "$1" ]; then
    echo "shared data not found: $1"
    [ "${CI:-}" = true ] && exit 1
    exit 77
  fi
}
