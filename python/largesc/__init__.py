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

# Mimi codec blocks (Python, need torch + moshi). Wrapped so that a torch or
# moshi import problem leaves the C++ blocks importable; the reason is kept in
# MIMI_IMPORT_ERROR.
MIMI_IMPORT_ERROR = None
try:
    from .codec.mimi_encoder import mimi_encoder
    from .codec.mimi_decoder import mimi_decoder
    from .hier.largesc_tx import largesc_tx
    from .hier.largesc_rx import largesc_rx
except ImportError as _e:  # pragma: no cover
    MIMI_IMPORT_ERROR = _e

# Token recovery (Python; the lm/moshi backends import torch + moshi lazily).
# Wrapped like the Mimi blocks so a problem here leaves the C++ blocks importable.
RECOVERY_IMPORT_ERROR = None
try:
    from .recovery.token_recovery import token_recovery
except ImportError as _e:  # pragma: no cover
    RECOVERY_IMPORT_ERROR = _e

# Live view helpers for flowgraphs (Python; numpy only).
from .hier.link_monitor import audio_out, link_monitor  # noqa: E402

# Packet-loss trace recorder (Python; numpy only).
from .traces.trace import trace_recorder  # noqa: E402
