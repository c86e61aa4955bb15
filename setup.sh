#!/usr/bin/env bash
# gr-largesc: one-command setup. Installs the Debian packages, creates the
# project venv (.venv, from Debian's python3 with --system-site-packages),
# installs the pinned Python requirements, builds and installs the module into
# the venv, then runs the main job. Idempotent: re-running skips what is done.
#
#   ./setup.sh              set up everything, then run the demo job
#   ./setup.sh --no-run     set up only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
BUILD="$ROOT/build"
RUN_JOB=1
[[ "${1:-}" == "--no-run" ]] && RUN_JOB=0

STEP=""
step() { STEP="$1"; printf '\n==> [setup] %s\n' "$1"; }
trap 'rc=$?; [[ $rc -ne 0 ]] && printf "\n!!! [setup] FAILED at step: %s (exit %d)\n" "$STEP" "$rc" >&2' EXIT

APT_PACKAGES=(gnuradio gnuradio-dev castxml python3-pygccxml python3-venv cmake g++ pkg-config
              libboost-test-dev pocketsphinx-testdata libcodec2-1.0 libopus0 libsndfile1)

step "1/5 Debian packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "installing: ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -o DPkg::Lock::Timeout=900 >/dev/null || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=900 "${missing[@]}"
else
    echo "all present"
fi

step "2/5 Python venv ($VENV)"
if [[ ! -x "$VENV/bin/python3" ]]; then
    # Debian's python: gnuradio, pmt, grcc and GnuradioConfig.cmake assume it.
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
stamp="$VENV/.requirements.sha"
want=$(cat "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    # PEP 517 builds: pesq 0.0.4's legacy setup.py fails with the venv's setuptools
    export PIP_USE_PEP517=1
    "$VENV/bin/pip" install --disable-pip-version-check -r "$ROOT/requirements.txt"
    "$VENV/bin/pip" install --disable-pip-version-check --no-deps -r "$ROOT/requirements-nodeps.txt"
    echo "$want" > "$stamp"
else
    echo "requirements up to date"
fi
"$VENV/bin/python3" -c "import numpy, torch, moshi, gnuradio.gr; assert int(numpy.__version__.split('.')[0]) < 2, 'numpy must stay < 2'; print('numpy', numpy.__version__, 'torch', torch.__version__, 'gnuradio', gnuradio.gr.version())"

step "3/5 configure + build"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPYTHON_EXECUTABLE="$VENV/bin/python3" \
      -DCMAKE_INSTALL_RPATH="$VENV/lib/x86_64-linux-gnu" \
      -DENABLE_DOXYGEN=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

step "4/5 install into the venv"
cmake --install "$BUILD" >/dev/null
# grcc and gnuradio-companion that run with the venv's python and see the
# module's blocks, so no GRC_BLOCKS_PATH or PYTHONPATH is needed.
for tool in grcc gnuradio-companion; do
    cat > "$VENV/bin/$tool" <<WRAP
#!/bin/sh
export GRC_BLOCKS_PATH="$VENV/share/gnuradio/grc/blocks\${GRC_BLOCKS_PATH:+:\$GRC_BLOCKS_PATH}"
exec "$VENV/bin/python3" /usr/bin/$tool "\$@"
WRAP
    chmod +x "$VENV/bin/$tool"
done
"$VENV/bin/python3" -c "from gnuradio import largesc; print('gnuradio.largesc imports from', largesc.__file__)"

step "5/5 main job"
if ((RUN_JOB)); then
    # the main job: a small LargeSC campaign on real recorded speech against
    # Codec2, Opus and LPCNet (see README); output in largesc-sim-demo/
    "$VENV/bin/largesc-sim" --demo --out "$ROOT/largesc-sim-demo"
else
    echo "skipped (--no-run)"
fi
printf '\n==> [setup] done. Run the tests with: ./run_tests.sh\n'
