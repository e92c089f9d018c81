#!/usr/bin/env bash
# Every C++ source of the tree is formatted as .clang-format says. Other clang-format versions
# format some constructs differently, so the check runs with the version the tree was formatted
# with (14) and skips (77) with any other; CI's Debian 12 has it.
set -euo pipefail
root=${1:?usage: check_format.sh SOURCE_DIR}
cd "$root"
want=14
if ! command -v clang-format >/dev/null; then
  echo "clang-format not found: install it (deploy/install-deps.sh does)"
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
have=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$have" != "$want" ]; then
  echo "clang-format $have here; the tree is formatted with clang-format $want: not checked"
  exit 77
fi
mapfile -t files < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find . -name '*.cpp' -o -name '*.h')
bad=()
for f in "${files[@]}"; do
  case "$f" in tests/data/*|*/node_modules/*) continue ;; esac
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "${#bad[@]} file(s) are not formatted as .clang-format says; run: clang-format -i ${bad[*]}"
  exit 1
fi
echo "${#files[@]} files formatted as .clang-format says"
