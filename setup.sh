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
              libboost-test-dev pocketsphinx-testdata libcodec2-1.0 libopus0 libsndfile1
              # lint of the C++ (tools/lint.sh)
              clang-format
              # GNU Radio Companion's GUI (Debian's gnuradio only suggests these; without
              # them GRC stops with "Namespace Gtk not available"), a virtual display
              # for checking it and for examples/grc_screenshots.sh, and 'import'
              gir1.2-gtk-3.0 gir1.2-pango-1.0 python3-gi-cairo xvfb xauth imagemagick)

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

# GRC's GUI: check that GTK initialises (on a virtual display when there is
# one to be had); no display is not a setup failure.
gtk_check='import gi; gi.require_version("Gtk", "3.0"); gi.require_version("PangoCairo", "1.0"); from gi.repository import Gtk; ok = Gtk.init_check(None)[0]; print("GTK", "%d.%d" % (Gtk.get_major_version(), Gtk.get_minor_version()), "initialises" if ok else "cannot open a display"); raise SystemExit(0 if ok else 3)'
if command -v xvfb-run >/dev/null; then
    xvfb-run -a "$VENV/bin/python3" -c "$gtk_check" \
        || echo "WARNING: GNU Radio Companion cannot start GTK even on a virtual display (see above)" >&2
elif [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
    "$VENV/bin/python3" -c "$gtk_check" || echo "WARNING: GNU Radio Companion cannot start GTK (see above)" >&2
else
    "$VENV/bin/python3" -c 'import gi; gi.require_version("Gtk", "3.0"); print("GTK bindings present (no display to test on)")' \
        || echo "WARNING: GTK bindings for GNU Radio Companion missing: apt-get install gir1.2-gtk-3.0" >&2
fi

# Desktop menu entry "GNU Radio Companion (gr-largesc)": the venv's GRC, which
# sees the LargeSC blocks (the system entry runs /usr/bin/gnuradio-companion
# with the system python, which has neither the module nor torch).
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mkdir -p "$APPS"
cat > "$APPS/gnuradio-companion-largesc.desktop" <<DESK
[Desktop Entry]
Version=1.0
Type=Application
Name=GNU Radio Companion (gr-largesc)
Comment=GNU Radio Companion with the LargeSC blocks ($ROOT)
Exec=$VENV/bin/gnuradio-companion %F
Path=$ROOT/examples
Icon=gnuradio-grc
Terminal=false
Categories=Development;HamRadio;Science;
MimeType=application/gnuradio-grc;
StartupWMClass=gnuradio-companion
DESK
cp "$APPS/gnuradio-companion-largesc.desktop" "$VENV/share/gnuradio-companion-largesc.desktop"
echo "desktop entry: $APPS/gnuradio-companion-largesc.desktop (copy in $VENV/share/)"

step "5/5 main job"
if ((RUN_JOB)); then
    # the main job: a small LargeSC campaign on real recorded speech against
    # Codec2, Opus and LPCNet (see README); output in largesc-sim-demo/
    "$VENV/bin/largesc-sim" --demo --out "$ROOT/largesc-sim-demo"
else
    echo "skipped (--no-run)"
fi
printf '\n==> [setup] done. Run the tests with: ./run_tests.sh\n'
