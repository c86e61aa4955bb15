#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The Mimi token-frame facts every package uses, defined once.

Plain Python (no torch, no GNU Radio, no C++ core), so that the scheduler-free
cores can be loaded on a machine without GNU Radio (benchmarks/gpu_check.py).
The packet format's own constants (header and CRC bytes, copy limits, the
token width it packs) come from the C++ core through the bindings
(largesc.HEADER_BYTES, largesc.TOKEN_BITS, ...; see uep/uep_plan.py), and the
QA checks that its token width is the one below.
"""

SAMPLE_RATE = 24000          # Hz: Mimi's audio rate
FRAME_SIZE = 1920            # samples per token frame at SAMPLE_RATE
FRAME_RATE = SAMPLE_RATE / FRAME_SIZE    # 12.5 token frames (and packets) per second
FRAME_MS = 1000.0 / FRAME_RATE           # 80 ms per frame
N_CODEBOOKS = 32             # codebooks in Mimi's residual VQ
CARDINALITY = 2048           # entries per codebook
TOKEN_BITS = CARDINALITY.bit_length() - 1   # 11 bits per token

# the longest mean loss burst (packets) a loss model, a parameter or a feedback report may have
MAX_MEAN_BURST = 1000.0
