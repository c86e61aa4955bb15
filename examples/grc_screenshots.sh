#!/usr/bin/env bash
# Opens each example flowgraph in the real GNU Radio Companion (the venv's
# wrapper, so the LargeSC blocks load) under a virtual X display and saves a
# screenshot of the GRC window: docs/img/<name>.png. These are the pictures in
# docs/getting_started.md. Needs xvfb (xvfb-run) and imagemagick (import),
# both installed by ./setup.sh.
#
#   examples/grc_screenshots.sh [OUT_DIR] [example.grc ...]
#
# Also checks that GRC reports no error for the flowgraph (its console log,
# kept next to the picture in OUT_DIR/<name>.grc.log, must not contain
# "Error" or "Missing Block").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/docs/img}"
shift || true
FILES=("$@")
((${#FILES[@]})) || FILES=("$ROOT"/examples/*.grc)
GRC="$ROOT/.venv/bin/gnuradio-companion"
SIZE="${GRC_SCREEN:-1920x1200}"
WAIT="${GRC_WAIT_S:-12}"

if [[ -z "${_GRC_SHOT_INNER:-}" ]]; then
    command -v xvfb-run >/dev/null || { echo "xvfb-run missing: apt-get install xvfb" >&2; exit 2; }
    command -v import >/dev/null || { echo "import missing: apt-get install imagemagick" >&2; exit 2; }
    mkdir -p "$OUT"
    export _GRC_SHOT_INNER=1
    exec xvfb-run -a -s "-screen 0 ${SIZE}x24" "$0" "$OUT" "${FILES[@]}"
fi

# inside the virtual display: a private GRC config so the window fills the
# screen and no earlier session's files reopen
export HOME_GRC_TMP
HOME_GRC_TMP="$(mktemp -d)"
trap 'rm -rf "$HOME_GRC_TMP"' EXIT
W="${SIZE%x*}"; H="${SIZE#*x}"
mkdir -p "$HOME_GRC_TMP/.gnuradio"
cat > "$HOME_GRC_TMP/.gnuradio/grc.conf" <<CONF
[main]
main_window_width = $W
main_window_height = $H
console_window_position = $((H - 200))
blocks_window_position = $((W - 260))
variable_editor_position = $((W - 700))
variable_editor_sidebar = False
CONF
cat > "$HOME_GRC_TMP/.gnuradio/config.conf" <<CONF
[grc]
xterm_executable = /bin/false
CONF
fail=0
for f in "${FILES[@]}"; do
    name="$(basename "$f" .grc)"
    log="$OUT/$name.grc.log"
    HOME="$HOME_GRC_TMP" GRC_PREFS_PATH="$HOME_GRC_TMP/.gnuradio/grc.conf" \
        "$GRC" "$f" >"$log" 2>&1 &
    pid=$!
    sleep "$WAIT"
    import -window root "$OUT/$name.png"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if grep -Eq "Error|Missing Block|Traceback" "$log"; then
        echo "GRC reported a problem with $f:" >&2; grep -E "Error|Missing|Traceback" "$log" >&2; fail=1
    else
        rm -f "$log"
    fi
    echo "$OUT/$name.png"
done
exit $fail
