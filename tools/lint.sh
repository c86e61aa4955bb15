#!/usr/bin/env bash
# gr-largesc lint: ruff on every Python file (settings in pyproject.toml) and
# clang-format on the C++ (settings in .clang-format), both as checks that
# change nothing. Run by ./run_tests.sh (so CI runs it); by hand:
#   tools/lint.sh          check
#   tools/lint.sh --fix    let ruff fix what it can and clang-format rewrite the C++
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUFF="$ROOT/.venv/bin/ruff"
[[ -x "$RUFF" ]] || RUFF="$(command -v ruff || true)"
if [[ -z "$RUFF" ]]; then
    echo "lint: ruff not found (./setup.sh installs it into .venv)" >&2
    exit 2
fi
if ! command -v clang-format >/dev/null; then
    echo "lint: clang-format not found (./setup.sh installs it: apt-get install clang-format)" >&2
    exit 2
fi
mapfile -t CXX < <(git ls-files 'lib/*.cc' 'lib/*.h' 'include/*.h' 'python/largesc/bindings/*.cc' 'python/largesc/bindings/*.h')
if [[ "${1:-}" == "--fix" ]]; then
    "$RUFF" check --fix .
    clang-format -i "${CXX[@]}"
    exit 0
fi
rc=0
"$RUFF" check --quiet . || { echo "lint: ruff found the problems above (tools/lint.sh --fix fixes some)" >&2; rc=1; }
clang-format --dry-run --Werror "${CXX[@]}" || { echo "lint: C++ not formatted as .clang-format says (tools/lint.sh --fix)" >&2; rc=1; }
[[ $rc -eq 0 ]] && echo "lint: clean (ruff: $(git ls-files '*.py' 'apps/largesc-*' | wc -l) Python files, clang-format: ${#CXX[@]} C++ files)"
exit $rc
