#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Baseline speech codecs under the same packet loss as the LargeSC link.

Each baseline: encode -> per-frame loss decided by the module's own seeded
loss models (``largesc.loss_model``, the C++ core that also drives the
``erasure_channel`` block) -> decode with the codec's native concealment.
Everything runs without a GNU Radio scheduler.

Systems (see docs/evaluation.md for the numbers):

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

Codec2 and LPCNet are called through ctypes on Debian's ``libcodec2.so.1.0``
(the library gr-vocoder's codec2 blocks wrap; qa_eval checks that our Codec2
bits equal ``vocoder.codec2_encode_sp``'s bit for bit). LPCNet is the FreeDV
2020 configuration (``lpcnet_freedv_create(LPCNET_DIRECT_SPLIT)``, 3 x 10 ms
feature frames decimated to one 52-bit frame per 30 ms = 1733 bit/s).
Opus is called through ctypes on Debian's ``libopus.so.0`` (1.3.1), because
opuslib/PyAV do not expose everything needed (``decode_fec``).
AAC-LC is FFmpeg's native encoder and decoder through PyAV (``AAC``; the
decoder has no loss concealment, see the class). EnCodec lives in
``neural_codecs`` (it needs torch and model weights).

Loss alignment (``LossSpec.alignment``):

- ``"slot"`` (default): every system sends one radio packet per 80 ms slot
  (the LargeSC packet period) carrying the codec frames of that slot, and the
  loss pattern is ``model.pattern(n_slots)``: the very same array, for the
  same model, parameters and seed, that the LargeSC link gets. A codec frame
  is lost when the slot holding its midpoint is lost (40 ms frames: 2 per
  slot, 20 ms: 4, 30 ms: frames straddling a boundary go with their midpoint).
  Every system loses the same stretches of speech.
- ``"frame"``: every codec frame travels in its own packet at the codec's own
  packet rate, and the pattern is ``model.pattern(n_frames)`` from a model
  with the same parameters and seed: one loss decision per codec packet. A
  Gilbert-Elliott mean burst of B packets then lasts B codec frames (shorter
  in time for shorter frames).

