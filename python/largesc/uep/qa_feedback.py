#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for loss feedback over the air: the feedback packet format (the spec's
vectors byte for byte, every rejection reason, round trip, packet_kind), the
feedback_encoder and packet_sorter blocks, the controller taking a feedback
packet PDU directly, a receiver-to-transmitter flowgraph and hostile input."""

import binascii
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc.common.pacing import post_paced, wait_for
from gnuradio.largesc.common.pmt_util import parse_feedback

# docs/packet_format.md, "Feedback packets", "Test vectors" (written from the spec)
VECTORS = [
    ((0, 0.0, 1.0, 0), "00 80 00 00 00 40 00 00 87 6a"),
    ((7, 0.25, 2.5, 125), "07 80 40 00 00 a0 00 7d 25 69"),
    ((255, 1.0, 1000.0, 65535), "ff 80 ff ff fa 00 ff ff ea 71"),
    ((42, 0.05, 1.75, 120), "2a 80 0c cd 00 70 00 78 4e 65"),
]
INVALID = [
    ("07", "too_short"),
    ("", "too_short"),
    ("07 40 40 00 00 a0 00 7d 25 69", "not_feedback"),
    ("07 c0 40 00 00 a0 00 7d 25 69", "not_feedback"),
    ("07 80 40 00 00 a0 00 7d 25", "bad_length"),
    ("07 80 40 00 00 a0 00 7d 25 69 00", "bad_length"),
    ("07 80 40 00 00 a0 00 7d 25 68", "bad_crc"),
    ("07 81 40 00 00 a0 00 7d 9d 08", "bad_reserved"),
    ("07 80 40 00 00 3f 00 7d 71 61", "bad_burst"),
    ("07 80 40 00 fa 01 00 7d 58 23", "bad_burst"),
    ("07 80 40 00 00 00 00 7d 98 f5", "bad_burst"),
]


def pdu(data, car=None):
    """A packet PDU as a modem delivers it (car: metadata dict)."""
    if car is None:
        car = pmt.dict_add(pmt.make_dict(), pmt.intern("snr_db"), pmt.from_double(12.0))
    data = bytes(data)
    return pmt.cons(car, pmt.init_u8vector(len(data), list(data)))


def report(loss_rate, mean_burst, window=100):
    """A feedback report as uep_depacketizer publishes it."""
    meta = pmt.make_dict()
    meta = pmt.dict_add(meta, pmt.intern("loss_rate"), pmt.from_double(loss_rate))
    meta = pmt.dict_add(meta, pmt.intern("mean_burst"), pmt.from_double(mean_burst))
    meta = pmt.dict_add(meta, pmt.intern("window"), pmt.from_long(window))
    return pmt.cons(meta, pmt.init_u8vector(0, []))


def voice_packets(n, seed=3):
    """n valid voice packets (CRC on), frames 0..n-1."""
    rng = np.random.default_rng(seed)
    core = largesc.packetizer_core(True)
    return [core.packetize(i, rng.integers(0, 2048, 8), 4, 1, 0) for i in range(n)]


def report_of(msg):
    """(loss_rate, mean_burst, window) of a feedback dict PDU."""
    meta = pmt.car(msg)
    get = lambda k: pmt.dict_ref(meta, pmt.intern(k), pmt.PMT_NIL)  # noqa: E731
    return pmt.to_double(get("loss_rate")), pmt.to_double(get("mean_burst")), pmt.to_long(get("window"))


class qa_feedback_core(gr_unittest.TestCase):

    def test_crc_is_the_voice_crc(self):
        # the spec's CRC: CRC-16/CCITT-FALSE (binascii.crc_hqx with init 0xFFFF)
        for _, hexs in VECTORS:
            b = bytes.fromhex(hexs)
            self.assertEqual(binascii.crc_hqx(b[:8], 0xFFFF), int.from_bytes(b[8:], "big"))

    def test_vectors_from_the_spec(self):
        for (seq, loss, burst, window), hexs in VECTORS:
            self.assertEqual(largesc.build_feedback(seq, loss, burst, window), bytes.fromhex(hexs))
            status, rep = largesc.parse_feedback_packet(bytes.fromhex(hexs))
            self.assertEqual(status, "ok")
            self.assertEqual(rep["seq"], seq)
            self.assertAlmostEqual(rep["loss_rate"], loss, delta=0.5 / 65535)
            self.assertEqual(rep["mean_burst"], burst)
            self.assertEqual(rep["window"], window)
        self.assertEqual(largesc.parse_feedback_packet(bytes.fromhex(VECTORS[3][1]))[1]["loss_rate"], 3277 / 65535)
        self.assertEqual(largesc.FEEDBACK_BYTES, 10)

    def test_invalid_vectors_from_the_spec(self):
        for hexs, reason in INVALID:
            self.assertEqual(largesc.parse_feedback_packet(bytes.fromhex(hexs)), (reason, None), hexs)

    def test_voice_receiver_rejects_feedback_as_bad_version(self):
        for _, hexs in VECTORS:
            self.assertEqual(largesc.parse_packet(bytes.fromhex(hexs))[0], "bad_version")
        dpk = largesc.depacketizer_core()
        self.assertEqual(dpk.push(bytes.fromhex(VECTORS[1][1])), "bad_version")

    def test_packet_kind(self):
        self.assertEqual(largesc.packet_kind(bytes.fromhex(VECTORS[0][1])), "feedback")
        for p in voice_packets(3):
            self.assertEqual(largesc.packet_kind(p), "voice")
        for hexs in ("", "07", "07 00 00", "07 c0 00 00", "07 3f"):
            self.assertEqual(largesc.packet_kind(bytes.fromhex(hexs)), "unknown", hexs)
        self.assertEqual(largesc.packet_kind(bytearray(b"\x00\x80")), "feedback")

    def test_round_trip(self):
        rng = np.random.default_rng(5)
        for _ in range(2000):
            seq, window = int(rng.integers(0, 256)), int(rng.integers(0, 65536))
            loss, burst = float(rng.random()), float(rng.uniform(1.0, 1000.0))
            status, rep = largesc.parse_feedback_packet(largesc.build_feedback(seq, loss, burst, window))
            self.assertEqual(status, "ok")
            self.assertEqual((rep["seq"], rep["window"]), (seq, window))
            self.assertLessEqual(abs(rep["loss_rate"] - loss), 0.5 / 65535 + 1e-12)
            self.assertLessEqual(abs(rep["mean_burst"] - burst), 0.5 / 64 + 1e-12)

    def test_every_single_bit_flip_is_caught(self):
        good = bytes.fromhex(VECTORS[1][1])
        for i in range(len(good) * 8):
            bad = bytearray(good)
            bad[i // 8] ^= 1 << (i % 8)
            self.assertNotEqual(largesc.parse_feedback_packet(bytes(bad))[0], "ok", i)

    def test_build_argument_checks(self):
        bad = [
            ((256, 0.1, 1.0, 10), r"build_feedback: seq must be an integer in 0..255, got 256"),
            ((-1, 0.1, 1.0, 10), r"seq must be an integer in 0..255"),
            ((True, 0.1, 1.0, 10), r"seq must be an integer"),
            ((1.0, 0.1, 1.0, 10), r"seq must be an integer"),
            ((0, 1.5, 1.0, 10), r"loss_rate must be a finite number in \[0, 1\], got 1.5"),
            ((0, float("nan"), 1.0, 10), r"loss_rate must be a finite number"),
            ((0, "0.1", 1.0, 10), r"loss_rate must be a finite number"),
            ((0, 0.1, 0.5, 10), r"mean_burst must be a finite number in \[1, 1000\]"),
            ((0, 0.1, 1000.5, 10), r"mean_burst must be"),
            ((0, 0.1, float("inf"), 10), r"mean_burst must be"),
            ((0, 0.1, 1.0, 65536), r"window must be an integer in 0..65535, got 65536"),
            ((0, 0.1, 1.0, -1), r"window must be an integer in 0..65535"),
        ]
        for args, msg in bad:
            with self.assertRaisesRegex(ValueError, msg):
                largesc.build_feedback(*args)
        for f in (largesc.parse_feedback_packet, largesc.packet_kind):
            with self.assertRaisesRegex(ValueError, r"data must be bytes or a bytearray"):
                f("not bytes")

    def test_parse_feedback_takes_both_forms(self):
        self.assertEqual(parse_feedback(report(0.25, 2.5, 125)), (0.25, 2.5, 125))
        got = parse_feedback(pdu(bytes.fromhex(VECTORS[1][1])))
        self.assertEqual(got, (16384 / 65535, 2.5, 125))
        self.assertEqual(parse_feedback(pdu(bytes.fromhex(VECTORS[1][1]), pmt.PMT_NIL)), got)
        self.assertEqual(parse_feedback(pdu(bytes.fromhex("07 80 40 00 00 a0 00 7d 25 68"))),
                         "feedback packet: bad_crc")
        self.assertEqual(parse_feedback(pdu(voice_packets(1)[0])), "feedback packet: not_feedback")
        # the existing checks stay
        self.assertEqual(parse_feedback(pmt.intern("x")), "not a dict or a PDU with a dict")
        self.assertEqual(parse_feedback(pdu(b"", pmt.intern("meta"))), "not a dict or a PDU with a dict")
        self.assertEqual(parse_feedback(pdu(b"")), "loss_rate must be a finite number in [0, 1]")
        self.assertEqual(parse_feedback(report(1.5, 1.0)), "loss_rate must be a finite number in [0, 1]")


class qa_feedback_blocks(gr_unittest.TestCase):

    def run_sorter(self, msgs, ctl=None, stamp_time=True):
        """Posts msgs into a packet_sorter (feedback -> ctl if given); returns
        (sorter, voice PDUs, feedback PDUs)."""
        tb = gr.top_block()
        srt = largesc.packet_sorter(stamp_time)
        voice, fb = blocks.message_debug(), blocks.message_debug()
        tb.msg_connect((srt, "voice"), (voice, "store"))
        tb.msg_connect((srt, "feedback"), (fb, "store"))
        if ctl is not None:
            tb.msg_connect((srt, "feedback"), (ctl, "feedback"))
        tb.start()
        post_paced(srt, "in", msgs, lambda: srt.counters()["packets_in"])
        n = len(msgs)
        wait_for(lambda: (lambda c: c["voice_out"] + c["feedback_out"] + c["rejected"] == n)(srt.counters()),
                 20, "sorter stalled")
        wait_for(lambda: voice.num_messages() + fb.num_messages() == n - srt.counters()["rejected"], 20, "lost")
        if ctl is not None:
            wait_for(lambda: ctl.feedback_in() == fb.num_messages(), 20, "controller stalled")
        tb.stop()
        tb.wait()
        c = srt.counters()
        self.assertEqual(c["packets_in"], n)
        self.assertEqual(c["packets_in"], c["voice_out"] + c["feedback_out"] + c["rejected"])
        self.assertEqual(c["rejected"], sum(srt.rejections().values()))
        return (srt, [voice.get_message(i) for i in range(voice.num_messages())],
                [fb.get_message(i) for i in range(fb.num_messages())])

    def encode(self, reports, first_seq=0, copies=1):
        """Posts reports into a feedback_encoder; returns (encoder, packet PDUs)."""
        tb = gr.top_block()
        enc = largesc.feedback_encoder(first_seq, copies)
        sink = blocks.message_debug()
        tb.msg_connect((enc, "out"), (sink, "store"))
        tb.start()
        post_paced(enc, "in", reports, enc.reports_in)
        wait_for(lambda: enc.reports_out() + enc.reports_rejected() == len(reports), 20, "encoder stalled")
        wait_for(lambda: sink.num_messages() == enc.packets_out(), 20, "output lost")
        tb.stop()
        tb.wait()
        self.assertEqual(enc.reports_in(), len(reports))
        return enc, [sink.get_message(i) for i in range(sink.num_messages())]

    def test_encoder_numbers_its_reports(self):
        enc, out = self.encode([report(0.25, 2.5, 125), report(0.0, 0.0, 0), pmt.intern("junk"),
                                report(0.5, 1.0, 10 ** 6), report(2.0, 1.0)], first_seq=254)
        self.assertEqual(enc.packets_out(), 3)
        self.assertEqual(enc.reports_rejected(), 2)
        self.assertEqual(sum(enc.rejections().values()), 2)
        got = [bytes(pmt.u8vector_elements(pmt.cdr(m))) for m in out]
        self.assertEqual(got[0], bytes.fromhex("fe 80 40 00 00 a0 00 7d") + got[0][8:])
        self.assertEqual(largesc.parse_feedback_packet(got[0]),
                         ("ok", {"seq": 254, "loss_rate": 16384 / 65535, "mean_burst": 2.5, "window": 125}))
        # burst 0 (none measured) goes as 1; a window past 65535 as 65535; seq wraps
        self.assertEqual(largesc.parse_feedback_packet(got[1])[1]["mean_burst"], 1.0)
        self.assertEqual(largesc.parse_feedback_packet(got[1])[1]["seq"], 255)
        self.assertEqual(largesc.parse_feedback_packet(got[2])[1]["window"], 65535)
        self.assertEqual(largesc.parse_feedback_packet(got[2])[1]["seq"], 0)
        self.assertEqual([pmt.to_long(pmt.dict_ref(pmt.car(m), pmt.intern("feedback_seq"), pmt.PMT_NIL))
                          for m in out], [254, 255, 0])

    def test_sorter_sorts_counts_and_numbers(self):
        v = voice_packets(4)
        f = [largesc.build_feedback(s, 0.1 * s, 1.0 + s, 100) for s in (0, 1, 3, 2)]
        msgs = [pdu(v[0]), pdu(f[0]), pdu(f[0]), pdu(v[1]), pdu(f[1]), pdu(f[2]), pdu(f[3]),
                pdu(b"\x00\xc0junk"), pdu(b"\x01"), pmt.intern("x"), pdu(v[2] + b"\x00"),
                pdu(bytes.fromhex("07 80 40 00 00 a0 00 7d 25 68"))]
        srt, voice, fb = self.run_sorter(msgs)
        c = srt.counters()
        self.assertEqual((c["voice_out"], c["feedback_out"], c["rejected"]), (3, 4, 5))
        self.assertEqual((c["reports_lost"], c["reordered"]), (1, 1))
        self.assertEqual(srt.rejections(), {"feedback: duplicate": 1, "unknown_kind": 2, "not_pdu": 1,
                                            "feedback: bad_crc": 1})
        self.assertTrue(pmt.equal(pmt.cdr(voice[0]), pmt.cdr(msgs[0])))   # bytes unchanged
        self.assertEqual(bytes(pmt.u8vector_elements(pmt.cdr(voice[2]))), v[2] + b"\x00")
        for m, s in zip(fb, (0, 1, 3, 2)):
            self.assertEqual(report_of(m), (round(0.1 * s * 65535) / 65535, 1.0 + s, 100))
            self.assertEqual(parse_feedback(m), report_of(m))

    def test_sorter_stamps_arrival_time(self):
        """Voice PDUs get rx_time (host monotonic seconds, non-decreasing) unless they carry
        one; stamp_time False passes them unchanged; feedback reports carry no rx_time."""
        v = voice_packets(3)
        own = pmt.cons(pmt.dict_add(pmt.make_dict(), pmt.intern("rx_time"), pmt.from_double(12.5)),
                       pmt.init_u8vector(len(v[2]), list(v[2])))
        msgs = [pdu(v[0]), pdu(v[1]), own, pdu(largesc.build_feedback(0, 0.1, 1.0, 100))]
        t0 = time.monotonic()
        _, voice, fb = self.run_sorter(msgs)
        t1 = time.monotonic()
        times = [pmt.to_double(pmt.dict_ref(pmt.car(m), pmt.intern("rx_time"), pmt.PMT_NIL)) for m in voice]
        self.assertTrue(t0 <= times[0] <= times[1] <= t1, times)
        self.assertEqual(times[2], 12.5)
        self.assertFalse(pmt.dict_has_key(pmt.car(fb[0]), pmt.intern("rx_time")))
        _, voice, _ = self.run_sorter(msgs, stamp_time=False)
        for m, want in zip(voice, msgs):
            self.assertTrue(pmt.equal(m, want))

    def test_encoder_sends_copies_and_the_sorter_passes_one(self):
        enc, out = self.encode([report(0.25, 2.5, 125), report(0.5, 1.0, 50)], copies=2)
        self.assertEqual((enc.reports_out(), enc.packets_out()), (2, 4))
        got = [bytes(pmt.u8vector_elements(pmt.cdr(m))) for m in out]
        self.assertEqual((got[0] == got[1], got[2] == got[3], got[1] == got[2]), (True, True, False))
        srt, _, fb = self.run_sorter([pdu(b) for b in got])
        self.assertEqual([report_of(m)[2] for m in fb], [125, 50])
        self.assertEqual(srt.rejections(), {"feedback: duplicate": 2})
        self.assertEqual(largesc.feedback_encoder().copies, 2)   # the default

    def test_parameters(self):
        for bad in ("yes", 2, None):
            with self.assertRaisesRegex(ValueError, "stamp_time must be a boolean"):
                largesc.packet_sorter(bad)
        for bad in (-1, 256, 1.5, True, "0"):
            with self.assertRaisesRegex(ValueError, "first_seq must be an integer in 0..255"):
                largesc.feedback_encoder(bad)
        for bad in (0, 5, "2"):
            with self.assertRaisesRegex(ValueError, "copies must be an integer in 1..4"):
                largesc.feedback_encoder(0, bad)

    def test_controller_takes_a_feedback_packet_pdu(self):
        ctl = largesc.adaptive_controller(loss_rate=0.1, mean_burst=1.0)
        tb = gr.top_block()
        tb.msg_connect((ctl, "out"), (blocks.message_debug(), "store"))
        tb.start()
        for i, m in enumerate([pdu(largesc.build_feedback(9, 0.3, 4.0, 50)),
                               pdu(bytes.fromhex("07 80 40 00 00 a0 00 7d 25 68"))]):
            ctl.to_basic_block()._post(pmt.intern("feedback"), m)
            wait_for(lambda: ctl.feedback_in() == i + 1, 10, "feedback not handled")
        tb.stop()
        tb.wait()
        self.assertAlmostEqual(ctl.loss_rate(), 0.3, delta=1e-4)
        self.assertEqual(ctl.mean_burst(), 4.0)
        self.assertEqual(ctl.feedback_rejected(), 1)
        self.assertEqual(ctl.rejections(), {"feedback: rejected": 1})


class qa_feedback_link(gr_unittest.TestCase):

    def receiver_reports(self, n_frames=300):
        """Voice packets with a loss rate that changes every 50 frames through a
        uep_depacketizer whose feedback feeds a feedback_encoder: (dict reports,
        feedback packet PDUs)."""
        v = voice_packets(n_frames)
        kept = [p for i, p in enumerate(v) if (i % 50) % (2 + i // 50) != 0 or i < 2]
        tb = gr.top_block()
        dpk = largesc.uep_depacketizer(0, 8, 25, 25, True)
        enc = largesc.feedback_encoder(copies=1)   # one packet per report: the pairing below
        dicts, pkts = blocks.message_debug(), blocks.message_debug()
        tb.msg_connect((dpk, "feedback"), (enc, "in"))
        tb.msg_connect((dpk, "feedback"), (dicts, "store"))
        tb.msg_connect((enc, "out"), (pkts, "store"))
        tb.start()
        post_paced(dpk, "in", [pdu(p) for p in kept], dpk.packets_in)
        wait_for(lambda: dpk.packets_in() == len(kept), 20, "depacketizer stalled")
        wait_for(lambda: pkts.num_messages() == dicts.num_messages() == enc.reports_in(), 20, "encoder stalled")
        tb.stop()
        tb.wait()
        self.assertEqual(enc.reports_rejected(), 0)
        return ([dicts.get_message(i) for i in range(dicts.num_messages())],
                [pkts.get_message(i) for i in range(pkts.num_messages())])

    def test_depacketizer_to_controller_over_packets(self):
        dicts, fb_pkts = self.receiver_reports()
        self.assertGreaterEqual(len(fb_pkts), 10)
        # on air: voice and feedback packets interleaved, plus junk
        voice = voice_packets(40, seed=8)
        msgs, rng, n_voice = [], np.random.default_rng(2), 0
        for i, f in enumerate(fb_pkts):
            junk = rng.integers(0, 256, int(rng.integers(0, 20))).astype(np.uint8).tobytes()
            n_voice += len(voice[i * 3:i * 3 + 3]) + (largesc.packet_kind(junk) == "voice")
            msgs += [pdu(p) for p in voice[i * 3:i * 3 + 3]] + [f, pdu(junk)]
        ctl = largesc.adaptive_controller(loss_rate=0.1, mean_burst=1.0)
        srt, v_out, f_out = self.run_sorter(msgs, ctl)
        self.assertEqual(len(f_out), len(fb_pkts))
        self.assertEqual(len(v_out), n_voice)
        self.assertEqual(srt.counters()["rejected"], len(fb_pkts) - (n_voice - min(3 * len(fb_pkts), 40)))
        self.assertEqual(ctl.feedback_in(), len(fb_pkts))
        self.assertEqual(ctl.feedback_rejected(), 0)
        for d, m in zip(dicts, f_out):
            want, got = report_of(d), report_of(m)
            self.assertAlmostEqual(got[0], want[0], delta=0.5 / 65535)
            self.assertAlmostEqual(got[1], want[1], delta=0.5 / 64)
            self.assertEqual(got[2], want[2])
        # the controller's estimate follows the last report (clamped as it clamps)
        last = report_of(dicts[-1])
        self.assertAlmostEqual(ctl.loss_rate(), min(last[0], 0.95), delta=0.5 / 65535)
        self.assertGreater(last[0], 0.1)

    def test_controller_follows_each_report(self):
        ctl = largesc.adaptive_controller(loss_rate=0.1, mean_burst=1.0)
        tb = gr.top_block()
        srt = largesc.packet_sorter()
        tb.msg_connect((srt, "feedback"), (ctl, "feedback"))
        tb.start()
        for i, (loss, burst) in enumerate([(0.02, 1.0), (0.2, 3.0), (0.5, 7.5), (0.05, 1.25)]):
            srt.to_basic_block()._post(pmt.intern("in"), pdu(largesc.build_feedback(i, loss, burst, 125)))
            wait_for(lambda: ctl.feedback_in() == i + 1, 10, "feedback not handled")
            self.assertAlmostEqual(ctl.loss_rate(), loss, delta=0.5 / 65535)
            self.assertEqual(ctl.mean_burst(), max(burst, 1.0, loss / (1 - loss)))
        tb.stop()
        tb.wait()

    run_sorter = qa_feedback_blocks.run_sorter


class qa_feedback_hostile(gr_unittest.TestCase):

    run_sorter = qa_feedback_blocks.run_sorter

    def hostile(self, rng):
        """Non-PDUs, wrong vectors, truncated and corrupted packets, random junk."""
        good = largesc.build_feedback(3, 0.2, 2.0, 100)
        v = voice_packets(1)[0]
        out = [pmt.PMT_NIL, pmt.intern("x"), pmt.from_long(3), pmt.make_dict(), pmt.cons(pmt.PMT_NIL, pmt.PMT_NIL),
               pmt.cons(pmt.make_dict(), pmt.init_u16vector(3, [1, 2, 3])),
               pmt.cons(pmt.make_dict(), pmt.init_f32vector(2, [0.0, 1.0])),
               pmt.init_u8vector(10, list(good)), report(0.2, 2.0)]
        out += [pdu(good[:n]) for n in range(10)]
        out += [pdu(good[:i] + bytes([good[i] ^ 0x10]) + good[i + 1:]) for i in range(2, 10)]
        for _ in range(1000):
            n = int(rng.integers(0, 24))
            b = rng.integers(0, 256, n).astype(np.uint8).tobytes()
            if n >= 2:        # never a voice header: that is the depacketizer's to judge
                b = b[:1] + bytes([b[1] & 0x3F | rng.choice([0x00, 0x80, 0xC0])]) + b[2:]
            out.append(pdu(b))
        return out, v

    def test_hostile_input_then_valid_traffic(self):
        junk, v = self.hostile(np.random.default_rng(11))
        valid_fb = [largesc.build_feedback(s, 0.01 * s, 1.0 + s, 50) for s in range(10, 15)]
        msgs = junk + [pdu(v)] + [pdu(f) for f in valid_fb]
        ctl = largesc.adaptive_controller(loss_rate=0.1, mean_burst=1.0)
        srt, v_out, f_out = self.run_sorter(msgs, ctl)
        c = srt.counters()
        self.assertEqual(c["voice_out"], 1)
        self.assertTrue(pmt.equal(pmt.cdr(v_out[0]), pmt.cdr(pdu(v))))  # bytes unchanged (rx_time added)
        # random feedback-kind junk almost never passes a CRC-16; valid traffic all does
        self.assertGreaterEqual(c["feedback_out"], len(valid_fb))
        self.assertLessEqual(c["feedback_out"], len(valid_fb) + 2)
        self.assertEqual([report_of(m) for m in f_out[-5:]],
                         [(round(0.01 * s * 65535) / 65535, 1.0 + s, 50) for s in range(10, 15)])
        self.assertGreaterEqual(c["rejected"], len(junk) - 2)
        self.assertEqual(ctl.feedback_in(), c["feedback_out"])
        self.assertAlmostEqual(ctl.loss_rate(), 0.14, delta=0.5 / 65535)
        for reason in ("not_pdu", "unknown_kind", "feedback: bad_length", "feedback: bad_crc"):
            self.assertGreater(srt.rejections().get(reason, 0), 0, reason)


if __name__ == "__main__":
    gr_unittest.run(qa_feedback_core)   # runs every TestCase of this file
