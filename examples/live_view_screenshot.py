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
window 20 s after start (OUT_DIR/sim_link_live.png), sets the loss rate to
0.3 through the slider's own callback, and grabs it again 11 s later
(OUT_DIR/sim_link_live_loss30.png). Prints the link figures at both moments.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "docs", "img"))
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
    tb.grab().save(path)
    f = tb.mon.figures()
    print(f"{path}: loss {100 * f['loss_window']:.1f} % (last {tb.mon.window} packets), "
          f"feedback {100 * f['feedback_loss']:.1f} %, plan K {f['K']:.0f} r1 {f['r1']:.0f} r2 {f['r2']:.0f}",
          flush=True)


Qt.QTimer.singleShot(20000, lambda: grab("sim_link_live.png"))
Qt.QTimer.singleShot(21000, lambda: tb.set_loss_rate(0.3))
Qt.QTimer.singleShot(32000, lambda: grab("sim_link_live_loss30.png"))
Qt.QTimer.singleShot(33000, lambda: (tb.stop(), tb.wait(), app.quit()))
app.exec_()
