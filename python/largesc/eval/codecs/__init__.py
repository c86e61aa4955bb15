#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Baseline codecs, one module per codec family, on the framework of
eval/baselines.py (``Baseline``; docs/evaluation.md has the numbers):

=================  =======  ========  ======  ===================================
name               rate     frame     bits    concealment of a lost frame
=================  =======  ========  ======  ===================================
codec2_700c        8 kHz    40 ms     28      repeat previous frame's bits, fade
codec2_1200        8 kHz    40 ms     48      repeat previous frame's bits, fade
codec2_3200        8 kHz    20 ms     64      repeat previous frame's bits, fade
opus_6k            16 kHz   20 ms     120     Opus PLC; in-band FEC requested
opus_24k_fec       16 kHz   20 ms     480     Opus PLC + in-band FEC (active)
lpcnet_1733        16 kHz   30 ms     52      repeat previous frame's bits, fade
aac_10k/16k/24k    16 kHz   64 ms     varies  repeat previous packet, fade
encodec_1.5k       24 kHz   13.3 ms   20      repeat previous frame's codes, fade
encodec_3k         24 kHz   13.3 ms   40      repeat previous frame's codes, fade
=================  =======  ========  ======  ===================================

Modules: codec2 (libcodec2, ctypes), lpcnet (FreeDV 2020 from the same
library), opus (libopus, ctypes), aac (FFmpeg through PyAV), encodec (needs
torch and model weights).

``REGISTRY`` is the table ``baselines.get_baseline`` looks names up in; this
package imports no codec module (each imports baselines): ``get_baseline``
imports one when one of its codecs is first asked for.
"""

# name -> (module in this package, class, positional arguments, keyword arguments)
REGISTRY = {
    "codec2_700c": ("codec2", "Codec2", ("700C",), {}),
    "codec2_1200": ("codec2", "Codec2", ("1200",), {}),
    "codec2_3200": ("codec2", "Codec2", ("3200",), {}),
    "opus_6k": ("opus", "Opus", (6000,), {"fec": True, "name": "opus_6k"}),
    "opus_24k_fec": ("opus", "Opus", (24000,), {"fec": True, "name": "opus_24k_fec"}),
    "lpcnet_1733": ("lpcnet", "LPCNet", (), {}),
    "aac_10k": ("aac", "AAC", (10000, 16000), {"name": "aac_10k"}),
    "aac_16k": ("aac", "AAC", (16000, 16000), {"name": "aac_16k"}),
    "aac_24k": ("aac", "AAC", (24000, 16000), {"name": "aac_24k"}),
    "encodec_1.5k": ("encodec", "EnCodec", (1.5,), {"name": "encodec_1.5k"}),
    "encodec_3k": ("encodec", "EnCodec", (3.0,), {"name": "encodec_3k"}),
}
