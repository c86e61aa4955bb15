#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Screenshots of the sim_link example's live Qt window, before and after the
channel loss slider moves from 10 % to 30 %: the windowed loss, the feedback
and the controller's plan must follow within a few seconds.

  xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python3 examples/live_view_screenshot.py [OUT_DIR]

Compiles examples/sim_link.grc with grcc into a scratch folder, runs it with
an UNTRAINED codec (random weights) on the LibriVox demo clip, grabs the
window 20 s after start (OUT_DIR/sim_link_live.png), types 0.3 into the
loss-rate slider's counter (as a user would: the slider moves and calls the
flowgraph's set_loss_rate), and grabs it again 11 s later
(OUT_DIR/sim_link_live_loss30.png). Prints the link figures at both moments.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "docs", "img"))
os.makedirs(out_dir, exist_ok=True)
work = tempfile.mkdtemp(prefix="sim_link_live_")
grcc = os.path.join(HERE, "..", ".venv", "bin", "grcc")
subprocess.run([grcc if os.path.exists(grcc) else "grcc", os.path.join(HERE, "sim_link.grc"), "-o", work],
               check=True, capture_output=True)
sys.path.insert(0, work)
sys.argv = [sys.argv[0]]
import sim_link as S  # noqa: E402
from PyQt5 import Qt  # noqa: E402

app = Qt.QApplication(sys.argv)
tb = S.sim_link(input_file=S.argument_parser().get_default("input_file"),
                output_file=os.path.join(work, "out.wav"), max_frames=0, weights="random:0")
tb.start()
tb.resize(1700, 1100)
tb.show()


def grab(name):
    path = os.path.join(out_dir, name)
    if not tb.grab().save(path):
        print(f"could not write {path}", file=sys.stderr, flush=True)
    f = tb.mon.figures()
    print(f"{path}: loss {100 * f['loss_window']:.1f} % (last {tb.mon.window} packets), "
          f"feedback {100 * f['feedback_loss']:.1f} %, plan K {f['K']:.0f} r1 {f['r1']:.0f} r2 {f['r2']:.0f}",
          flush=True)


Qt.QTimer.singleShot(20000, lambda: grab("sim_link_live.png"))


def move_slider(value):
    """What a user does: the counter next to the slider takes the value, the
    slider follows and the flowgraph's callback runs (RangeWidget's own path)."""
    w = getattr(tb, "_loss_rate_win", None)
    counter = getattr(getattr(w, "d_widget", None), "counter", None)
    if counter is None:          # another GNU Radio layout: the callback alone
        tb.set_loss_rate(value)
    else:
        counter.setValue(value)
    print(f"loss-rate slider set to {value}; flowgraph loss_rate = {tb.get_loss_rate()}", flush=True)


Qt.QTimer.singleShot(21000, lambda: move_slider(0.3))
Qt.QTimer.singleShot(32000, lambda: grab("sim_link_live_loss30.png"))
Qt.QTimer.singleShot(33000, lambda: (tb.stop(), tb.wait(), app.quit()))
app.exec_()