Trace replay (``model="trace"``, a recorded loss pattern: docs/traces.md):
a trace is a sequence of 80 ms LargeSC air slots in time, so the rule is the
same in both alignments: a baseline packet (or codec frame) is lost when the
80 ms slot its midpoint falls in is lost (``frame_slots``); the trace repeats
when the speech is longer than it, as in the LargeSC link's erasure channel.
"""

import ctypes
import ctypes.util
import dataclasses

import numpy as np

from ..common.loss import SLOT_MS, LossSpec, frame_slots
from .speech import resample

HEADER_BYTES = 3        # per radio packet, as LargeSC's packet format v1
FADE_MS = 100.0         # repeat-with-fade concealment: gain 1 -> 0 over this


def loss_fade(lost, n, rate, fade_ms=FADE_MS):
    """Per-sample gain (float64) of the repeat-with-fade concealment for
    frames of n samples at `rate`: 1 on received frames, 0 on frames lost
    before any arrived, and over a run of lost frames a linear fade from 1
    to 0 in fade_ms, restarting at 1 after every received frame."""
    lost = np.asarray(lost, bool)
    gain = np.ones(len(lost) * n)
    fade_len = rate * fade_ms / 1000
    seen, run = False, 0
    for i, gone in enumerate(lost):
        if not gone:
            seen, run = True, 0
            continue
        gain[i * n:(i + 1) * n] = (np.clip(1.0 - (run + np.arange(n)) / fade_len, 0, 1)
                                   if seen else 0.0)
        run += n
    return gain


class BaselineUnavailable(RuntimeError):
    """The codec library this baseline needs is not installed."""


def packet_bytes(frame_bits, frame_ms, alignment, header_bytes=HEADER_BYTES, offset_ms=0.0):
    """On-air bytes of each radio packet: a header plus the codec frames it
    carries, bit-packed without gaps (``frame_bits`` = bits of each frame)."""
    frame_bits = np.asarray(frame_bits, np.int64)
    if alignment == "frame":
        return header_bytes + (frame_bits + 7) // 8
    slots = frame_slots(len(frame_bits), frame_ms, offset_ms=offset_ms)
    bits = np.bincount(slots, weights=frame_bits, minlength=int(slots[-1]) + 1 if len(slots) else 0)
    return header_bytes + (bits.astype(np.int64) + 7) // 8


# --------------------------------------------------------------------------
# results


@dataclasses.dataclass
class BaselineResult:
    """Output of one baseline run. ``audio`` is float32 mono at ``sr``, the
    same length as the input (codec delay not removed: evaluate with
    ``metrics.evaluate``, which aligns once)."""
    system: str
    audio: np.ndarray
    sr: int
    loss: LossSpec
    frame_lost: np.ndarray          # bool per codec frame
    frames: int
    frames_lost: int
    packets: int
    packets_lost: int
    payload_bps: float              # codec payload (the "token payload" column)
    on_air_bps: float               # payload + packet headers + byte padding
    latency_ms: float               # algorithmic, mic to speaker, see docs
    latency_breakdown: dict
    notes: list
    # True when a neural codec ran without its trained weights (EnCodec with
    # weights "random"): plumbing only, never speech quality; largesc's report
    # keeps such rows out of every comparison and plot
    untrained: bool = False

    def row(self):
        """Report fields without the audio (JSON friendly)."""
        d = {k: getattr(self, k) for k in (
            "system", "sr", "frames", "frames_lost", "packets", "packets_lost",
            "payload_bps", "on_air_bps", "latency_ms", "untrained")}
        d["loss"] = dataclasses.asdict(self.loss)
        d["latency_breakdown"] = dict(self.latency_breakdown)
        d["notes"] = list(self.notes)
        return d


# --------------------------------------------------------------------------
# libraries


def _load_lib(names, what, install):
    for n in names:
        path = ctypes.util.find_library(n) if "." not in n else n
        if path:
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    raise BaselineUnavailable(f"{what} library not found ({', '.join(names)}); install the "
                              f"Debian package {install}")


_codec2_lib = None
_opus_lib = None


def codec2_lib():
    global _codec2_lib
    if _codec2_lib is None:
        lib = _load_lib(["libcodec2.so.1.0", "libcodec2.so.1.2", "codec2"], "Codec2",
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


def opus_lib():
    global _opus_lib
    if _opus_lib is None:
        lib = _load_lib(["libopus.so.0", "opus"], "Opus", "libopus0")
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


# --------------------------------------------------------------------------
# baselines


class Baseline:
    """Base class: subclasses set the class attributes and implement
    ``_encode(pcm16) -> list of frames`` and ``_decode_frame(frame)``."""
    name = ""
    codec_rate = 8000       # Hz the codec runs at
    frame_ms = 20.0
    frame_bits = 0          # nominal bits per frame
    codec_delay_ms = 0.0    # measured offline delay of the decoded output
    frame_offset_ms = 0.0   # packet i's centre is (i + 0.5) * frame_ms + this (frame_slots)
    description = ""

    @property
    def frame_samples(self):
        return int(round(self.codec_rate * self.frame_ms / 1000))

    @property
    def payload_bps(self):
        return self.frame_bits * 1000.0 / self.frame_ms

    def check_available(self):
        """Raise BaselineUnavailable if the codec cannot run here."""

    # -- to implement
    def _encode(self, pcm16):
        raise NotImplementedError

    def _decoder(self):
        """A fresh decoder: callable(frame or None for concealment) -> int16 pcm."""
        raise NotImplementedError

    # -- shared
    def _to_pcm16(self, audio, sr):
        x = resample(np.asarray(audio, np.float32), sr, self.codec_rate)
        n = self.frame_samples
        pad = (-len(x)) % n
        x = np.concatenate([x, np.zeros(pad, np.float32)])
        return np.round(np.clip(x, -1, 32767 / 32768) * 32768).astype(np.int16)

    def _decode(self, frames, lost):
        """Repeat-with-fade concealment (Codec2, LPCNet, AAC): a lost frame is
        decoded from the last received frame's bits (keeps the decoder state
        smooth), and the output of a loss run fades linearly from 1 to 0 over
        FADE_MS; a loss before any frame arrived gives silence (loss_fade)."""
        dec = self._decoder()
        n = self.frame_samples
        gain = loss_fade(lost, n, self.codec_rate)
        out = np.zeros(len(frames) * n, np.float32)
        last = None
        for i, fr in enumerate(frames):
            if not lost[i]:
                last = fr
                out[i * n:(i + 1) * n] = dec(fr)
            elif last is not None:
                out[i * n:(i + 1) * n] = dec(last) * gain[i * n:(i + 1) * n]
        return out / 32768.0

    def latency(self, alignment):
        """Algorithmic latency, microphone to speaker, in ms, with breakdown."""
        b = {"frame_ms": self.frame_ms, "codec_delay_ms": self.codec_delay_ms}
        if alignment == "slot":
            b["packetization_ms"] = max(0.0, SLOT_MS - self.frame_ms)
        return sum(b.values()), b

    def run(self, audio, sr, loss=None, header_bytes=HEADER_BYTES):
        """Encode ``audio`` (float, any rate ``sr``), lose frames per ``loss``
        (LossSpec; None = no loss), decode with concealment, and return a
        BaselineResult with audio at ``sr``, the same length as the input."""
        self.check_available()
        loss = loss if loss is not None else LossSpec()
        audio = np.asarray(audio, np.float32)
        self._repeatable = self._reset_random()
        pcm = self._to_pcm16(audio, sr)
        frames = self._encode(pcm)
        off = self.frame_offset_ms
        lost = loss.frame_losses(len(frames), self.frame_ms, offset_ms=off)
        y = self._decode(frames, lost)
        y = resample(y, self.codec_rate, sr)[:len(audio)]
        if len(y) < len(audio):
            y = np.concatenate([y, np.zeros(len(audio) - len(y), np.float32)])
        fbits = self._frame_bits(frames)
        pbytes = packet_bytes(fbits, self.frame_ms, loss.alignment, header_bytes, offset_ms=off)
        if loss.alignment == "frame":
            packets, packets_lost = len(frames), int(lost.sum())
            period_ms = self.frame_ms
        else:
            slots = frame_slots(len(frames), self.frame_ms, offset_ms=off)
            packets = int(slots[-1]) + 1 if len(frames) else 0
            packets_lost = int(loss.pattern(packets).sum())
            period_ms = SLOT_MS
        # steady-state rates: the last packet may be part-filled, leave it out
        full = pbytes[:-1] if len(pbytes) > 1 else pbytes
        on_air_bps = float(np.mean(full) * 8 * 1000.0 / period_ms)
        self._peak_on_air_bps = float(np.max(pbytes) * 8 * 1000.0 / period_ms)
        lat, breakdown = self.latency(loss.alignment)
        return BaselineResult(
            system=self.name, audio=y.astype(np.float32), sr=int(sr), loss=loss,
            frame_lost=lost, frames=len(frames), frames_lost=int(lost.sum()),
            packets=packets, packets_lost=packets_lost,
            payload_bps=float(np.sum(fbits) / (len(frames) * self.frame_ms / 1000.0)),
            on_air_bps=on_air_bps,
            latency_ms=float(lat), latency_breakdown=breakdown, notes=list(self._notes()),
            untrained=bool(getattr(self, "untrained", False)))

    def _frame_bits(self, frames):
        return np.full(len(frames), self.frame_bits, np.int64)

    def _reset_random(self):
        """Reset codec-internal random state; False if that is impossible."""
        return True

    def _notes(self):
        if not getattr(self, "_repeatable", True):
            return ["libcodec2 random state could not be reset: output varies from run to run"]
        return []


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
        dec._keep = _Destroy(lib.codec2_destroy, c)
        return dec


class _Destroy:
    """Frees a C handle when the decoder closure goes away."""
    def __init__(self, fn, handle):
        self.fn, self.handle = fn, handle

    def __del__(self):
        try:
            self.fn(self.handle)
        except Exception:
            pass


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
        dec._keep = _Destroy(lib.lpcnet_freedv_destroy, lf)
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


class _PacketSizedFrames:
    """For codecs whose packets vary in size (Opus, AAC): each frame's bits
    are its own packet's."""

    def _frame_bits(self, frames):
        return np.array([8 * len(f) for f in frames], np.int64)


