#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""AAC-LC as a baseline (eval/baselines.py): FFmpeg's native encoder and
decoder through PyAV (``AAC``; the decoder has no loss concealment, see the
class)."""

import numpy as np

from ..baselines import SLOT_MS, Baseline, BaselineUnavailable, PacketSizedFrames


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


class AAC(PacketSizedFrames, Baseline):
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
