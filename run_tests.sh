#!/usr/bin/env bash
# gr-largesc: runs the lint (tools/lint.sh) and every test (C++ and Python QA
# through ctest, then the pytest suite in tests/ if present). Rebuilds and
# reinstalls first, so the tests see the current sources. Exits non-zero on
# any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
BUILD="$ROOT/build"
if [[ ! -x "$VENV/bin/python3" || ! -f "$BUILD/CMakeCache.txt" ]]; then
    echo "run ./setup.sh first (no venv or build folder)" >&2
    exit 2
fi
"$ROOT/tools/lint.sh"      # ruff + clang-format, settings in pyproject.toml / .clang-format
cmake --build "$BUILD" -j"$(nproc)"
cmake --install "$BUILD" >/dev/null
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)"
if [[ -d "$ROOT/tests" ]]; then
    (cd "$ROOT" && "$VENV/bin/python3" -m pytest -q tests)
fi
echo "all tests passed"
