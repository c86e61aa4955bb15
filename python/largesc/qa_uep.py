#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the UEP packet format, the packetizer/depacketizer cores and blocks,
and the token-level simulation."""

import random
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc.common.pacing import post_paced, wait_for


def random_frames(n, n_q, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2048, size=(n, n_q))


X = None  # a token that did not arrive (expected value 0, mask 0)


def labelled_frames(n, n_q):
    """Token c of frame f is 100 f + c: every token names its frame and codebook."""
    return np.array([[100 * f + c for c in range(n_q)] for f in range(n)])


def run_core(frames, plans, lost=None, delay=2, crc=False, default_n_q=8):
    """frames [N, n_q]; plans list of (k, r1, r2) per frame -> (list of rx frames, core)."""
    tx = largesc.packetizer_core(crc)
    rx = largesc.depacketizer_core(delay, default_n_q)
    for f, (tok, (k, r1, r2)) in enumerate(zip(frames, plans)):
        pkt = tx.packetize(f, tok, k, r1, r2)
        if lost is None or not lost[f]:
            assert rx.push(pkt) == "ok"
    rx.flush()
    return rx.pop(), rx


def depacketize_in_flowgraph(msgs):
    """Posts msgs into a running uep_depacketizer (delay 1, no feedback), flushes it and waits
    until every frame it played out has arrived; returns (block, message_debug sink)."""
    tb = gr.top_block()
    dpk = largesc.uep_depacketizer(1, 8, 125, 0, False)
    sink = blocks.message_debug()
    tb.msg_connect((dpk, "out"), (sink, "store"))
    tb.start()
    try:
        post_paced(dpk, "in", msgs, dpk.packets_in)
        wait_for(lambda: dpk.packets_in() == len(msgs), 20, "depacketizer stalled")
        dpk.flush()
        wait_for(lambda: sink.num_messages() == dpk.frames_out(), 20, "frames not delivered")
    finally:
        tb.stop()
        tb.wait()
    return dpk, sink


class qa_packet_format(gr_unittest.TestCase):

    def test_vector_no_copies(self):
        # seq 5, K=2, no copies, no CRC: tokens 0x7FF, 0x001
        h = largesc.packet_header(seq=5, crc=False, k=2)
        b = largesc.build_packet(h, [0x7FF, 0x001])
        self.assertEqual(b.hex(), "05" + "41" + "00" + "ffe004")

    def test_vector_with_copies_and_crc(self):
        h = largesc.packet_header(seq=255, crc=True, k=4, r1=2, r2=1)
        toks = [1, 2, 3, 4, 5, 6, 7]
        b = largesc.build_packet(h, toks)
        # header: ff, 01 1 00011 = 0x63, r1=2 r2=1 -> 0x21
        self.assertEqual(b[:3].hex(), "ff6321")
        self.assertEqual(len(b), 3 + (7 * 11 + 7) // 8 + 2)
        body = b[3:-2]
        bits = "".join(f"{x:08b}" for x in body)
        self.assertEqual([int(bits[i * 11:(i + 1) * 11], 2) for i in range(7)], toks)
        # the literal bytes of docs/packet_format.md (CRC trailer ce e9 included),
        # computed independently of this code
        self.assertEqual(b.hex(), "ff6321002008018040" "0a018038" "cee9")
        st, hh, tt = largesc.parse_packet(b)
        self.assertEqual(st, "ok")
        self.assertEqual((hh.seq, hh.crc, hh.k, hh.r1, hh.r2), (255, True, 4, 2, 1))
        np.testing.assert_array_equal(tt, toks)

    def test_crc_check_values(self):
        """The documented variants, against fixed values (not against the code):
        CRC-16/CCITT-FALSE (IBM-3740) poly 0x1021 init 0xFFFF, CRC-8/SMBUS poly
        0x07 init 0x00, both unreflected with no final XOR."""
        self.assertEqual(largesc.crc16(b"123456789"), 0x29B1)  # catalogue check value
        self.assertEqual(largesc.crc16(b""), 0xFFFF)           # the init value itself
        self.assertEqual(largesc.crc16(b"A"), 0xB915)
        self.assertEqual(largesc.crc16(b"\x00"), 0xE1F0)
        self.assertEqual(largesc.crc16(b"\xff\xff"), 0x0000)
        self.assertEqual(largesc.crc8(b"123456789"), 0xF4)     # catalogue check value
        self.assertEqual(largesc.crc8(b""), 0x00)
        self.assertEqual(largesc.crc8(b"A"), 0xC0)
        self.assertEqual(largesc.crc8(b"\xff\xff"), 0x24)

    def test_vectors_from_the_spec(self):
        """The three test vectors of docs/packet_format.md, literal bytes: built,
        parsed back, and (the third) made by the packetizer from two frames."""
        vectors = (
            (dict(seq=5, crc=False, k=2), [2047, 1], "05 41 00 ff e0 04"),
            (dict(seq=255, crc=True, k=4, r1=2, r2=1), [1, 2, 3, 4, 5, 6, 7],
             "ff 63 21 00 20 08 01 80 40 0a 01 80 38 ce e9"),
            (dict(seq=17, crc=False, k=8, r1=3), list(range(100, 111)),
             "11 47 30 0c 81 94 33 06 70 d0 1a 43 50 6b 0d 81 b4 37 00"),
        )
        for hdr, toks, want in vectors:
            with self.subTest(hdr=hdr):
                want = bytes.fromhex(want)
                self.assertEqual(largesc.build_packet(largesc.packet_header(**hdr), toks), want)
                st, h, t = largesc.parse_packet(want)
                self.assertEqual(st, "ok")
                self.assertEqual((h.seq, h.crc, h.k, h.r1, h.r2),
                                 (hdr["seq"], hdr["crc"], hdr["k"], hdr.get("r1", 0), hdr.get("r2", 0)))
                self.assertEqual(list(t), toks)
        # frame 16 = 108, 109, 110, ...; frame 17 = 100 .. 107, plan K 8 r1 3
        tx = largesc.packetizer_core(False)
        tx.packetize(16, [108, 109, 110, 1, 2, 3, 4, 5], 8)
        self.assertEqual(tx.packetize(17, list(range(100, 108)), 8, 3, 0),
                         bytes.fromhex(vectors[2][2]))

    def test_invalid_vectors_from_the_spec(self):
        """The invalid packets of docs/packet_format.md, literal bytes: the reason
        parse_packet gives and the counter the depacketizer increments."""
        vectors = (("05 41", False, "too_short"), ("05 c1 00 ff e0 04", False, "bad_version"),
                   ("05 41 00 ff e0", False, "bad_length"), ("05 41 00 ff e0 04 00", False, "bad_length"),
                   ("05 41 00 ff e0 05", False, "bad_padding"),
                   ("ff 63 21 00 20 08 01 80 40 0a 01 80 38 ce e8", False, "bad_crc"),
                   ("ff 43 21 00 20 08 01 80 40 0a 01 80 38 ce e9", False, "bad_length"),
                   ("05 41 00 ff e0 04", True, "bad_crc"))
        for hexs, require_crc, why in vectors:
            with self.subTest(bytes=hexs, require_crc=require_crc):
                b = bytes.fromhex(hexs)
                if not require_crc:
                    self.assertEqual(largesc.parse_packet(b)[0], why)
                rx = largesc.depacketizer_core(1, 8, 125, 32, require_crc)
                self.assertEqual(rx.push(b), why)
                c = rx.counters()
                self.assertEqual((c[why], c["malformed"], c["packets_in"], c["frames_out"]), (1, 1, 1, 0))

    def test_parse_rejects(self):
        good = largesc.build_packet(largesc.packet_header(seq=1, crc=True, k=3), [1, 2, 3])
        self.assertEqual(largesc.parse_packet(good[:2])[0], "too_short")
        self.assertEqual(largesc.parse_packet(good[:-1])[0], "bad_length")
        self.assertEqual(largesc.parse_packet(good + b"\0")[0], "bad_length")
        bad_ver = bytes([good[0], good[1] & 0x3F]) + good[2:]
        self.assertEqual(largesc.parse_packet(bad_ver)[0], "bad_version")
        flipped = bytearray(good)
        flipped[4] ^= 0x10
        self.assertEqual(largesc.parse_packet(bytes(flipped))[0], "bad_crc")
        nocrc = largesc.build_packet(largesc.packet_header(seq=1, k=1), [5])
        pad = bytearray(nocrc)
        pad[-1] |= 0x01  # 11 bits in 2 bytes: 5 padding bits must be zero
        self.assertEqual(largesc.parse_packet(bytes(pad))[0], "bad_padding")
        with self.assertRaisesRegex(ValueError, "11-bit"):
            largesc.build_packet(largesc.packet_header(k=1), [2048])
        with self.assertRaisesRegex(ValueError, "announces"):
            largesc.build_packet(largesc.packet_header(k=2), [1])

    def test_parse_header_alone(self):
        """largesc.parse_header reads the 3 header bytes of the spec's vectors
        (literal bytes) and nothing more: length, CRC and padding unchecked."""
        for hexs, want in (("05 41 00 ff e0 04", (5, False, 2, 0, 0)),
                           ("ff 63 21 00 20 08 01 80 40 0a 01 80 38 ce e8", (255, True, 4, 2, 1)),
                           ("05 41 00 ff e0", (5, False, 2, 0, 0)),           # bad_length for parse_packet
                           ("05 41 00", (5, False, 2, 0, 0))):               # header only
            with self.subTest(bytes=hexs):
                h = largesc.parse_header(bytes.fromhex(hexs))
                self.assertEqual((h.seq, h.crc, h.k, h.r1, h.r2), want)
        for hexs in ("05 41", "", "05 c1 00 ff e0 04", "05 01 00"):           # too short, version 3, 0
            with self.subTest(bytes=hexs):
                self.assertIsNone(largesc.parse_header(bytes.fromhex(hexs)))

    def test_sizes(self):
        for k in range(1, 33):
            for r1 in (0, 3, 15):
                for crc in (False, True):
                    h = largesc.packet_header(k=k, r1=r1, crc=crc)
                    self.assertEqual(largesc.packet_size(h),
                                     3 + (11 * (k + r1) + 7) // 8 + (2 if crc else 0))


class qa_uep_core(gr_unittest.TestCase):

    def test_no_loss_every_plan_bit_exact(self):
        """Every (K, r1, r2) the header can carry: tokens out == tokens in."""
        n_q = 32
        frames = random_frames(6, n_q, seed=1)
        for k in range(1, 33):
            for r1 in range(0, 16):
                for r2 in range(0, 16):
                    plans = [(k, r1, r2)] * len(frames)
                    out, rx = run_core(frames, plans, delay=2)
                    self.assertEqual([f["frame"] for f in out], list(range(6)))
                    for f, fr in zip(out, frames):
                        self.assertEqual(len(fr[:k]), k)
                        np.testing.assert_array_equal(f["tokens"][:k], fr[:k])
                        self.assertTrue(f["mask"][:k].all())
                        self.assertTrue(f["primary"])
                    self.assertEqual(rx.counters()["malformed"], 0)

    def test_copies_fill_lost_frames(self):
        frames = random_frames(10, 8, seed=2)
        plans = [(6, 3, 2)] * 10
        lost = [0, 0, 1, 0, 0, 1, 1, 0, 0, 0]
        out, rx = run_core(frames, plans, lost=lost, delay=2)
        self.assertEqual(len(out), 10)
        # frame 2 lost: copies from packet 3 (r1=3) and packet 4 (r2=2) -> 3 tokens
        f2 = out[2]
        self.assertFalse(f2["primary"])
        np.testing.assert_array_equal(f2["mask"], [1, 1, 1, 0, 0, 0])
        np.testing.assert_array_equal(f2["tokens"][:3], frames[2][:3])
        np.testing.assert_array_equal(f2["tokens"][3:], 0)
        # frame 5 lost, packet 6 lost, packet 7 carries r2=2 of frame 5
        np.testing.assert_array_equal(out[5]["mask"], [1, 1, 0, 0, 0, 0])
        # frame 6 lost: packet 7 carries r1=3
        np.testing.assert_array_equal(out[6]["mask"], [1, 1, 1, 0, 0, 0])
        self.assertEqual(rx.counters()["frames_primary"], 7)

    def test_copy_offset_1(self):
        """r1 copies: packet n carries frame n-1's first r1 codebooks, right after
        frame n's K; they fill frame n-1 if its own packet was lost."""
        frames = labelled_frames(9, 4)
        tx = largesc.packetizer_core(False)
        pk = [tx.packetize(f, frames[f], 4, 3, 0) for f in range(9)]
        st, h, t = largesc.parse_packet(pk[4])
        self.assertEqual((st, h.k, h.r1, h.r2), ("ok", 4, 3, 0))
        self.assertEqual(list(t), [400, 401, 402, 403, 300, 301, 302])
        self.assertEqual(list(largesc.parse_packet(pk[0])[2]), [0, 1, 2, 3])  # nothing to copy yet
        out, rx = run_core(frames, [(4, 3, 0)] * 9, lost=[0, 0, 0, 1, 0, 1, 1, 0, 0],
                           delay=1, default_n_q=4)
        want = {3: [300, 301, 302, X],   # from packet 4
                5: [X, X, X, X],         # packet 6 (its r1 copy) lost too, no r2
                6: [600, 601, 602, X]}   # from packet 7
        self.assert_frames(out, frames, want)
        self.assertEqual(rx.counters()["tokens_from_copies"], 6)

    def test_copy_offset_2(self):
        """r2 copies: packet n carries frame n-2's first r2 codebooks; they fill
        frame n-2 only with a playout delay of 2."""
        frames = labelled_frames(9, 4)
        tx = largesc.packetizer_core(False)
        pk = [tx.packetize(f, frames[f], 4, 0, 2) for f in range(9)]
        st, h, t = largesc.parse_packet(pk[5])
        self.assertEqual((st, h.k, h.r1, h.r2), ("ok", 4, 0, 2))
        self.assertEqual(pk[5][2], 0x02)
        self.assertEqual(list(t), [500, 501, 502, 503, 300, 301])
        self.assertEqual(list(largesc.parse_packet(pk[1])[2]), [100, 101, 102, 103])  # no frame -1
        lost = [0, 0, 0, 1, 1, 0, 1, 0, 0]
        out, rx = run_core(frames, [(4, 0, 2)] * 9, lost=lost, delay=2, default_n_q=4)
        self.assert_frames(out, frames, {3: [300, 301, X, X],   # from packet 5
                                         4: [X, X, X, X],       # packet 6 lost
                                         6: [600, 601, X, X]})  # from packet 8
        self.assertEqual(rx.counters()["tokens_from_copies"], 4)
        # delay 1: frame n is played out when a packet of frame n + 1 or later
        # arrives, so an r2 copy fills it only if packet n + 1 was lost as well
        out, rx = run_core(frames, [(4, 0, 2)] * 9, lost=lost, delay=1, default_n_q=4)
        self.assert_frames(out, frames, {3: [300, 301, X, X],  # packet 4 lost: still waiting
                                         4: [X] * 4,
                                         6: [X] * 4})          # played when packet 7 came
        self.assertEqual(rx.counters()["tokens_from_copies"], 2)

    def test_copy_offsets_1_and_2_together(self):
        """Payload order is frame n, then n-1 (r1), then n-2 (r2)."""
        frames = labelled_frames(8, 4)
        tx = largesc.packetizer_core(False)
        pk = [tx.packetize(f, frames[f], 3, 2, 1) for f in range(8)]
        self.assertEqual(list(largesc.parse_packet(pk[5])[2]), [500, 501, 502, 400, 401, 300])
        self.assertEqual(list(largesc.parse_packet(pk[1])[2]), [100, 101, 102, 0, 1])
        out, rx = run_core(frames, [(3, 2, 1)] * 8, lost=[0, 0, 0, 1, 1, 0, 0, 0],
                           delay=2, default_n_q=4)
        self.assert_frames(out, frames, {3: [300, X, X],         # r2 of packet 5
                                         4: [400, 401, X]}, k=3)  # r1 of packet 5
        self.assertEqual(rx.counters()["tokens_from_copies"], 3)

    def test_first_packet_plays_out_the_frames_its_copies_reach(self):
        """The receiver starts at the oldest frame the first packet it hears has
        tokens of: with r2 > 0 that is frame seq - 2, even when r1 is also > 0."""
        frames = labelled_frames(6, 4)
        # plan, lost, delay, {frame: tokens} of the non-primary frames, first frame played
        cases = (
            ((4, 2, 2), [1, 1, 0, 0, 0, 0], 2, {0: [0, 1, X, X], 1: [100, 101, X, X]}, 0),
            ((4, 0, 3), [1, 1, 0, 0, 0, 0], 2, {0: [0, 1, 2, X], 1: [100, 101, 102, X]}, 0),
            ((4, 2, 0), [1, 0, 0, 0, 0, 0], 1, {0: [0, 1, X, X]}, 0),
            ((4, 2, 0), [1, 1, 0, 0, 0, 0], 2, {1: [100, 101, X, X]}, 1),
            ((4, 0, 0), [1, 1, 0, 0, 0, 0], 2, {}, 2),
        )
        for plan, lost, delay, want, first in cases:
            with self.subTest(plan=plan, lost=lost):
                out, _ = run_core(frames, [plan] * 6, lost=lost, delay=delay, default_n_q=4)
                self.assert_frames(out, frames, want, first=first)

    def assert_frames(self, out, frames, want, k=4, first=0):
        """out holds frames first..len(frames)-1 in order; those in want (frame ->
        expected tokens, X = missing) are non-primary with exactly those tokens,
        every other frame is its own K tokens, complete."""
        self.assertEqual([f["frame"] for f in out], list(range(first, len(frames))))
        for f in out:
            n = f["frame"]
            if n in want:
                self.assertFalse(f["primary"], f"frame {n}")
                np.testing.assert_array_equal(f["tokens"], [0 if t is X else t for t in want[n]],
                                              err_msg=f"frame {n}")
                np.testing.assert_array_equal(f["mask"], [t is not X for t in want[n]],
                                              err_msg=f"frame {n}")
            else:
                self.assertTrue(f["primary"], f"frame {n}")
                np.testing.assert_array_equal(f["tokens"], frames[n][:k], err_msg=f"frame {n}")
                self.assertTrue(f["mask"].all(), f"frame {n}")

    def test_core_matches_token_level_simulation(self):
        n, n_q = 3000, 16
        rng = np.random.default_rng(3)
        frames = random_frames(n, n_q, seed=3)
        k = rng.integers(1, n_q + 1, size=n).astype(np.int32)
        copies = rng.integers(0, 8, size=(n, 2)).astype(np.int32)
        lost = largesc.loss_model.gilbert_elliott_mean(0.3, 3.0, 5).pattern(n)
        lost[0] = 0  # the receiver starts at the first packet it hears
        plans = list(zip(k, copies[:, 0], copies[:, 1]))
        out, _ = run_core(frames, plans, lost=lost, delay=2, default_n_q=n_q)
        sim = largesc.simulate_uep(k, np.minimum(copies, n_q), lost, n_q)
        # copies of frames before 0 do not exist; the packetizer clips r_d to what it has
        sim_first = sim.copy()
        self.assertEqual(len(out), n)
        for f in out:
            m = np.zeros(n_q, np.uint8)
            m[:len(f["mask"])] = f["mask"]
            np.testing.assert_array_equal(m, sim_first[f["frame"]], err_msg=f"frame {f['frame']}")

    def test_sequence_wraparound(self):
        frames = random_frames(1000, 4, seed=4)
        out, _rx = run_core(frames, [(4, 1, 0)] * 1000, delay=1)
        self.assertEqual([f["frame"] for f in out], list(range(1000)))
        self.assertTrue(all(f["primary"] for f in out))

    def test_long_gap_and_wraparound(self):
        # 100 packets lost in a row across a seq wrap
        frames = random_frames(400, 4, seed=5)
        lost = np.zeros(400, np.uint8)
        lost[200:300] = 1
        out, _rx = run_core(frames, [(4, 0, 0)] * 400, lost=lost, delay=1)
        self.assertEqual([f["frame"] for f in out], list(range(400)))
        self.assertEqual(sum(not f["mask"].any() for f in out), 100)

    def test_duplicates_reordering_late(self):
        tx = largesc.packetizer_core()
        frames = random_frames(8, 4, seed=6)
        pk = [tx.packetize(i, frames[i], 4, 1, 0) for i in range(8)]
        rx = largesc.depacketizer_core(delay=2)
        for i in (0, 2, 1, 1, 3, 4, 0, 5, 7, 6):  # 1 reordered + duplicate, 0 late, 6 after 7
            rx.push(pk[i])
        rx.flush()
        out = rx.pop()
        c = rx.counters()
        self.assertEqual([f["frame"] for f in out], list(range(8)))
        self.assertTrue(all(f["primary"] for f in out))
        self.assertEqual(c["duplicates"], 1)
        self.assertEqual(c["late"], 1)
        self.assertEqual(c["packets_in"], c["packets_accepted"] + c["duplicates"] + c["late"] + c["malformed"])

    def test_transmitter_restart(self):
        tx = largesc.packetizer_core()
        frames = random_frames(300, 4, seed=7)
        rx = largesc.depacketizer_core(delay=1)
        for i in range(100):
            rx.push(tx.packetize(i, frames[i], 4))
        tx2 = largesc.packetizer_core()  # restarts counting at 0
        for i in range(50):
            rx.push(tx2.packetize(i, frames[100 + i], 4))
        rx.flush()
        out = rx.pop()
        c = rx.counters()
        self.assertEqual(c["restarts"], 1)
        idx = [f["frame"] for f in out]
        self.assertEqual(idx, list(range(len(idx))))  # in order, no gaps, no repeats
        # after the restart, the new stream's tokens come out in order
        tail = [f for f in out if f["primary"]][-47:]
        for f, want in zip(tail, frames[103:150]):
            np.testing.assert_array_equal(f["tokens"], want)

    def test_corrupted_seq_without_crc(self):
        """One flipped bit in the seq of packet 10 (no CRC) costs at most frame 10
        (and, for bit 0, frame 11's tokens): the frames come out 0..29, each once,
        in order; no restart, no run of empty frames. Exact per bit."""
        frames = random_frames(30, 3, seed=21)
        tx = largesc.packetizer_core()
        pk = [tx.packetize(i, frames[i], 3) for i in range(30)]
        # bit -> (frames empty, frames with another frame's tokens, counters)
        want = {0: ([10], {11: 10}, dict(duplicates=1)),   # 10 -> 11: taken as 11, real 11 a duplicate
                1: ([10], {}, dict(late=1)),               # 10 -> 8: late
                2: ([10], {}, dict(bad_seq=1)),            # 10 -> 14: held, not confirmed
                3: ([10], {}, dict(late=1)),               # 10 -> 2
                4: ([10], {}, dict(bad_seq=1)),            # 10 -> 26
                5: ([10], {}, dict(bad_seq=1)),            # 10 -> 42
                6: ([10], {}, dict(bad_seq=1)),            # 10 -> 74 (the case)
                7: ([10], {}, dict(late=1))}               # 10 -> 138 = 127 behind
        for bit, (empty, moved, cnt) in want.items():
            with self.subTest(bit=bit):
                rx = largesc.depacketizer_core(delay=1)
                for i in range(30):
                    p = pk[i]
                    rx.push(bytes([p[0] ^ (1 << bit)]) + p[1:] if i == 10 else p)
                rx.flush()
                out = rx.pop()
                self.assertEqual([f["frame"] for f in out], list(range(30)))
                for f in out:
                    i = f["frame"]
                    if i in empty:
                        self.assertFalse(f["mask"].any())
                    else:
                        np.testing.assert_array_equal(f["tokens"], frames[moved.get(i, i)])
                c = rx.counters()
                full = dict(packets_in=30, packets_accepted=29,
                            duplicates=0, late=0, bad_seq=0, malformed=cnt.get("bad_seq", 0),
                            restarts=0, held=0, frames_out=30, frames_empty=len(empty))
                full.update(cnt)
                self.assertEqual({k: c[k] for k in full}, full)

    def test_jump_held_until_confirmed(self):
        """A packet more than 4 frames ahead is held (counted in 'held') until the
        next packet: one ahead of it confirms the jump (the gap comes out as lost
        frames); one behind it drops it as bad_seq; flush drops a held packet."""
        frames = random_frames(60, 2, seed=22)
        tx = largesc.packetizer_core()
        pk = [tx.packetize(i, frames[i], 2) for i in range(60)]
        rx = largesc.depacketizer_core(delay=1)
        for i in range(10):
            rx.push(pk[i])
        self.assertEqual([f["frame"] for f in rx.pop()], list(range(9)))
        rx.push(pk[14])                       # 5 ahead of 9: held, nothing emitted
        c = rx.counters()
        self.assertEqual((c["held"], c["frames_out"]), (1, 9))
        self.assertEqual(c["packets_in"], c["packets_accepted"] + c["duplicates"] + c["late"]
                         + c["malformed"] + c["held"])
        rx.push(pk[14])                       # the same frame again: a duplicate, still held
        self.assertEqual(rx.counters()["held"], 1)
        rx.push(pk[40])                       # 26 after the held one: confirms 14; 40 is held
        out = rx.pop()
        self.assertEqual([f["frame"] for f in out], list(range(9, 14)))
        self.assertEqual([bool(f["mask"].any()) for f in out], [True, False, False, False, False])
        rx.push(pk[41])                       # confirms 40
        out = rx.pop()
        self.assertEqual([f["frame"] for f in out], list(range(14, 41)))
        self.assertEqual([i for i, f in enumerate(out, 14) if f["mask"].any()], [14, 40])
        rx.push(pk[50])                       # held ...
        rx.push(pk[42])                       # ... and 8 behind it: dropped as bad_seq
        rx.push(pk[59])                       # held; flush drops it
        rx.flush()
        out = rx.pop()
        self.assertEqual([f["frame"] for f in out], [41, 42])
        c = rx.counters()
        self.assertEqual({k: c[k] for k in ("packets_in", "packets_accepted", "duplicates",
                                            "late", "malformed", "bad_seq", "held", "frames_out")},
                         dict(packets_in=17, packets_accepted=14, duplicates=1, late=0,
                              malformed=2, bad_seq=2, held=0, frames_out=43))

    def test_bad_parameters(self):
        with self.assertRaisesRegex(ValueError, "0..2"):
            largesc.depacketizer_core(delay=3)
        with self.assertRaisesRegex(ValueError, "1..32"):
            largesc.depacketizer_core(default_n_q=0)
        tx = largesc.packetizer_core()
        with self.assertRaisesRegex(ValueError, "1..n_q"):
            tx.packetize(0, [1, 2], 3)
        with self.assertRaisesRegex(ValueError, "11-bit"):
            tx.packetize(0, [1, 4000], 2)
        with self.assertRaisesRegex(ValueError, "1..32"):
            tx.packetize(0, list(range(33)), 2)
        # the binding refuses what a cast would silently change (issue 13)
        w = "packetizer_core.packetize: "
        for args, msg in (((-1, [1, 2], 2), "frame must be an integer in 0..2\\^64-1, got -1"),
                          ((2 ** 64, [1, 2], 2), "frame must be an integer in 0..2\\^64-1"),
                          ((float("nan"), [1, 2], 2), "frame must be an integer"),
                          ((0, [1.5, 2.0], 2), "tokens must be a 1-D sequence of integer tokens 0..2047"),
                          ((0, [[1, 2], [3, 4]], 2), "tokens must be a 1-D sequence"),
                          ((0, "ab", 2), "tokens must be a 1-D sequence"),
                          ((0, [], 1), "a token frame has 1..32 tokens, got 0"),
                          ((0, [1, 2], True), "k must be an integer in 0..32, got True"),
                          ((1, [1, 2], 2, -1), "r1 must be an integer in 0..32, got -1"),
                          ((2, [1, 2], 2, 0, 2.0), "r2 must be an integer in 0..32, got 2.0")):
            with self.subTest(args=args):
                with self.assertRaisesRegex(ValueError, w + msg):
                    tx.packetize(*args)
        # numpy integer arrays of any width and plain lists still work, identically
        self.assertEqual(tx.packetize(5, np.array([1, 2], np.uint16), 2), tx.packetize(5, [1, 2], 2))

    def test_fuzz_malformed_packets(self):
        """100,000 random, truncated, bit-flipped and replayed packets between valid
        ones (CRC on): no crash, counters add up, valid frames delivered exactly."""
        rnd = random.Random(8)
        n_valid = 2000
        frames = random_frames(n_valid, 8, seed=8)
        tx = largesc.packetizer_core(crc=True)
        valid = [tx.packetize(i, frames[i], 6, 2, 1) for i in range(n_valid)]
        rx = largesc.depacketizer_core(delay=2, require_crc=True)
        n_junk = 0
        kinds = {"random": 0, "truncated": 0, "flipped": 0, "replayed": 0}
        for i, pkt in enumerate(valid):
            for _ in range(50):
                kind = rnd.choice(list(kinds))
                kinds[kind] += 1
                if kind == "random":
                    j = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40)))
                elif kind == "truncated":
                    j = pkt[:rnd.randint(0, len(pkt) - 1)]
                elif kind == "flipped":
                    b = bytearray(pkt)
                    for _ in range(rnd.randint(1, 3)):
                        b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
                    j = bytes(b)
                else:  # an earlier valid packet again
                    j = valid[rnd.randint(max(0, i - 100), i)] if i else pkt
                rx.push(j)
                n_junk += 1
            rx.push(pkt)
        rx.flush()
        out = rx.pop()
        c = rx.counters()
        self.assertEqual(n_junk, 100_000)
        self.assertEqual(c["packets_in"], n_valid + n_junk)
        self.assertEqual(c["packets_in"], c["packets_accepted"] + c["duplicates"] + c["late"] + c["malformed"])
        self.assertEqual(c["packets_accepted"], n_valid)
        self.assertEqual([f["frame"] for f in out], list(range(n_valid)))
        for f, want in zip(out, frames):
            np.testing.assert_array_equal(f["tokens"], want[:6])
            self.assertTrue(f["mask"].all())
        self.assertGreater(c["bad_crc"], 0)
        self.assertGreater(c["duplicates"] + c["late"], 0)

    def test_run_packet_path_matches_simulation(self):
        n, n_q = 20000, 12
        rng = np.random.default_rng(11)
        tok = rng.integers(0, 2048, size=(n, n_q)).astype(np.uint16)
        k = rng.integers(1, n_q + 1, size=n).astype(np.int32)
        copies = rng.integers(0, 6, size=(n, 2)).astype(np.int32)
        for model in (largesc.loss_model.bernoulli(0.2, 1),
                      largesc.loss_model.gilbert_elliott_mean(0.2, 3.0, 2)):
            lost = model.pattern(n)
            lost[0] = 0
            out, mask, nbytes = largesc.run_packet_path(tok, k, copies, lost, 2, True)
            np.testing.assert_array_equal(mask, largesc.simulate_uep(k, copies, lost, 32))
            got = np.where(mask[:, :n_q] == 1, out[:, :n_q], 0)
            np.testing.assert_array_equal(got, np.where(mask[:, :n_q] == 1, tok, 0))
            hdr_crc = 5 * n
            payload = sum((11 * (k[f] + (min(copies[f, 0], n_q) if f >= 1 else 0)
                                 + (min(copies[f, 1], n_q) if f >= 2 else 0)) + 7) // 8 for f in range(n))
            self.assertEqual(nbytes, hdr_crc + payload)

    def test_simulate_uep_semantics(self):
        k = np.array([2, 3, 1, 2], np.int32)
        copies = np.array([[0, 0], [1, 0], [2, 1], [0, 3]], np.int32)
        lost = np.array([1, 0, 1, 0], np.uint8)
        m = largesc.simulate_uep(k, copies, lost, 4)
        want = np.array([[1, 0, 0, 0],   # lost; copy r1=1 in packet 1 (packet 2 lost)
                         [1, 1, 1, 0],   # own packet (packet 3's r2=3 is beyond K but counts)
                         [0, 0, 0, 0],   # lost, packet 3 has r1=0
                         [1, 1, 0, 0]], np.uint8)
        np.testing.assert_array_equal(m, want)
        with self.assertRaisesRegex(ValueError, "same length"):
            largesc.simulate_uep(k, copies, lost[:3], 4)


class qa_receiver_vectors(gr_unittest.TestCase):
    """The receiver vectors of docs/packet_format.md ("Test vectors"), literal
    bytes: K 1 packets without CRC, "ss 40 00 00 tt" = seq ss, one token."""

    @staticmethod
    def k1(seq, token_bytes="00 00"):
        """The K 1 packet of the spec's receiver vectors: seq, then 40 00, then the token."""
        return bytes.fromhex(f"{seq:02x} 40 00 {token_bytes}")

    def out(self, rx):
        """(frame, tokens, primary) of the frames ready in rx."""
        return [(f["frame"], list(f["tokens"]), f["primary"]) for f in rx.pop()]

    def test_own_packet_overwrites_an_earlier_copy(self):
        rx = largesc.depacketizer_core(delay=2)
        for hexs in ("02 40 10 01 20 1c", "01 40 00 00 a0"):
            self.assertEqual(rx.push(bytes.fromhex(hexs)), "ok")
        rx.flush()
        self.assertEqual(self.out(rx), [(1, [5], True), (2, [9], True)])  # first-wins would give 7
        c = rx.counters()
        self.assertEqual((c["tokens_from_copies"], c["frames_primary"], c["frames_empty"], c["frames_out"]),
                         (1, 2, 0, 2))

    def test_one_packet_releases_131_frames(self):
        rx = largesc.depacketizer_core()  # default playout delay: 1
        for seq in range(10):
            rx.push(self.k1(seq))
        self.assertEqual([f for f, _, _ in self.out(rx)], list(range(9)))
        rx.push(bytes.fromhex("88 40 00 00 00"))  # 127 ahead of 9: held
        self.assertEqual((self.out(rx), rx.counters()["held"]), ([], 1))
        rx.push(bytes.fromhex("8c 40 00 00 00"))  # confirms it, 4 frames past it
        self.assertEqual([f for f, _, _ in self.out(rx)], list(range(9, 140)))  # 131 frames at once
        self.assertEqual(rx.counters()["frames_out"], 140)

    def test_packet_one_frame_behind_a_held_jump_does_not_confirm_it(self):
        rx = largesc.depacketizer_core(delay=1)
        for hexs in ("00 40 00 00 00", "01 40 00 00 00", "02 40 00 00 00", "14 40 00 00 00"):
            rx.push(bytes.fromhex(hexs))
        rx.push(bytes.fromhex("13 40 00 00 00"))  # one behind the held 20: drops it, is held in turn
        c = rx.counters()
        self.assertEqual((c["bad_seq"], c["held"], c["packets_accepted"], c["frames_out"]), (1, 1, 3, 2))
        rx.flush()
        self.assertEqual(self.out(rx), [(0, [0], True), (1, [0], True), (2, [0], True)])
        c = rx.counters()
        self.assertEqual((c["bad_seq"], c["malformed"], c["held"], c["packets_accepted"], c["packets_in"]),
                         (2, 2, 0, 3, 5))

    def test_reset_plays_out_the_pending_frames(self):
        rx = largesc.depacketizer_core(delay=2)
        rx.push(bytes.fromhex("00 40 00 00 20"))
        rx.push(bytes.fromhex("01 40 00 00 40"))
        rx.reset()
        rx.push(bytes.fromhex("00 40 00 00 a0"))  # a new stream
        rx.flush()
        self.assertEqual(self.out(rx), [(0, [1], True), (1, [2], True), (0, [5], True)])
        self.assertEqual(rx.counters()["frames_out"], 3)
        self.assertEqual(rx.counters()["flushes"], 2)   # the one reset() made, and flush()

    def test_restart_gap_range(self):
        for gap in (5, 120):
            largesc.depacketizer_core(restart_gap=gap)
        for gap in (4, 121):
            with self.assertRaisesRegex(ValueError, "restart_gap must be an integer in 5..120"):
                largesc.depacketizer_core(restart_gap=gap)

    def test_not_pdu_breaks_a_restart_run(self):
        """The block: a non-PDU message between the packets of a restart run
        breaks it, as an invalid packet does."""
        u8 = lambda b: pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b)))
        msgs = [u8(self.k1(s)) for s in range(40)] + [u8(self.k1(s)) for s in range(3)]
        msgs += [pmt.PMT_NIL] + [u8(self.k1(s)) for s in range(3, 7)]
        dpk, _ = depacketize_in_flowgraph(msgs)
        c = dpk.counters()
        self.assertEqual({k: c[k] for k in ("late", "restarts", "not_pdu", "malformed", "packets_accepted",
                                            "frames_out", "packets_in")},
                         dict(late=6, restarts=1, not_pdu=1, malformed=1, packets_accepted=41,
                              frames_out=41, packets_in=48))