class Opus(_PacketSizedFrames, Baseline):
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
        return _Destroy(lib.opus_decoder_destroy, d)

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


def pyav():
    """PyAV (``import av``, FFmpeg's libraries in a wheel) or
    BaselineUnavailable saying how to install it."""
    try:
        import av
    except ImportError as e:
        raise BaselineUnavailable(f"AAC needs PyAV ({e}); install it with pip: av (see "
                                  "requirements.txt)") from None
    if "aac" not in av.codecs_available:
        raise BaselineUnavailable("this PyAV's FFmpeg has no 'aac' codec")
    return av


class AAC(_PacketSizedFrames, Baseline):
    """AAC-LC (MPEG-4 AAC Low Complexity) through FFmpeg's native ``aac``
    encoder and decoder (PyAV): mono, 1024-sample frames (64 ms at 16 kHz),
    FFmpeg's default "twoloop" rate control at a target bit rate (average,
    not CBR: packet sizes vary frame to frame; the payload and on-air rates
    are computed from the real packet sizes). Raw AAC packets, no ADTS or
    LATM header: the AudioSpecificConfig (5 bytes from FFmpeg) travels once at
    call set-up.

    Measured (FFmpeg 8 libavcodec 62.28 in PyAV 18.1, 16 kHz, the demo
    speech): the encoder accepts any target but does not go below about
    9 kbit/s on speech (targets 4-8 kbit/s all give 9.0-9.3 kbit/s); from
    10 kbit/s up it meets the target within 5 %. 8 and 12 kHz rates do not
    go lower (8.4-8.9 kbit/s) and sound worse. Hence ``aac_10k`` is the
    lowest AAC this encoder gives.

    Encoder delay, as FFmpeg reports it: the first packet's pts is -1024
    (1024 priming samples: the MDCT overlap), and the encoder returns packet
    k only after input frame k+1 (it holds one frame for its block-switching
    decision). Both are measured by ``encoder_delay`` and enter the latency.
    The priming stays in the decoded output (like every codec's delay here)
    for the metrics' alignment to find.

    Packet k's MDCT window covers input samples [(k-1)N, (k+1)N), centred at
    k*N (N = 1024): with ``frame_offset_ms`` = -N/2 the slot rule puts packet
    k in the 80 ms slot holding time k*N.

    FFmpeg's AAC decoder has no packet-loss concealment (no PLC API or
    option; its only options are dual_mono_mode and channel_order), so lost
    packets are concealed as the Codec2 baselines are: the last received
    packet is decoded again (spectral repetition, which is what decoders
    with AAC concealment start from) and the output of a loss run fades
    linearly to silence over FADE_MS (100 ms); a loss before any packet
    arrived is silence."""
    FRAME = 1024                # AAC-LC samples per frame and channel
    RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000,
             88200, 96000)
    MIN_BITRATE = 6000
    _delay_cache = {}

    def __init__(self, bitrate=10000, rate=16000, name=None):
        rate = int(rate)
        if rate not in self.RATES:
            raise ValueError(f"AAC sample rate must be one of {', '.join(map(str, self.RATES))} Hz, "
                             f"got {rate}")
        max_br = 6144 * rate // self.FRAME        # AAC-LC: 6144 bits per frame and channel
        if not self.MIN_BITRATE <= int(bitrate) <= max_br:
            raise ValueError(f"AAC bitrate at {rate} Hz must be {self.MIN_BITRATE}..{max_br} bit/s, "
                             f"got {bitrate}")
        self.bitrate = int(bitrate)
        self.codec_rate = rate
        self.frame_ms = self.FRAME * 1000.0 / rate
        self.frame_offset_ms = -self.frame_ms / 2
        self.frame_bits = int(round(self.bitrate * self.frame_ms / 1000))    # nominal (average)
        self.name = name or f"aac_{self.bitrate // 1000}k"
        self.description = (f"AAC-LC {self.bitrate / 1000:g} kbit/s target, {rate / 1000:g} kHz "
                            "(FFmpeg native encoder, PyAV)")

    @property
    def payload_bps(self):
        """The target bit rate (the measured one is in each run's result)."""
        return float(self.bitrate)

    def check_available(self):
        pyav()

    def version(self):
        av = pyav()
        v = av.library_versions.get("libavcodec", ())
        return f"FFmpeg libavcodec {'.'.join(map(str, v))} (PyAV {av.__version__})"

    def _encoder(self):
        av = pyav()
        c = av.CodecContext.create("aac", "w")
        c.sample_rate = self.codec_rate
        c.layout = "mono"
        c.format = "fltp"
        c.bit_rate = self.bitrate
        c.open()
        if c.frame_size != self.FRAME:
            raise RuntimeError(f"FFmpeg's AAC encoder uses {c.frame_size}-sample frames, expected "
                               f"{self.FRAME}")
        return c

    def _frame(self, x):
        av = pyav()
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x, np.float32)[None, :],
                                       format="fltp", layout="mono")
        f.sample_rate = self.codec_rate
        return f

    def _encode_with_timing(self, pcm16):
        """(packets as bytes, pts of each packet, index of the input frame
        after which each packet came out; len(input frames) = flush)."""
        c = self._encoder()
        x = pcm16.astype(np.float32) / 32768.0
        n = self.FRAME
        packets, pts, after = [], [], []
        for i in range(len(x) // n):
            f = self._frame(x[i * n:(i + 1) * n])
            f.pts = i * n
            for p in c.encode(f):
                packets.append(bytes(p))
                pts.append(int(p.pts))
                after.append(i)
        for p in c.encode(None):
            packets.append(bytes(p))
            pts.append(int(p.pts))
            after.append(len(x) // n)
        return packets, pts, after

    def encoder_delay(self):
        """(priming samples, frames held back) as FFmpeg's encoder shows
        them: minus the first packet's pts, and how many input frames after
        frame k packet k comes out. Measured once per rate and bit rate."""
        key = (self.codec_rate, self.bitrate)
        if key not in self._delay_cache:
            pcm = np.zeros(self.FRAME * 4, np.int16)
            _, pts, after = self._encode_with_timing(pcm)
            held = [a - k for k, a in enumerate(after) if a < 4]
            if not held or len(set(held)) != 1 or any(
                    b - a != self.FRAME for a, b in zip(pts, pts[1:])):
                raise RuntimeError(f"unexpected AAC encoder timing: pts {pts}, after {after}")
            self._delay_cache[key] = (-pts[0], held[0])
        return self._delay_cache[key]

    @property
    def codec_delay_ms(self):
        """Offline delay of the decoded output: the encoder's priming."""
        return self.encoder_delay()[0] * 1000.0 / self.codec_rate

    def _encode(self, pcm16):
        packets, pts, _ = self._encode_with_timing(pcm16)
        priming = self.encoder_delay()[0]
        want = [k * self.FRAME - priming for k in range(len(packets))]
        if pts != want:
            raise RuntimeError(f"AAC packets out of order or missing: pts {pts[:8]}...")
        return packets

    def extradata(self):
        """The encoder's AudioSpecificConfig (sent once at call set-up)."""
        key = ("extradata", self.codec_rate, self.bitrate)
        if key not in self._delay_cache:
            self._delay_cache[key] = bytes(self._encoder().extradata or b"")
        return self._delay_cache[key]

    def _decoder(self):
        av = pyav()
        d = av.CodecContext.create("aac", "r")
        d.sample_rate = self.codec_rate
        d.layout = "mono"
        d.extradata = self.extradata()
        d.open()
        n = self.FRAME

        def dec(packet):
            frames = d.decode(av.Packet(packet))
            y = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]) if frames else np.zeros(0)
            if len(y) != n:
                raise RuntimeError(f"AAC decoder returned {len(y)} samples for one packet, expected {n}")
            return (y * 32768.0).astype(np.float32)
        return dec

    def latency(self, alignment):
        held = self.encoder_delay()[1]
        b = {"frame_ms": self.frame_ms,
             "codec_delay_ms": self.codec_delay_ms,
             "encoder_lookahead_ms": held * self.frame_ms}
        if alignment == "slot":
            b["packetization_ms"] = max(0.0, SLOT_MS - self.frame_ms)
        return sum(b.values()), b

    def _notes(self):
        notes = [self.version(),
                 "FFmpeg's AAC decoder has no packet-loss concealment: a lost packet is replaced "
                 "by the last received one, output fading to silence over 100 ms",
                 "variable packet size (average-rate coding): on-air rate is the mean over the "
                 f"run; the largest radio packet needs {self._peak_on_air_bps:.0f} bit/s"]
        return notes + super()._notes()


