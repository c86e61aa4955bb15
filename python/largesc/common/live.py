#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Process settings for a live link (docs/latency.md, "A live process").

A GNU Radio flowgraph with Python blocks runs them as threads of one Python
process that share one interpreter lock (GIL). The Mimi step holds it between
its many small torch calls, so the modem's Python blocks, the playout clock
and the transmitter's byte clock wait for it: with CPython's default switch
interval (5 ms) and two codec threads busy, packets reached the receiver's
sorter up to 0.3-0.5 s late in bursts (benchmarks/two_radio.py, 2 cores).
prepare() sets the switch interval to LIVE_SWITCH_S and moves every object
alive at start into the collector's permanent generation (gc.freeze(), after a
collection), so that a full collection never walks the models' objects in the
middle of a call. The live blocks call it when they start (largesc_rx's
playout clock, the continuous-mode modem transmitter); simulations, which run
neither, keep the defaults. Once per process; logged once.
"""

import gc
import sys
import threading

LIVE_SWITCH_S = 0.0005
_lock = threading.Lock()
_done = False


def prepare(logger=None):
    """Applies the live-process settings once; returns True the first time."""
    global _done
    with _lock:
        if _done:
            return False
        _done = True
        old = sys.getswitchinterval()
        if old > LIVE_SWITCH_S:
            sys.setswitchinterval(LIVE_SWITCH_S)
        gc.collect()
        gc.freeze()
        if logger is not None:
            logger.info(f"live link: Python thread switch interval {1000 * sys.getswitchinterval():g} ms "
                        f"(was {1000 * old:g} ms), {gc.get_freeze_count()} objects frozen out of the "
                        "cyclic collector (docs/latency.md)")
        return True
