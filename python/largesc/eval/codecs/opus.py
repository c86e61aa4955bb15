#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Opus as a baseline (eval/baselines.py): Debian's ``libopus.so.0`` (1.3.1)
through ctypes, because opuslib/PyAV do not expose everything needed
(``decode_fec``). Concealment: Opus PLC, and in-band FEC where the encoder
codes it (see the class)."""

import ctypes

import numpy as np

from ..baselines import HEADER_BYTES, SLOT_MS, Baseline, CHandle, LossSpec, PacketSizedFrames, load_lib

_opus_lib = None


def opus_lib():
    global _opus_lib
    if _opus_lib is None:
        lib = load_lib(["libopus.so.0", "opus"], "Opus", "libopus0")
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int,
                                            ctypes.POINTER(ctypes.c_int)]
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                    ctypes.c_void_p, ctypes.c_int32]
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                    ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.opus_get_version_string.restype = ctypes.c_char_p
        _opus_lib = lib
    return _opus_lib


# Opus CTL request numbers (opus_defines.h)
_OPUS_APPLICATION_VOIP = 2048
_OPUS_SET_BITRATE = 4002
_OPUS_SET_VBR = 4006
_OPUS_SET_COMPLEXITY = 4010
_OPUS_SET_INBAND_FEC = 4012
_OPUS_SET_PACKET_LOSS_PERC = 4014
_OPUS_SET_SIGNAL = 4024
_OPUS_GET_LOOKAHEAD = 4027
_OPUS_SIGNAL_VOICE = 3001


class Opus(PacketSizedFrames, Baseline):
    """Opus (libopus through ctypes) at 16 kHz, 20 ms frames, hard CBR (fixed
    packet size, as a radio framer wants), VOIP application, complexity 10,
    in-band FEC requested with the expected loss rate as
    OPUS_SET_PACKET_LOSS_PERC.

    Receiver: a received packet is decoded normally; a lost frame n is
    decoded with ``decode_fec=1`` from packet n+1 when that one arrived
    (in-band FEC), else with Opus PLC (NULL packet). Using FEC makes the
    receiver wait for packet n+1: one packet period more latency.

    libopus 1.3.1 (Debian 12) only codes FEC (SILK LBRR) when the bitrate is
    above a threshold (about 12-20 kbit/s depending on bandwidth and loss,
    ``decide_fec`` in opus_encoder.c): at 6 kbit/s it codes none, so FEC
    decoding gives exactly the PLC output. ``run`` measures this and says so
    in the notes (``fec_active``)."""
    codec_rate = 16000
    frame_ms = 20.0
    codec_delay_ms = 6.5        # encoder lookahead (104 samples at 16 kHz)

    def __init__(self, bitrate=6000, fec=True, name=None):
        self.bitrate = int(bitrate)
        if not 6000 <= self.bitrate <= 510000:
            raise ValueError(f"Opus bitrate must be 6000..510000 bit/s, got {bitrate}")
        self.fec = bool(fec)
        self.frame_bits = self.bitrate * int(self.frame_ms) // 1000
        self.name = name or f"opus_{self.bitrate // 1000}k"
        self.description = f"Opus {self.bitrate / 1000:g} kbit/s CBR, PLC" + (" + in-band FEC" if fec else "")
        self.fec_active = None
        self._loss_perc = 0

    def check_available(self):
        opus_lib()

    def version(self):
        return opus_lib().opus_get_version_string().decode()

    def _encode(self, pcm16):
        lib = opus_lib()
        err = ctypes.c_int()
        e = lib.opus_encoder_create(self.codec_rate, 1, _OPUS_APPLICATION_VOIP, ctypes.byref(err))
        if err.value != 0 or not e:
            raise RuntimeError(f"opus_encoder_create failed ({err.value})")
        try:
            for req, val in ((_OPUS_SET_BITRATE, self.bitrate), (_OPUS_SET_VBR, 0),
                             (_OPUS_SET_COMPLEXITY, 10), (_OPUS_SET_SIGNAL, _OPUS_SIGNAL_VOICE),
                             (_OPUS_SET_INBAND_FEC, int(self.fec)),
                             (_OPUS_SET_PACKET_LOSS_PERC, self._loss_perc)):
                r = lib.opus_encoder_ctl(ctypes.c_void_p(e), ctypes.c_int(req), ctypes.c_int(val))
                if r != 0:
                    raise RuntimeError(f"opus_encoder_ctl({req}, {val}) failed ({r})")
            n = self.frame_samples
            buf = (ctypes.c_ubyte * 1500)()
            frames = []
            for i in range(len(pcm16) // n):
                fr = np.ascontiguousarray(pcm16[i * n:(i + 1) * n])
                k = lib.opus_encode(e, fr.ctypes.data, n, buf, 1500)
                if k < 0:
                    raise RuntimeError(f"opus_encode failed ({k})")
                frames.append(bytes(buf[:k]))
            return frames
        finally:
            lib.opus_encoder_destroy(e)

    def _new_decoder(self):
        lib = opus_lib()
        err = ctypes.c_int()
        d = lib.opus_decoder_create(self.codec_rate, 1, ctypes.byref(err))
        if err.value != 0 or not d:
            raise RuntimeError(f"opus_decoder_create failed ({err.value})")
        return CHandle(lib.opus_decoder_destroy, d)

    def _decode(self, frames, lost):
        lib = opus_lib()
        holder = self._new_decoder()
        d = holder.handle
        n = self.frame_samples
        out = np.zeros(len(frames) * n, np.int16)
        tmp = np.zeros(n, np.int16)
        for i, fr in enumerate(frames):
            if not lost[i]:
                k = lib.opus_decode(d, fr, len(fr), tmp.ctypes.data, n, 0)
            elif self.fec and i + 1 < len(frames) and not lost[i + 1]:
                nxt = frames[i + 1]
                k = lib.opus_decode(d, nxt, len(nxt), tmp.ctypes.data, n, 1)
            else:
                k = lib.opus_decode(d, None, 0, tmp.ctypes.data, n, 0)
            if k != n:
                raise RuntimeError(f"opus_decode returned {k}, expected {n}")
            out[i * n:(i + 1) * n] = tmp
        return out.astype(np.float32) / 32768.0

    def fec_is_active(self, frames, probes=20):
        """Does the stream carry usable in-band FEC? Decodes a few frames
        both ways (decode_fec from the next packet vs PLC) after the same
        history; any difference means LBRR data is present."""
        if not self.fec or len(frames) < 4:
            return False
        lib = opus_lib()
        n = self.frame_samples
        a, b = np.zeros(n, np.int16), np.zeros(n, np.int16)
        for i in np.linspace(2, len(frames) - 2, min(probes, len(frames) - 3)).astype(int):
            h1, h2 = self._new_decoder(), self._new_decoder()
            for j in range(max(0, i - 3), i):
                lib.opus_decode(h1.handle, frames[j], len(frames[j]), a.ctypes.data, n, 0)
                lib.opus_decode(h2.handle, frames[j], len(frames[j]), b.ctypes.data, n, 0)
            lib.opus_decode(h1.handle, frames[i + 1], len(frames[i + 1]), a.ctypes.data, n, 1)
            lib.opus_decode(h2.handle, None, 0, b.ctypes.data, n, 0)
            if not np.array_equal(a, b):
                return True
        return False

    def latency(self, alignment):
        _total, b = super().latency(alignment)
        if self.fec and self.fec_active is not False:
            b["fec_wait_ms"] = SLOT_MS if alignment == "slot" else self.frame_ms
        return sum(b.values()), b

    def run(self, audio, sr, loss=None, header_bytes=HEADER_BYTES):
        loss = loss if loss is not None else LossSpec()
        # the sender is told the expected loss (what a real link would feed back)
        self._loss_perc = int(round(100 * loss.loss_rate))
        pcm = self._to_pcm16(np.asarray(audio, np.float32), sr)
        self.fec_active = self.fec_is_active(self._encode(pcm[:self.frame_samples * 50]))
        return super().run(audio, sr, loss, header_bytes)

    def _notes(self):
        notes = [self.version()] + super()._notes()
        if self.fec and not self.fec_active:
            notes.append("in-band FEC requested but the encoder coded none (libopus codes LBRR "
                         "only when told to expect loss, and at 16 kHz only above about "
                         "12-20 kbit/s): lost frames use PLC")
        return notes