def _registry():
    return {
        "codec2_700c": lambda: Codec2("700C"),
        "codec2_1200": lambda: Codec2("1200"),
        "codec2_3200": lambda: Codec2("3200"),
        "opus_6k": lambda: Opus(6000, fec=True, name="opus_6k"),
        "opus_24k_fec": lambda: Opus(24000, fec=True, name="opus_24k_fec"),
        "lpcnet_1733": LPCNet,
        "aac_10k": lambda: AAC(10000, 16000, name="aac_10k"),
        "aac_16k": lambda: AAC(16000, 16000, name="aac_16k"),
        "aac_24k": lambda: AAC(24000, 16000, name="aac_24k"),
        "encodec_1.5k": lambda: _neural().EnCodec(1.5, name="encodec_1.5k"),
        "encodec_3k": lambda: _neural().EnCodec(3.0, name="encodec_3k"),
    }


def _neural():
    from . import neural_codecs     # imports this module: loaded on first use
    return neural_codecs


BASELINES = tuple(_registry())
# EnCodec is unavailable (skipped, with the reason) until its weights are
# found: a default campaign never grows an untrained EnCodec row by itself
DEFAULT_BASELINES = ("codec2_700c", "codec2_1200", "codec2_3200", "opus_6k", "lpcnet_1733", "aac_10k",
                     "encodec_1.5k", "encodec_3k")


def get_baseline(name, weights=None):
    """A baseline by name; ValueError listing the known names otherwise.
    `weights`: a weight spec for a neural baseline (EnCodec: a file or
    'random[:seed]'; see neural_codecs.resolve_weights); None = its default
    lookup. ValueError for a codec that takes no weights."""
    reg = _registry()
    if name not in reg:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(reg)}")
    b = reg[name]()
    if weights is not None:
        if not hasattr(b, "weights"):
            raise ValueError(f"codec {name!r} takes no weights")
        b.weights = weights
    return b


def available_baselines(names=None):
    """{name: (available, reason)} for the baselines `names` (default: every
    one) on this machine. Checking a neural codec reads its weights file."""
    res = {}
    for name in (BASELINES if names is None else names):
        b = get_baseline(name)
        try:
            b.check_available()
            res[name] = (True, "")
        except BaselineUnavailable as e:
            res[name] = (False, str(e))
    return res


def run_baseline(name, audio, sr, loss=None, header_bytes=HEADER_BYTES, weights=None):
    """Shortcut: ``get_baseline(name, weights).run(audio, sr, loss)``."""
    return get_baseline(name, weights).run(audio, sr, loss, header_bytes)
