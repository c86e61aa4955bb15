#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Link simulation: packets through packet_modem_tx [-> burst_slots: each
burst in its own 80 ms slot, silence between] -> gr-channels models (AWGN,
Rayleigh or Rician flat fading with Doppler (fading_model), carrier and timing
drift (cfo_model, sro_model), all seeded) -> packet_modem_rx
(largesc-phy-sweep, docs/phy.md)."""

import math
import time

import numpy as np
import pmt
from gnuradio import blocks, channels, gr

from .channel import (DEFAULT_DOPPLER_HZ, DEFAULT_K_FACTOR_DB, FADING_SINUSOIDS, check_channel,
                      noise_voltage)
from ..common.params import check_float, check_int
from .framing import DEFAULT_BIT_RATE, DEFAULT_SAMP_RATE, LENGTH_TAG
from .modem_rx import packet_modem_rx
from .modem_tx import packet_modem_tx

STALE_NOISE_SAMPLES = 65536


class burst_slots(gr.basic_block):
    """Tagged bursts (packet_modem_tx in 'burst' mode: a length tag in samples
    on each burst's first sample) -> the sample stream a receiver hears from a
    bursting transmitter: `lead` zero samples first, then each burst at the
    start of its own slot of `slot_samples` samples, zeros after it to the end
    of the slot (the transmitter is off; the channel downstream adds its noise
    there). A burst longer than its slot is sent whole, without zeros after it.

    Input without a length tag where a burst must start (not a packet modem's
    burst) is dropped and counted (untagged_samples), as is a tag whose length
    is not a positive integer (bad_tags). Counts: bursts, burst_starts (the
    output offset of each burst's first sample), zeros (samples of silence
    written), last_burst_end (output offset just after the last burst)."""

    def __init__(self, slot_samples, lead=0, length_tag=LENGTH_TAG):
        gr.basic_block.__init__(self, "largesc_burst_slots", in_sig=[np.complex64], out_sig=[np.complex64])
        self.slot_samples = check_int("slot_samples", slot_samples, 1, 1 << 30)
        self.tag_key = pmt.intern(length_tag)
        self.pending_zeros = check_int("lead", lead, 0, 1 << 30)
        self.burst_left = 0         # samples of the current burst still to copy
        self.burst_len = 0
        self.produced = 0
        self.burst_starts = []
        self.last_burst_end = 0
        self.zeros = 0
        self.untagged_samples = 0
        self.bad_tags = 0

    def forecast(self, noutput_items, ninputs):
        # silence needs no input: the last slot's zeros come out after the last burst
        return [0 if self.pending_zeros else noutput_items] * ninputs

    def _next_burst(self, start, end):
        """At a burst boundary (input offset `start`, input up to `end`): (length
        of the burst starting there, 0), or (0, untagged samples to drop
        before the next tag)."""
        for t in sorted(self.get_tags_in_range(0, start, end, self.tag_key), key=lambda t: t.offset):
            if t.offset > start:
                return 0, int(t.offset - start)
            n = pmt.to_long(t.value) if pmt.is_integer(t.value) else 0
            if n > 0:
                return n, 0
            self.bad_tags += 1
            return 0, 1
        return 0, end - start

    def general_work(self, input_items, output_items):
        inp, out = input_items[0], output_items[0]
        base = self.nitems_read(0)
        n_in, n_out, i, o = len(inp), len(out), 0, 0
        while o < n_out:
            if self.pending_zeros:
                k = min(self.pending_zeros, n_out - o)
                out[o:o + k] = 0
                o += k
                self.pending_zeros -= k
                self.zeros += k
            elif self.burst_left:
                k = min(self.burst_left, n_in - i, n_out - o)
                if k == 0:
                    break
                out[o:o + k] = inp[i:i + k]
                i += k
                o += k
                self.burst_left -= k
                if self.burst_left == 0:
                    self.last_burst_end = self.produced + o
                    self.pending_zeros = max(0, self.slot_samples - self.burst_len)
            elif i < n_in:
                n, drop = self._next_burst(base + i, base + n_in)
                if drop:
                    self.untagged_samples += drop
                    i += drop
                else:
                    self.burst_len = self.burst_left = n
                    self.burst_starts.append(self.produced + o)
            else:
                break
        self.consume(0, i)
        self.produced += o
        return o


class link_sim:
    """A running simulated link: packet_modem_tx -> [fading] -> channel_model
    -> packet_modem_rx, the received packets collected. Use send() for a batch
    of packets at one Eb/N0 and set_ebn0() between batches: the receiver keeps
    running (or a fresh link_sim per Eb/N0 point, for results that do not
    depend on the point before: largesc-phy-sweep does that).

    Channel (all GNU Radio gr-channels models, all seeded from `seed`):
      channel: 'awgn', 'rayleigh' or 'rician' (CHANNELS). Fading is flat
          (one path) and slow against the bits: channels.fading_model (sum of
          FADING_SINUSOIDS sinusoids, Doppler spectrum of a mobile), unit mean
          power, so Eb/N0 is the average over the fades; 'rician' adds a
          line-of-sight path with K = k_factor_db (line-of-sight / scattered
          power). The fading process runs in sample time: give the transmitter
          frame_period=FRAME_PERIOD (tx_kw) so that packets sit 80 ms apart as
          on air, else a Doppler in Hz means nothing in real time.
      doppler_hz: maximum Doppler shift fD (fading_model gets fD / samp_rate).
      freq_offset_hz, epsilon: fixed carrier offset and sample clock ratio
          (channels.channel_model); freq_drift_hz: the carrier offset also
          wanders, a random walk within +-freq_drift_hz (channels.cfo_model);
          timing_drift_ppm: the sample clock wanders within +-ppm
          (channels.sro_model). Both walks take about a second to cross their
          range.
      fec: the modems' FEC (FEC_CODES), both ends.
    burst_period: with tx_kw mode='burst' (a transmitter that is off between
        packets, as a USRP in burst mode): seconds per packet slot
        (FRAME_PERIOD), 0 = bursts back to back. With a period the
        receiver hears what it hears on air: one slot of silence first, then
        each burst at the start of its slot and silence to the slot's end
        (burst_slots), the channel's noise over all of it.
    probe_gain: record the fading power gain |h|^2 per transmitted byte, for
        packet_gains_db().
    """

    def __init__(self, samp_rate=DEFAULT_SAMP_RATE, bit_rate=DEFAULT_BIT_RATE, ebn0_db=20.0,
                 freq_offset_hz=0.0, epsilon=1.0, seed=1, tx_kw=None, channel="awgn",
                 doppler_hz=DEFAULT_DOPPLER_HZ, k_factor_db=DEFAULT_K_FACTOR_DB, freq_drift_hz=0.0,
                 timing_drift_ppm=0.0, fec="none", probe_gain=False, burst_period=0.0, **rx_kw):
        check_channel(channel, doppler_hz, k_factor_db, bit_rate, freq_drift_hz, timing_drift_ppm)
        check_float("burst_period", burst_period, 0.0, 10.0)
        if burst_period and (tx_kw or {}).get("mode") != "burst":
            raise ValueError("burst_period applies to tx_kw mode 'burst' only")
        self.tb = gr.top_block("largesc_link_sim")
        self.tx = packet_modem_tx(samp_rate, bit_rate, fec=fec, **(tx_kw or {}))
        self.sps = self.tx.sps
        self.slots = None
        if burst_period:
            slot = int(round(burst_period * samp_rate))
            self.slots = burst_slots(slot, lead=slot, length_tag=(tx_kw or {}).get("length_tag", LENGTH_TAG))
        self.rx = packet_modem_rx(samp_rate, bit_rate, fec=fec, **rx_kw)
        self.channel = channels.channel_model(noise_voltage(ebn0_db, self.sps), freq_offset_hz / samp_rate,
                                              epsilon, [1.0], float(seed))
        chain = [self.tx] + ([self.slots] if self.slots else [])
        self.fading = None
        if channel != "awgn":
            self.fading = channels.fading_model(FADING_SINUSOIDS, doppler_hz / samp_rate, channel == "rician",
                                                10 ** (k_factor_db / 10.0), int(seed) & 0xFFFFFFFF)
            chain.append(self.fading)
        self.gain_sink = None
        if probe_gain:
            self.gain_sink = blocks.vector_sink_f()
            self.tb.connect(chain[-1], blocks.complex_to_mag_squared(),
                            blocks.integrate_ff(8 * self.sps), self.gain_sink)
        if timing_drift_ppm:
            dev = timing_drift_ppm * 1e-6 * samp_rate
            chain.append(channels.sro_model(samp_rate, dev / math.sqrt(samp_rate), dev, float(seed + 2)))
        if freq_drift_hz:
            chain.append(channels.cfo_model(samp_rate, freq_drift_hz / math.sqrt(samp_rate), freq_drift_hz,
                                            float(seed + 3)))
        self.sink = blocks.message_debug(False)
        self.crc_sink = blocks.message_debug(False)      # the rx's crc_failed reports
        self.tb.connect(*chain, self.channel, self.rx)
        self.tb.msg_connect(self.rx, "out", self.sink, "store")
        self.tb.msg_connect(self.rx, "crc_failed", self.crc_sink, "store")
        self.epsilon = epsilon
        self.timing_drift_ppm = timing_drift_ppm
        self.tb.start()

    def packet_gains_db(self, n_packets, packet_bytes):
        """Mean fading power gain (dB) over each of the first n_packets frames
        on air (0 dB without fading), from the probe (probe_gain=True); frames
        at FRAME_PERIOD slots from the start of the stream. Bursts in slots
        (burst_period): over each burst less its first and last byte (the
        transmitter's power ramps)."""
        if self.gain_sink is None:
            raise RuntimeError("link_sim(probe_gain=True) records the gains")
        g = np.asarray(self.gain_sink.data(), float) / (8 * self.sps)   # mean |h|^2 per byte
        size = self.tx.frame_bytes(packet_bytes)
        slot = max(self.tx.slot_bytes, size)
        out = np.full(n_packets, np.nan)
        if self.slots is not None:
            starts = [b // (8 * self.sps) + 1 for b in self.slots.burst_starts[:n_packets]]
            size -= 2
        else:
            starts = [self.tx.framer.startup + k * slot for k in range(n_packets)]
        for k, a in enumerate(starts):
            if a + size <= len(g):
                out[k] = 10 * math.log10(max(float(np.mean(g[a:a + size])), 1e-12))
        return out

    def set_ebn0(self, ebn0_db):
        """New noise level. The channel's noise source runs ahead of the signal
        (its output buffer holds noise made at the old level), so idle bytes
        worth STALE_NOISE_SAMPLES are queued to carry that noise away."""
        self.channel.set_noise_voltage(noise_voltage(ebn0_db, self.sps))
        self.tx.framer.idle(-(-STALE_NOISE_SAMPLES // (8 * self.sps)))

    def received(self, start=0):
        return [bytes(pmt.u8vector_elements(pmt.cdr(self.sink.get_message(i))))
                for i in range(start, self.sink.num_messages())]

    def send(self, packets, timeout=60.0, pace=256):
        """Posts the packets (at most `pace` in flight), waits until the receiver
        has consumed every sample they make, returns the packets delivered
        meanwhile (bytes, in order of delivery)."""
        from ..common.pacing import post_paced, wait_for
        start = self.sink.num_messages()
        n0 = self.tx.packets_in()
        b0 = len(self.slots.burst_starts) if self.slots is not None else 0
        msgs = (pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))) for b in packets)
        post_paced(self.tx.gate, "in", msgs, self.tx.packets_in, window=pace, timeout=timeout)
        wait_for(lambda: self.tx.packets_in() - n0 == len(packets), timeout, "modulator stalled")
        # every sample up to the last frame's postamble has entered the receiver
        # (channel_model resamples by 1/epsilon; counting recovered bits instead
        # would drift with timing slips at low SNR) ...
        sps = self.tx.sps
        if self.slots is not None:      # the burst's last sample, in the slotted stream
            wait_for(lambda: len(self.slots.burst_starts) - b0 == len(packets) and self.slots.burst_left == 0,
                     timeout, "burst slots stalled")
            end = self.slots.last_burst_end
        else:
            end = self.tx.framer.last_frame_end * 8 * sps
        target = end / self.epsilon * (1 - 1e-6 * self.timing_drift_ppm) - 4 * sps
        wait_for(lambda: self.rx.samples_in() >= target, timeout, "receiver stalled")
        # ... and the receiver's stream blocks and the message chain after them
        # (frame sync -> CRC -> sink), which is asynchronous, have gone quiet
        # (unchanged for 4 looks 50 ms apart: on a loaded machine a message
        # thread can wait longer than one look)
        last, quiet = None, 0
        while quiet < 4:
            now = (self.rx.bits_out(), self.rx.frames_detected(), self.rx.packets_out(), self.sink.num_messages())
            quiet = quiet + 1 if now == last and now[2] == now[3] else 0
            last = now
            time.sleep(0.05)
        return self.received(start)

    def close(self):
        self.tb.stop()
        self.tb.wait()
