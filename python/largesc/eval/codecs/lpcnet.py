#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""LPCNet 1733 bit/s as a baseline (eval/baselines.py): the FreeDV 2020
configuration of Debian's libcodec2 (``lpcnet_freedv_create(LPCNET_DIRECT_SPLIT)``,
3 x 10 ms feature frames decimated to one 52-bit frame per 30 ms = 1733 bit/s),
through ctypes on the library codecs/codec2.py loads. A lost frame: the
previous frame's bits again, output fading (``Baseline._decode``)."""

import ctypes

import numpy as np

from ..baselines import Baseline, BaselineUnavailable, CHandle
from .codec2 import codec2_lib, reset_codec2_random


def lpcnet_available():
    """(True, "") if libcodec2 has the LPCNet FreeDV API, else (False, why)."""
    try:
        lib = codec2_lib()
    except BaselineUnavailable as e:
        return False, str(e)
    if not hasattr(lib, "lpcnet_freedv_create"):
        return False, ("this libcodec2 was built without LPCNet (FreeDV 2020); Debian 12's "
                       "libcodec2-1.0 1.0.5 has it")
    return True, ""


class LPCNet(Baseline):
    """LPCNet 1733 bit/s (FreeDV 2020) from Debian's libcodec2."""
    name = "lpcnet_1733"
    codec_rate = 16000
    frame_ms = 30.0
    frame_bits = 52
    codec_delay_ms = 55.0       # measured like Codec2.DELAY_MS (spread +-5 ms)
    LPCNET_DIRECT_SPLIT = 1     # the FreeDV 2020 quantiser
    description = "LPCNet 1733 bit/s (FreeDV 2020, libcodec2)"

    def check_available(self):
        ok, why = lpcnet_available()
        if not ok:
            raise BaselineUnavailable(f"LPCNet unavailable: {why}")

    def _reset_random(self):
        return reset_codec2_random()

    def _encode(self, pcm16):
        lib = codec2_lib()
        _lpcnet_prototypes(lib)
        lf = lib.lpcnet_freedv_create(self.LPCNET_DIRECT_SPLIT)
        try:
            n, nb = lib.lpcnet_samples_per_frame(lf), lib.lpcnet_bits_per_frame(lf)
            assert n == self.frame_samples and nb == self.frame_bits, (n, nb)
            buf = (ctypes.c_char * nb)()        # one bit per char
            frames = []
            for i in range(len(pcm16) // n):
                fr = np.ascontiguousarray(pcm16[i * n:(i + 1) * n])
                lib.lpcnet_enc(lf, fr.ctypes.data, buf)
                frames.append(bytes(buf.raw))
            return frames
        finally:
            lib.lpcnet_freedv_destroy(lf)

    def _decoder(self):
        lib = codec2_lib()
        _lpcnet_prototypes(lib)
        lf = lib.lpcnet_freedv_create(self.LPCNET_DIRECT_SPLIT)
        out = np.zeros(self.frame_samples, np.int16)

        def dec(frame):
            lib.lpcnet_dec(lf, frame, out.ctypes.data)
            return out.astype(np.float32)
        dec._keep = CHandle(lib.lpcnet_freedv_destroy, lf)
        return dec


def _lpcnet_prototypes(lib):
    if getattr(lib, "_lpcnet_ready", False):
        return
    lib.lpcnet_freedv_create.restype = ctypes.c_void_p
    lib.lpcnet_freedv_create.argtypes = [ctypes.c_int]
    lib.lpcnet_freedv_destroy.argtypes = [ctypes.c_void_p]
    for f in ("lpcnet_samples_per_frame", "lpcnet_bits_per_frame"):
        getattr(lib, f).argtypes = [ctypes.c_void_p]
        getattr(lib, f).restype = ctypes.c_int
    lib.lpcnet_enc.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p]
    lib.lpcnet_dec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    lib._lpcnet_ready = True