class qa_gaps_by_time(gr_unittest.TestCase):
    """One gap rule (docs/packet_format.md, "Gaps by time"): with arrival times,
    a channel outage and a transmitter restart of the same length give the same
    output frames, as many as the time that passed."""

    T = 0.08  # seconds per frame

    def packets(self, first_frame, n, first_seq, jitter=0.0):
        """(packet, arrival time) of frames first_frame.., numbered from
        first_seq (a restarted transmitter starts again at 0); the tokens name
        the frame (100 f + c) and arrival is at the frame's time (+-jitter)."""
        tx = largesc.packetizer_core(False)
        rng = random.Random(first_frame)
        out = []
        for i in range(n):
            f = first_frame + i
            tok = [(100 * f + c) % 2048 for c in range(4)]
            out.append((tx.packetize(first_seq + i, tok, 4, 0, 0), f * self.T + rng.uniform(-jitter, jitter)))
        return out

    def run_rx(self, pk, timed=True):
        rx = largesc.depacketizer_core(delay=1)
        for p, t in pk:
            self.assertEqual(rx.push(p, t if timed else None), "ok")
        rx.flush()
        return [(f["frame"], list(f["tokens"]), f["primary"]) for f in rx.pop()], rx.counters()

    def expected(self, received):
        """The frames a receiver should put out for frames 0..max(received): own tokens where received."""
        return [(f, [(100 * f + c) % 2048 for c in range(4)] if f in received else [0, 0, 0, 0], f in received)
                for f in range(max(received) + 1)]

    def test_outage_and_restart_give_the_same_output(self):
        before = self.packets(0, 100, 0, jitter=0.03)
        for gap in (38, 200, 700):  # 3 s (seq still within reach), 16 s and 56 s (seq wraps)
            with self.subTest(gap=gap):
                after = 100 + gap
                outage, c_out = self.run_rx(before + self.packets(after, 40, after % 256, jitter=0.03))
                restart, c_rst = self.run_rx(before + self.packets(after, 40, 0, jitter=0.03))
                want = self.expected(set(range(100)) | set(range(after, after + 40)))
                self.assertEqual(outage, want)
                self.assertEqual(restart, want)
                self.assertEqual((c_out["restarts"], c_rst["restarts"]), (0, 1))
                for c in (c_out, c_rst):
                    self.assertEqual((c["packets_accepted"], c["late"], c["held"], c["frames_out"]),
                                     (140, 0, 0, after + 40))

    def test_without_times_seq_rules_hold(self):
        """No rx_time: a restart is found by seq alone; its first three packets are late
        and the silence is not filled (the rule before times; docs say so)."""
        before = self.packets(0, 100, 0)
        restart, c = self.run_rx(before + self.packets(138, 40, 0), timed=False)
        self.assertEqual(len(restart), 137)
        self.assertEqual((c["restarts"], c["late"], c["packets_accepted"]), (1, 3, 137))
        outage, c = self.run_rx(before + self.packets(300, 40, 300 % 256), timed=False)
        self.assertNotEqual(len(outage), 340)  # 200 frames: beyond what seq can tell

    def test_restart_run_broken_counts_late(self):
        """Packets that do not fit the clock wait (held) for a run of 4 consecutive seqs;
        a valid packet that fits breaks the run and they count late."""
        before = self.packets(0, 50, 0)
        stray = self.packets(60, 3, 200)  # 3 consecutive seqs far from where their time puts them
        rx = largesc.depacketizer_core(delay=1)
        for p, t in before + stray:
            rx.push(p, t)
        self.assertEqual(rx.counters()["held"], 3)
        p, t = self.packets(63, 1, 63)[0]
        rx.push(p, t)  # fits the clock: the numbering goes on
        c = rx.counters()
        self.assertEqual((c["held"], c["late"], c["restarts"], c["packets_accepted"]), (0, 3, 0, 51))
        self.assertEqual(c["packets_in"], c["packets_accepted"] + c["duplicates"] + c["late"] + c["malformed"]
                         + c["held"])

    def test_hostile_times_are_ignored(self):
        """NaN, infinite, decreasing or absurd times count as no time (seq rules);
        a time more than 60 s after the newest frame's is not used either."""
        before = self.packets(0, 20, 0)
        for bad in (float("nan"), float("inf"), -1.0, 1e12, 20 * self.T + 61.0):
            with self.subTest(t=bad):
                rx = largesc.depacketizer_core(delay=1)
                for p, t in before:
                    rx.push(p, t)
                p, _ = self.packets(25, 1, 25)[0]
                rx.push(p, bad)  # 5 ahead by seq: held, as without a time
                self.assertEqual(rx.counters()["held"], 1)
        for bad in ("now", True, 10 ** 400):
            with self.assertRaisesRegex(ValueError, "rx_time must be a number of seconds or None"):
                largesc.depacketizer_core().push(before[0][0], bad)
        # the playout clock's calls: the same rule for play_time, on the core and the block
        for obj, name in ((largesc.depacketizer_core(delay=1), "depacketizer_core"),
                          (largesc.uep_depacketizer(1, 8, 125, 0, False), "uep_depacketizer")):
            for call in ("play_until", "play_arrived"):
                for bad in ("now", True, 10 ** 400):
                    with self.subTest(obj=name, call=call, bad=bad), self.assertRaisesRegex(
                            ValueError, f"{name}.{call}: play_time must be a number of seconds or None"):
                        getattr(obj, call)(0, bad)
                with self.assertRaisesRegex(ValueError, f"{name}.{call}: .* must be an integer in 0..2\\^64-1"):
                    getattr(obj, call)(-1, None)

    def test_block_reads_rx_time_from_metadata(self):
        """uep_depacketizer takes rx_time from the PDU metadata: a restart after a 3 s
        silence comes out as lost frames, as many as the time."""
        def pdu(p, t):
            meta = pmt.dict_add(pmt.make_dict(), pmt.intern("rx_time"), pmt.from_double(t))
            return pmt.cons(meta, pmt.init_u8vector(len(p), list(p)))
        msgs = [pdu(p, t) for p, t in self.packets(0, 30, 0) + self.packets(68, 10, 0)]
        dpk, sink = depacketize_in_flowgraph(msgs)
        prim = [pmt.to_python(pmt.dict_ref(pmt.car(sink.get_message(i)), pmt.intern("primary"), pmt.PMT_F))
                for i in range(sink.num_messages())]
        self.assertEqual(prim, [True] * 30 + [False] * 38 + [True] * 10)
        self.assertEqual(dpk.counters()["restarts"], 1)


