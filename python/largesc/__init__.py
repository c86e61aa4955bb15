#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
'''
gr-largesc: LargeSC semantic speech links for GNU Radio.

C++ blocks and the scheduler-free core (loss models, UEP packet format,
token-level simulation) come from the pybind11 module; the Python blocks
(controller, Mimi codec, recovery, hierarchical TX/RX, packet modem) are
imported below. See README.md and docs/.
'''

# import pybind11 generated symbols into the largesc namespace
try:
    from .largesc_python import *
except ModuleNotFoundError:
    pass

from .uep import uep_plan
from .uep.adaptive_controller import adaptive_controller
from .uep.feedback import feedback_encoder, packet_sorter
from .phy import packet_modem_tx, packet_modem_rx, packet_source
from .phy import radio_sink, radio_source, speech_sink, speech_source

# The blocks that need torch (the Mimi codec, largesc_tx/rx, token recovery) are
# imported on first use (PEP 562 __getattr__): `largesc.mimi_encoder`, GRC's
# generated code and `from gnuradio.largesc import largesc_rx` work as before,
# and a flowgraph or tool without them never pays torch's import (about 1.6 s
# per process). A torch or moshi import problem is raised, with its reason,
# when such a block is first used; the C++ and other Python blocks stay
# importable. MIMI_IMPORT_ERROR / RECOVERY_IMPORT_ERROR hold it once seen.
MIMI_IMPORT_ERROR = None
RECOVERY_IMPORT_ERROR = None
_LAZY = {
    "mimi_encoder": ".codec.mimi_encoder",
    "mimi_decoder": ".codec.mimi_decoder",
    "largesc_tx": ".hier.largesc_tx",
    "largesc_rx": ".hier.largesc_rx",
    "token_recovery": ".recovery.token_recovery",
}


def __getattr__(name):
    global MIMI_IMPORT_ERROR, RECOVERY_IMPORT_ERROR
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    try:
        obj = getattr(importlib.import_module(where, __name__), name)
    except ImportError as e:
        if name == "token_recovery":
            RECOVERY_IMPORT_ERROR = e
        else:
            MIMI_IMPORT_ERROR = e
        raise
    globals()[name] = obj
    return obj


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


# Live view helpers for flowgraphs (Python; numpy only).
from .hier.link_monitor import audio_out, link_monitor  # noqa: E402

# Packet-loss trace recorder (Python; numpy only).
from .traces.trace import trace_recorder  # noqa: E402
