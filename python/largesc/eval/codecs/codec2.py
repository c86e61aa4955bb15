#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Codec2 700C / 1200 / 3200 as baselines (eval/baselines.py): Debian's
``libcodec2.so.1.0`` through ctypes, the library gr-vocoder's codec2 blocks
wrap (qa_eval checks that our Codec2 bits equal ``vocoder.codec2_encode_sp``'s
bit for bit). A lost frame: the previous frame's bits again, output fading
(``Baseline._decode``). LPCNet (codecs/lpcnet.py) uses the same library and
its random-state reset."""

import ctypes

import numpy as np

from ..baselines import Baseline, CHandle, load_lib

_codec2_lib = None


def codec2_lib():
    global _codec2_lib
    if _codec2_lib is None:
        lib = load_lib(["libcodec2.so.1.0", "libcodec2.so.1.2", "codec2"], "Codec2",
                       "libcodec2-1.0 (comes with gnuradio's gr-vocoder)")
        lib.codec2_create.restype = ctypes.c_void_p
        lib.codec2_create.argtypes = [ctypes.c_int]
        lib.codec2_destroy.argtypes = [ctypes.c_void_p]
        for f in ("codec2_samples_per_frame", "codec2_bits_per_frame"):
            getattr(lib, f).argtypes = [ctypes.c_void_p]
            getattr(lib, f).restype = ctypes.c_int
        lib.codec2_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.codec2_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        _codec2_lib = lib
    return _codec2_lib


_LCG_MUL = (1103515245).to_bytes(4, "little")


def _lcg_state(lib, fname):
    """Address and C type of the static state of libcodec2's linear
    congruential generator ``fname`` (codec2_rand, nnet_rand), read from its
    first instruction ``imul $1103515245, state(%rip), reg`` (x86-64).
    None when the code does not look like that (another build or arch)."""
    fn = getattr(lib, fname, None)
    if fn is None:
        return None
    fa = ctypes.cast(fn, ctypes.c_void_p).value
    code = ctypes.string_at(fa, 11)
    if code[:3] == b"\x48\x69\x05" and code[7:11] == _LCG_MUL:      # 64-bit state
        return fa + 11 + int.from_bytes(code[3:7], "little", signed=True), ctypes.c_uint64
    if code[:2] == b"\x69\x05" and code[6:10] == _LCG_MUL:          # 32-bit state
        return fa + 10 + int.from_bytes(code[2:6], "little", signed=True), ctypes.c_uint32
    return None


def reset_codec2_random():
    """Put libcodec2's process-wide random generators back to their start
    values, so that a run gives the same output as in a fresh process.

    Codec2 synthesises unvoiced phase from ``codec2_rand`` and LPCNet samples
    its excitation from ``nnet_rand`` and the C library's ``rand``; all keep
    one static state per process (start value 1) that codec2_create does not
    reset. Returns False (runs then are not bit-repeatable inside one
    process) if a generator's state could not be located."""
    lib = codec2_lib()
    ok = True
    for fname in ("codec2_rand", "nnet_rand"):
        st = _lcg_state(lib, fname)
        if st is None:
            ok = ok and not hasattr(lib, fname)
            continue
        addr, ctype = st
        ctype.from_address(addr).value = 1
    ctypes.CDLL(None).srand(1)
    return ok


class Codec2(Baseline):
    """Codec2 through libcodec2 (ctypes); mode numbers as codec2.h."""
    MODES = {"3200": (0, 20.0, 64), "1200": (5, 40.0, 48), "700C": (8, 40.0, 28)}
    # offline delay of the decoded output: median over the five demo clips of
    # metrics.align (envelope method, clip-to-clip spread about +-5 ms);
    # qa_eval checks it
    DELAY_MS = {"3200": 18.0, "1200": 16.0, "700C": 27.0}

    def __init__(self, mode="700C"):
        if mode not in self.MODES:
            raise ValueError(f"unknown Codec2 mode {mode!r}; known: {', '.join(self.MODES)}")
        self.mode = mode
        self.mode_id, self.frame_ms, self.frame_bits = self.MODES[mode]
        self.codec_delay_ms = self.DELAY_MS[mode]
        self.name = "codec2_" + mode.lower()
        self.codec_rate = 8000
        self.description = f"Codec2 {mode} (libcodec2, {self.payload_bps:.0f} bit/s)"

    def check_available(self):
        codec2_lib()

    def _reset_random(self):
        return reset_codec2_random()

    def _encode(self, pcm16):
        lib = codec2_lib()
        c = lib.codec2_create(self.mode_id)
        try:
            n = lib.codec2_samples_per_frame(c)
            nb = lib.codec2_bits_per_frame(c)
            assert n == self.frame_samples and nb == self.frame_bits, (n, nb)
            buf = (ctypes.c_ubyte * ((nb + 7) // 8))()
            frames = []
            for i in range(len(pcm16) // n):
                fr = np.ascontiguousarray(pcm16[i * n:(i + 1) * n])
                lib.codec2_encode(c, buf, fr.ctypes.data)
                frames.append(bytes(buf))
            return frames
        finally:
            lib.codec2_destroy(c)

    def _decoder(self):
        lib = codec2_lib()
        c = lib.codec2_create(self.mode_id)
        out = np.zeros(self.frame_samples, np.int16)

        def dec(frame):
            lib.codec2_decode(c, out.ctypes.data, frame)
            return out.astype(np.float32)
        dec._keep = CHandle(lib.codec2_destroy, c)
        return dec