class qa_latency_fields(gr_unittest.TestCase):
    """The times a frame carries for latency (docs/latency.md): the packetizer notes each
    packet's frame index and capture_time; the depacketizer gives each frame the arrival time
    of the first packet that brought any of its tokens (rx_time)."""

    def test_core_frame_rx_time_is_the_first_token_arrival(self):
        tx = largesc.packetizer_core(False)
        rx = largesc.depacketizer_core(delay=2)
        tok = lambda f: [(10 * f + c) % 2048 for c in range(4)]  # noqa: E731
        # (frame, r1, r2, arrival): frame 1's own packet is lost; frame 2's carries 2 tokens of
        # frame 1 (r1), frame 3's 2 tokens of frame 1 (r2)
        sent = [(0, 0, 0, 10.00), (1, 0, 0, None), (2, 2, 0, 10.17), (3, 0, 2, 10.25), (4, 0, 0, 10.33)]
        for f, r1, r2, t in sent:
            p = tx.packetize(f, tok(f), 4, r1, r2)
            if t is not None:
                self.assertEqual(rx.push(p, t), "ok")
        rx.flush()
        out = {f["frame"]: f for f in rx.pop()}
        self.assertEqual(sorted(out), [0, 1, 2, 3, 4])
        self.assertEqual(out[0]["rx_time"], 10.00)
        self.assertEqual(out[1]["rx_time"], 10.17)   # the copy in frame 2's packet came first
        self.assertFalse(out[1]["primary"])
        self.assertEqual(list(out[1]["mask"]), [1, 1, 0, 0])
        self.assertEqual(out[2]["rx_time"], 10.17)
        self.assertEqual(out[3]["rx_time"], 10.25)
        self.assertEqual(out[4]["rx_time"], 10.33)

    def test_core_lost_and_untimed_frames_have_no_rx_time(self):
        tx = largesc.packetizer_core(False)
        rx = largesc.depacketizer_core(delay=1)
        rx.push(tx.packetize(0, [1, 2], 2, 0, 0), 5.0)
        rx.push(tx.packetize(3, [1, 2], 2, 0, 0), 5.24)   # frames 1 and 2 lost
        rx.push(tx.packetize(4, [1, 2], 2, 0, 0))          # no arrival time
        rx.flush()
        out = rx.pop()
        self.assertEqual([f["frame"] for f in out], [0, 1, 2, 3, 4])
        self.assertEqual([f.get("rx_time") for f in out], [5.0, None, None, 5.24, None])

    def test_blocks_carry_capture_time_and_rx_time(self):
        """uep_packetizer -> (sorter's stamp, scripted) -> uep_depacketizer: packets carry the
        frame index and capture_time; frames leave with rx_time, increasing as they arrived."""
        tb = gr.top_block()
        pkz = largesc.uep_packetizer(False)
        pk_sink = blocks.message_debug()
        tb.msg_connect((pkz, "out"), (pk_sink, "store"))
        tb.start()
        try:
            msgs = []
            for i in range(6):
                m = pdu_frame(i, [i, i + 1, i + 2], k=3)
                if i != 2:  # frame 2 came without a capture time
                    meta = pmt.dict_add(pmt.car(m), pmt.intern("capture_time"), pmt.from_double(50.0 + 0.08 * i))
                    m = pmt.cons(meta, pmt.cdr(m))
                msgs.append(m)
            post_paced(pkz, "in", msgs, pkz.frames_in)
            wait_for(lambda: pk_sink.num_messages() == 6, 20, "packets")
        finally:
            tb.stop()
            tb.wait()
        packets = [pk_sink.get_message(i) for i in range(6)]
        for i, m in enumerate(packets):
            meta = pmt.car(m)
            self.assertEqual(pmt.to_uint64(pmt.dict_ref(meta, pmt.intern("frame"), pmt.PMT_NIL)), i)
            cap = pmt.dict_ref(meta, pmt.intern("capture_time"), pmt.PMT_NIL)
            if i == 2:
                self.assertTrue(pmt.is_null(cap))
            else:
                self.assertAlmostEqual(pmt.to_double(cap), 50.0 + 0.08 * i, places=12)
        # the receiver: rx_time stamped as the sorter does; packet 3 lost
        timed = []
        for i, m in enumerate(packets):
            if i == 3:
                continue
            meta = pmt.dict_add(pmt.make_dict(), pmt.intern("rx_time"), pmt.from_double(70.0 + 0.08 * i))
            timed.append(pmt.cons(meta, pmt.cdr(m)))
        _dpk, sink = depacketize_in_flowgraph(timed)
        frames = [pmt.car(sink.get_message(i)) for i in range(sink.num_messages())]
        self.assertEqual(len(frames), 6)
        rx_times = [pmt.dict_ref(meta, pmt.intern("rx_time"), pmt.PMT_NIL) for meta in frames]
        self.assertTrue(pmt.is_null(rx_times[3]))
        self.assertEqual([pmt.to_double(t) for i, t in enumerate(rx_times) if i != 3],
                         [70.0 + 0.08 * i for i in (0, 1, 2, 4, 5)])


def pdu_frame(frame, tokens, k=None, copies=None):
    meta = pmt.dict_add(pmt.make_dict(), pmt.intern("frame"), pmt.from_uint64(frame))
    meta = pmt.dict_add(meta, pmt.intern("n_q"), pmt.from_long(len(tokens)))
    if k is not None:
        meta = pmt.dict_add(meta, pmt.intern("uep_k"), pmt.from_long(k))
    if copies is not None:
        meta = pmt.dict_add(meta, pmt.intern("uep_copies"), pmt.init_s32vector(len(copies), list(copies)))
    return pmt.cons(meta, pmt.init_u16vector(len(tokens), [int(t) for t in tokens]))


class qa_uep_blocks(gr_unittest.TestCase):

    def run_link(self, msgs, loss_rate=0.0, delay=1, crc=False, seed=1, model="bernoulli", mean_burst=1.0):
        tb = gr.top_block()
        pkz = largesc.uep_packetizer(crc)
        chan = largesc.erasure_channel(model, loss_rate, mean_burst, seed=seed)
        dpk = largesc.uep_depacketizer(delay, 8, 50, 10, crc)
        sink = blocks.message_debug()
        fb = blocks.message_debug()
        tb.msg_connect((pkz, "out"), (chan, "in"))
        tb.msg_connect((chan, "out"), (dpk, "in"))
        tb.msg_connect((dpk, "out"), (sink, "store"))
        tb.msg_connect((dpk, "feedback"), (fb, "store"))
        tb.start()
        post_paced(pkz, "in", msgs, dpk.packets_in if loss_rate == 0 else chan.packets_in)
        wait_for(lambda: pkz.frames_in() == len(msgs) and chan.packets_in() == pkz.packets_out()
                 and dpk.packets_in() == chan.packets_passed(), 20, "link did not drain")
        dpk.flush()
        wait_for(lambda: sink.num_messages() == dpk.frames_out(), 20, "frames not delivered")
        tb.stop()
        tb.wait()
        out = [sink.get_message(i) for i in range(sink.num_messages())]
        fbs = [fb.get_message(i) for i in range(fb.num_messages())]
        return out, fbs, pkz, chan, dpk

    def test_flowgraph_no_loss_bit_exact(self):
        frames = random_frames(500, 8, seed=9)
        msgs = [pdu_frame(i, frames[i], k=4 + i % 5, copies=[i % 3, i % 2]) for i in range(500)]
        out, _, pkz, _chan, _dpk = self.run_link(msgs)
        self.assertEqual(len(out), 500)
        for i, m in enumerate(out):
            meta = pmt.car(m)
            self.assertEqual(pmt.to_uint64(pmt.dict_ref(meta, pmt.intern("frame"), pmt.PMT_NIL)), i)
            toks = pmt.u16vector_elements(pmt.cdr(m))
            k = 4 + i % 5
            self.assertEqual(list(toks), list(frames[i][:k]))
            self.assertEqual(list(pmt.u8vector_elements(pmt.dict_ref(meta, pmt.intern("mask"), pmt.PMT_NIL))), [1] * k)
        self.assertEqual(pkz.packets_out(), 500)

    def test_flowgraph_counts_add_up_under_loss(self):
        n = 3000
        frames = random_frames(n, 8, seed=10)
        msgs = [pdu_frame(i, frames[i], k=6, copies=[2]) for i in range(n)]
        msgs.insert(100, pmt.intern("not a frame"))
        msgs.insert(200, pdu_frame(5000, [4000] * 8))
        out, fbs, pkz, chan, dpk = self.run_link(msgs, loss_rate=0.2, mean_burst=2.0,
                                                 model="gilbert_elliott", delay=1, crc=True)
        c = dpk.counters()
        self.assertEqual(pkz.frames_rejected(), 2)
        sent = pkz.packets_out()
        self.assertEqual(sent, n)
        # every packet accounted for: none lost to a message queue
        self.assertEqual(sent, c["packets_accepted"] + chan.packets_dropped() + c["malformed"]
                         + c["duplicates"] + c["late"])
        self.assertEqual(c["malformed"], 0)
        frames_out = [pmt.to_uint64(pmt.dict_ref(pmt.car(m), pmt.intern("frame"), pmt.PMT_NIL)) for m in out]
        first = frames_out[0]
        self.assertEqual(frames_out, list(range(first, n)))
        self.assertGreater(len(fbs), 10)
        last = pmt.car(fbs[-1])
        lr = pmt.to_double(pmt.dict_ref(last, pmt.intern("loss_rate"), pmt.PMT_NIL))
        self.assertGreaterEqual(lr, 0.0)
        self.assertLessEqual(lr, 1.0)
        measured = 1 - c["frames_primary"] / c["frames_out"]
        self.assertAlmostEqual(measured, chan.packets_dropped() / sent, delta=0.01)

    def test_feedback_reports_window_loss(self):
        dpk_core = largesc.depacketizer_core(delay=0, feedback_window=10)
        tx = largesc.packetizer_core()
        for i in range(20):
            p = tx.packetize(i, [1, 2], 2)
            if i not in (12, 13, 14, 17):
                dpk_core.push(p)
        s = dpk_core.window_stats()
        self.assertEqual(s.n_packets, 10)      # frames 10..19 played out
        self.assertAlmostEqual(s.loss_rate, 0.4)
        self.assertAlmostEqual(s.mean_burst, 2.0)

    def test_end_of_stream_flushes(self):
        """When its upstream finishes, the depacketizer plays out the frames still
        waiting for copies and the flowgraph ends by itself."""
        from gnuradio import pdu
        tx = largesc.packetizer_core()
        pk = [tx.packetize(i, [1, 2, 3], 3, 1, 0) for i in range(30)]
        size = len(pk[1])
        tb = gr.top_block()
        src = blocks.vector_source_b(list(b"".join(pk[1:])), False)
        s2t = blocks.stream_to_tagged_stream(1, 1, size, "len")
        t2p = pdu.tagged_stream_to_pdu(gr.types.byte_t, "len")
        dpk = largesc.uep_depacketizer(2, 8, 125, 0)
        dbg = blocks.message_debug()
        tb.connect(src, s2t, t2p)
        tb.msg_connect((t2p, "pdus"), (dpk, "in"))
        tb.msg_connect((dpk, "out"), (dbg, "store"))
        tb.run()
        frames = [pmt.to_uint64(pmt.dict_ref(pmt.car(dbg.get_message(i)), pmt.intern("frame"), pmt.PMT_NIL))
                  for i in range(dbg.num_messages())]
        # packet 0 never sent; packet 1 carries a copy of frame 0
        self.assertEqual(frames, list(range(30)))
        self.assertEqual(dpk.counters()["packets_in"], 29)

    def test_block_parameters(self):
        with self.assertRaisesRegex(ValueError, "0..2"):
            largesc.uep_depacketizer(5)
        with self.assertRaisesRegex(ValueError, "feedback_interval"):
            largesc.uep_depacketizer(1, 8, 125, -1)


def _sym(x):
    return pmt.intern(x)


def _meta(**kv):
    m = pmt.make_dict()
    for k, v in kv.items():
        m = pmt.dict_add(m, pmt.intern(k), v)
    return m


def _frames_of(sink):
    out = []
    for i in range(sink.num_messages()):
        m = sink.get_message(i)
        meta = pmt.car(m)
        out.append((pmt.to_uint64(pmt.dict_ref(meta, _sym("frame"), pmt.PMT_NIL)),
                    list(pmt.u16vector_elements(pmt.cdr(m))),
                    list(pmt.u8vector_elements(pmt.dict_ref(meta, _sym("mask"), pmt.PMT_NIL)))))
    return out


class qa_uep_hostile(gr_unittest.TestCase):
    """Hostile messages posted into running flowgraphs between valid traffic: every
    one is counted and dropped, the valid traffic after it comes out exact, the
    counters add up, and every wait has a timeout that fails the test."""

    TIMEOUT = 20.0

    @staticmethod
    def toks(i, n=4):
        return [(i * 37 + c * 11) % 2048 for c in range(n)]

    def hostile_frames(self):
        """Token-frame messages the packetizer must reject (name, message)."""
        t = self.toks(0)
        u16 = pmt.init_u16vector(4, t)
        f64 = pmt.from_uint64
        return [
            ("nil", pmt.PMT_NIL),
            ("symbol", _sym("frame")),
            ("integer", pmt.from_long(5)),
            ("u8 PDU", pmt.cons(pmt.make_dict(), pmt.init_u8vector(4, [1, 2, 3, 4]))),
            ("s16 PDU", pmt.cons(pmt.make_dict(), pmt.init_s16vector(4, t))),
            ("f32 PDU", pmt.cons(pmt.make_dict(), pmt.init_f32vector(4, [1.0] * 4))),
            ("car not a dict", pmt.cons(pmt.from_long(1), u16)),
            ("empty PDU", pmt.cons(pmt.make_dict(), pmt.init_u16vector(0, []))),
            ("64 KiB PDU", pmt.cons(pmt.make_dict(), pmt.init_u16vector(32768, [1] * 32768))),
            ("33 tokens", pmt.cons(pmt.make_dict(), pmt.init_u16vector(33, [1] * 33))),
            ("token 2048", pmt.cons(pmt.make_dict(), pmt.init_u16vector(4, [1, 2048, 3, 4]))),
            ("token 65535", pmt.cons(pmt.make_dict(), pmt.init_u16vector(4, [65535] * 4))),
            ("frame double", pmt.cons(_meta(frame=pmt.from_double(3.0)), u16)),
            ("frame NaN", pmt.cons(_meta(frame=pmt.from_double(float("nan"))), u16)),
            ("frame symbol", pmt.cons(_meta(frame=_sym("7")), u16)),
            ("frame -1", pmt.cons(_meta(frame=pmt.from_long(-1)), u16)),
            ("frame 2^63", pmt.cons(_meta(frame=f64(2 ** 63)), u16)),
            ("frame 2^64-1", pmt.cons(_meta(frame=f64(2 ** 64 - 1)), u16)),
            ("frame 2^40", pmt.cons(_meta(frame=f64(2 ** 40)), u16)),
            ("uep_k 2^32+6", pmt.cons(_meta(uep_k=pmt.from_long(2 ** 32 + 6)), u16)),
            ("uep_k 2^32+3", pmt.cons(_meta(uep_k=pmt.from_long(2 ** 32 + 3)), u16)),
            ("uep_k -3", pmt.cons(_meta(uep_k=pmt.from_long(-3)), u16)),
            ("uep_k 0", pmt.cons(_meta(uep_k=pmt.from_long(0)), u16)),
            ("uep_k 5 > n_q", pmt.cons(_meta(uep_k=pmt.from_long(5)), u16)),
            ("uep_k inf", pmt.cons(_meta(uep_k=pmt.from_double(float("inf"))), u16)),
            ("uep_k 2^64-1", pmt.cons(_meta(uep_k=f64(2 ** 64 - 1)), u16)),
            ("uep_copies 2^32+3", pmt.cons(_meta(uep_copies=pmt.make_vector(1, pmt.from_long(2 ** 32 + 3))), u16)),
            ("uep_copies 33", pmt.cons(_meta(uep_copies=pmt.init_s32vector(1, [33])), u16)),
            ("uep_copies -1", pmt.cons(_meta(uep_copies=pmt.init_s32vector(2, [1, -1])), u16)),
            ("uep_copies 3 offsets", pmt.cons(_meta(uep_copies=pmt.init_s32vector(3, [1, 1, 1])), u16)),
            ("uep_copies f32", pmt.cons(_meta(uep_copies=pmt.init_f32vector(1, [1.0])), u16)),
            ("uep_copies NaN", pmt.cons(_meta(uep_copies=pmt.make_vector(1, pmt.from_double(float("nan")))), u16)),
            ("uep_copies symbol", pmt.cons(_meta(uep_copies=_sym("x")), u16)),
        ]

    def test_packetizer_hostile_messages_and_frame_numbering(self):
        tb = gr.top_block()
        pkz = largesc.uep_packetizer(False)
        dpk = largesc.uep_depacketizer(1, 4, 125, 0, False)
        sink = blocks.message_debug()
        tb.msg_connect((pkz, "out"), (dpk, "in"))
        tb.msg_connect((dpk, "out"), (sink, "store"))
        msgs, expect = [], {}               # expect: on-air frame -> tokens
        st = dict(frame=-1, pos=-1)

        def valid(frame=None, pos=None):
            f = st["frame"] + 1 if frame is None else frame
            p = st["pos"] + (f - st["frame"]) if pos is None else pos
            t = self.toks(len(msgs))
            msgs.append(pdu_frame(f, t))
            expect[p] = t
            st.update(frame=f, pos=p)

        def bad(m):
            msgs.append(m)

        for _ in range(10):
            valid()
        hostile = [m for _, m in self.hostile_frames()]
        for m in hostile:                   # each followed by a valid frame
            bad(m)
            valid()
        bad(pdu_frame(st["frame"] + 10000, self.toks(0)))   # jump > 127: rejected
        valid()
        bad(pdu_frame(st["frame"] + 128, self.toks(0)))     # jump 128: rejected
        valid()
        bad(pdu_frame(st["frame"] - 5, self.toks(0)))       # back: rejected
        valid()
        bad(pdu_frame(st["frame"], self.toks(0)))           # repeat: rejected
        valid()
        valid(frame=st["frame"] + 50)       # jump 50: sent; 49 frames come out lost
        valid()
        valid(frame=st["frame"] + 127)      # the largest jump sent
        valid()
        bad(pdu_frame(0, self.toks(0)))     # encoder restarted at 0: frame 0 rejected,
        valid(frame=1, pos=st["pos"] + 1)   # frame 1 confirms: the next on-air frame
        valid()
        for i in range(1000):               # a burst without pause (under the 8192 limit)
            bad(hostile[i % len(hostile)])
        for _ in range(20):
            valid()
        n_bad = len(msgs) - len(expect)

        t0 = time.monotonic()
        tb.start()
        try:
            post_paced(pkz, "in", msgs, pkz.frames_in, timeout=self.TIMEOUT)
            wait_for(lambda: pkz.frames_in() == len(msgs) and dpk.packets_in() == pkz.packets_out(),
                     self.TIMEOUT, "packetizer -> depacketizer did not drain")
            dpk.flush()
            wait_for(lambda: sink.num_messages() == dpk.frames_out(), self.TIMEOUT,
                     "frames not delivered")
        finally:
            tb.stop()
            tb.wait()
        self.assertLess(time.monotonic() - t0, 2 * self.TIMEOUT)
        self.assertEqual((pkz.frames_in(), pkz.packets_out(), pkz.frames_rejected(), pkz.restarts()),
                         (len(msgs), len(expect), n_bad, 1))
        last = max(expect)
        got = _frames_of(sink)
        self.assertEqual([f for f, _, _ in got], list(range(last + 1)))
        for f, toks, mask in got:
            if f in expect:
                self.assertEqual((toks, mask), (expect[f], [1] * 4), f"frame {f}")
            else:
                self.assertEqual(mask, [0] * 4, f"frame {f}")
        c = dpk.counters()
        self.assertEqual({k: c[k] for k in ("packets_in", "packets_accepted", "malformed", "late",
                                            "duplicates", "bad_seq", "held", "restarts",
                                            "frames_out", "frames_empty")},
                         dict(packets_in=len(expect), packets_accepted=len(expect), malformed=0,
                              late=0, duplicates=0, bad_seq=0, held=0, restarts=0,
                              frames_out=last + 1, frames_empty=last + 1 - len(expect)))

    def _hostile_depacketizer_input(self, n):
        """n valid packets (no CRC) with every kind of hostile message between
        them: (messages, frames, {reason: count}, frames lost, late packets)."""
        tx = largesc.packetizer_core(False)
        txc = largesc.packetizer_core(True)
        frames = [self.toks(i) for i in range(n)]
        pk = [tx.packetize(i, frames[i], 4) for i in range(n)]
        u8 = lambda b: pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b)))
        bad_crc = bytearray(txc.packetize(3, frames[3], 4))
        bad_crc[-1] ^= 1
        bad_pad = bytearray(pk[3])
        bad_pad[-1] |= 1                   # 44 bits in 6 bytes: 4 padding bits
        hostile = [                        # (message, counter it increments)
            (pmt.PMT_NIL, "not_pdu"), (_sym("x"), "not_pdu"), (pmt.from_double(float("nan")), "not_pdu"),
            (pmt.cons(pmt.make_dict(), pmt.init_u16vector(3, [1, 2, 3])), "not_pdu"),
            (pmt.cons(pmt.make_dict(), pmt.init_s8vector(3, [1, 2, 3])), "not_pdu"),
            (pmt.cons(pmt.make_dict(), pmt.init_f32vector(1, [float("inf")])), "not_pdu"),
            (u8(b""), "too_short"), (u8(b"\x05\x41"), "too_short"),
            (u8(bytes([5, 0xC1, 0])), "bad_version"), (u8(bytes([5, 0x01, 0, 0, 0])), "bad_version"),
            (u8(b"\x05\x41\x00" + bytes(65533)), "bad_length"),
            (u8(bytes(65536)), "bad_version"),
            (u8(pk[3][:-1]), "bad_length"),
            (u8(bytes(bad_crc)), "bad_crc"), (u8(bytes(bad_pad)), "bad_padding"),
        ]
        msgs, counts, lost, late = [], {}, set(), 0
        i = 0

        def send(k):
            msgs.append(u8(pk[k]))
        for j in range(10):
            send(i)
            i += 1
        for m, why in hostile:
            msgs.append(m)
            counts[why] = counts.get(why, 0) + 1
            send(i)
            i += 1
        # corrupted seq (no CRC): +64 -> held, then dropped by the next packet
        msgs.append(u8(bytes([pk[i][0] ^ 64]) + pk[i][1:]))
        counts["bad_seq"] = 1
        lost.add(i)
        i += 1
        send(i)
        i += 1
        msgs.append(u8(pk[2]))              # a replayed old packet: late
        late += 1
        send(i)
        i += 1
        for j in range(1000):               # a burst of junk without pause
            m, why = hostile[j % len(hostile)]
            msgs.append(m)
            counts[why] = counts.get(why, 0) + 1
        while i < n:
            send(i)
            i += 1
        return msgs, frames, counts, lost, late

    def test_depacketizer_hostile_messages(self):
        """Packets and non-packets posted straight into the depacketizer (no CRC):
        each hostile message is counted under its documented reason; the valid
        packets around it come out exact."""
        n = 80
        msgs, frames, counts, lost, late = self._hostile_depacketizer_input(n)
        n_junk = sum(counts.values())

        tb = gr.top_block()
        dpk = largesc.uep_depacketizer(1, 4, 125, 0, False)
        sink = blocks.message_debug()
        tb.msg_connect((dpk, "out"), (sink, "store"))
        t0 = time.monotonic()
        tb.start()
        try:
            post_paced(dpk, "in", msgs, dpk.packets_in, timeout=self.TIMEOUT)
            wait_for(lambda: dpk.packets_in() == len(msgs), self.TIMEOUT, "depacketizer stalled")
            dpk.flush()
            wait_for(lambda: sink.num_messages() == dpk.frames_out() == n, self.TIMEOUT,
                     "frames not delivered")
        finally:
            tb.stop()
            tb.wait()
        self.assertLess(time.monotonic() - t0, 2 * self.TIMEOUT)
        got = _frames_of(sink)
        self.assertEqual([f for f, _, _ in got], list(range(n)))
        for f, toks, mask in got:
            if f in lost:
                self.assertEqual(mask, [0] * 4)
            else:
                self.assertEqual((toks, mask), (frames[f], [1] * 4), f"frame {f}")
        c = dpk.counters()
        want = dict(packets_in=len(msgs), packets_accepted=n - len(lost), late=late, duplicates=0,
                    held=0, restarts=0, malformed=n_junk, frames_out=n, frames_empty=len(lost))
        for why in ("not_pdu", "too_short", "bad_version", "bad_length", "bad_padding", "bad_crc",
                    "bad_seq"):
            want[why] = counts.get(why, 0)
        self.assertEqual({k: c[k] for k in want}, want)
        self.assertEqual(c["packets_in"], c["packets_accepted"] + c["duplicates"] + c["late"]
                         + c["malformed"] + c["held"])

    def test_require_crc_rejects_packets_without_crc(self):
        """With require_crc a valid packet without a CRC is counted bad_crc; a
        corrupted seq is caught by the CRC."""
        tx = largesc.packetizer_core(True)
        pk = [tx.packetize(i, self.toks(i), 4) for i in range(20)]
        plain = largesc.packetizer_core(False).packetize(5, self.toks(5), 4)
        rx = largesc.depacketizer_core(1, 4, 125, 32, True)
        for i in range(20):
            if i == 5:
                rx.push(plain)
            elif i == 9:
                rx.push(bytes([pk[i][0] ^ 64]) + pk[i][1:])
            else:
                rx.push(pk[i])
        rx.flush()
        out = rx.pop()
        self.assertEqual([f["frame"] for f in out], list(range(20)))
        self.assertEqual([f["frame"] for f in out if not f["mask"].any()], [5, 9])
        c = rx.counters()
        self.assertEqual((c["bad_crc"], c["malformed"], c["bad_seq"], c["packets_accepted"]), (2, 2, 0, 18))

    def test_construction_names_the_parameter(self):
        nan, inf = float("nan"), float("inf")
        cases = [
            (lambda: largesc.uep_packetizer(2), r"uep_packetizer: crc must be a bool \(True/False\), got 2$"),
            (lambda: largesc.uep_packetizer(crc=nan), r"uep_packetizer: crc must be a bool .*got nan"),
            (lambda: largesc.uep_packetizer("yes"), r"crc must be a bool .*got 'yes'"),
            (lambda: largesc.uep_packetizer(1), r"crc must be a bool"),
            (lambda: largesc.uep_depacketizer(nan), r"uep_depacketizer: delay must be an integer in 0..2, got nan"),
            (lambda: largesc.uep_depacketizer(1.0), r"delay must be an integer in 0..2, got 1.0"),
            (lambda: largesc.uep_depacketizer(True), r"delay must be an integer in 0..2, got True"),
            (lambda: largesc.uep_depacketizer(3), r"delay must be an integer in 0..2, got 3"),
            (lambda: largesc.uep_depacketizer(default_n_q=-1), r"default_n_q must be an integer in 1..32, got -1$"),
            (lambda: largesc.uep_depacketizer(default_n_q=2 ** 32 + 8), r"default_n_q .* got 4294967304"),
            (lambda: largesc.uep_depacketizer(feedback_window=0), r"feedback_window must be an integer in 1..1000000"),
            (lambda: largesc.uep_depacketizer(feedback_interval=-1),
             r"feedback_interval must be an integer in 0..1000000, got -1"),
            (lambda: largesc.uep_depacketizer(feedback_interval=inf), r"feedback_interval .* got inf"),
            (lambda: largesc.uep_depacketizer(require_crc=2),
             r"uep_depacketizer: require_crc must be a bool \(True/False\), got 2"),
            (lambda: largesc.uep_depacketizer(require_crc=None), r"require_crc must be a bool .*got None"),
            (lambda: largesc.depacketizer_core(default_n_q=-1),
             r"depacketizer_core: default_n_q must be an integer in 1..32, got -1"),
            (lambda: largesc.depacketizer_core(restart_gap=2), r"restart_gap must be an integer in 5..120"),
        ]
        for make, msg in cases:
            with self.subTest(msg=msg):
                with self.assertRaisesRegex(ValueError, msg):
                    make()
        # the signatures every caller uses still work (positional, keyword, numpy)
        largesc.uep_packetizer()
        largesc.uep_packetizer(True).set_crc(np.bool_(False))
        with self.assertRaisesRegex(ValueError, "crc must be a bool"):
            largesc.uep_packetizer().set_crc(2)
        largesc.uep_depacketizer(2, np.int64(8), 125, 0, np.bool_(True))
        largesc.uep_depacketizer(delay=0, default_n_q=32, feedback_window=1, feedback_interval=0,
                                 require_crc=False)
        largesc.depacketizer_core(2, 8)


if __name__ == "__main__":
    gr_unittest.run(qa_uep_core)
