#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Loss feedback over the air: feedback_encoder turns the depacketizer's
feedback reports into feedback packets (docs/packet_format.md, "Feedback
packets") that a byte PHY can carry; packet_sorter splits what a modem
delivers into voice packets and decoded feedback reports. The packet format
itself lives in the C++ core (lib/feedback_packet.cc)."""

import threading
import time

import pmt
from gnuradio import gr

from .. import largesc_python as _core
from ..common import params as P
from ..common.guard import Guard
from ..common.pmt_util import FEEDBACK_SEQ_KEY, RX_TIME_KEY, make_feedback_pdu, parse_feedback


class feedback_encoder(gr.basic_block):
    """Loss feedback reports -> feedback packets for a byte PHY.

    Ports
      in: feedback reports as the uep_depacketizer's `feedback` port sends
          them (PDU whose car is a dict loss_rate, mean_burst, window; or
          that dict alone), checked as the controller checks them
          (common/pmt_util.parse_feedback).
      out: `copies` identical feedback packet PDUs per report (car: dict with
          feedback_seq; cdr: the 10 packet bytes), numbered 0, 1, ... mod 256
          from first_seq.

    copies (1..4, default 2): each report is sent this many times in a row, so
    that a report is lost only when every copy is (at 13 dB about 1 packet in
    20 is lost, one report in 400 with two copies; docs/two_radio.md). The
    far packet_sorter passes the first copy that arrives and drops the others
    as repeats (`feedback: duplicate`). 40 bit/s on air per copy at one
    report per 2 s.

    The packet carries mean_burst 1..1000 and window 0..65535: a burst below
    1 (0 = none measured) is sent as 1 (the controller reads any burst below
    1 as 1) and a longer window as 65535. A refused report is dropped,
    counted (reports_rejected, rejections() per reason) and logged; reports_in
    = reports_out + reports_rejected, packets_out = copies x reports_out.
    """

    def __init__(self, first_seq=0, copies=2):
        gr.basic_block.__init__(self, name="feedback_encoder", in_sig=None, out_sig=None)
        self._seq = P.check_int("first_seq", first_seq, 0, 255)
        self.copies = P.check_int("copies", copies, 1, 4)
        self._lock = threading.Lock()
        self._reports_in = self._packets_out = self._rejected = 0
        self.guard = Guard("feedback_encoder", self.logger)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.guard.install(self, "in", self._handle, self._on_error)

    def _on_error(self, msg, exc):
        """An exception in the handler: the report counts as rejected."""
        with self._lock:
            self._rejected += 1

    def _handle(self, msg):
        with self._lock:
            self._reports_in += 1
            parsed = parse_feedback(msg)
            if isinstance(parsed, str):
                self.guard.note("in: rejected", parsed)
                self._rejected += 1
                return
            loss, burst, window = parsed
            seq = self._seq
            packet = _core.build_feedback(seq, loss, min(max(burst, 1.0), 1000.0),
                                          min(window, _core.FEEDBACK_MAX_WINDOW))
            self._seq = (seq + 1) % 256
        meta = pmt.dict_add(pmt.make_dict(), FEEDBACK_SEQ_KEY, pmt.from_long(seq))
        pdu = pmt.cons(meta, pmt.init_u8vector(len(packet), list(packet)))
        for _ in range(self.copies):
            self.message_port_pub(pmt.intern("out"), pdu)
        with self._lock:
            self._packets_out += self.copies

    def reports_in(self):
        return self._reports_in

    def packets_out(self):
        return self._packets_out

    def reports_out(self):
        """Reports sent (each as `copies` packets)."""
        return self._packets_out // self.copies

    def reports_rejected(self):
        return self._rejected

    def rejections(self):
        """{reason: count} of rejected or failed messages (see guard.py)."""
        return self.guard.counts()


class packet_sorter(gr.basic_block):
    """Packets off a modem -> voice packets and decoded feedback reports.

    Ports
      in: packet PDUs (cdr: u8vector of packet bytes; car ignored).
      voice: the PDUs whose header says voice (byte 1 bits 7..6 = 01), bytes
          unchanged (the depacketizer checks the rest); with stamp_time (the
          default) the metadata gets rx_time, the arrival time in seconds on
          the host's monotonic clock, unless it already has one: the
          depacketizer then fills a silence (a channel outage or a transmitter
          restart) with as many lost frames as time passed. Set stamp_time
          False when the flowgraph runs faster than real time (a simulation
          without a throttle), where the host clock is not the link's.
      feedback: one feedback PDU per valid feedback packet (byte 1 bits 7..6 =
          10, fully checked by the C++ parser), in the form the controller's
          `feedback` port reads (dict loss_rate, mean_burst, window,
          feedback_seq; empty u8vector).

    Anything else (not a PDU with a u8vector, unknown kind, a refused or
    repeated feedback packet) is dropped, counted (rejections() per reason:
    not_pdu, unknown_kind, feedback: <reason>, feedback: duplicate) and logged.
    packets_in = voice_out + feedback_out + rejected. Feedback numbering:
    reports_lost counts reports skipped (a gap in feedback_seq), reordered
    reports that come back in numbering (passed on: a restarted encoder).
    """

    def __init__(self, stamp_time=True):
        gr.basic_block.__init__(self, name="packet_sorter", in_sig=None, out_sig=None)
        self.stamp_time = P.check_bool("stamp_time", stamp_time)
        self._lock = threading.Lock()
        self._n = dict.fromkeys(("packets_in", "voice_out", "feedback_out", "rejected",
                                 "reports_lost", "reordered"), 0)
        self._last_fb = None            # bytes of the last feedback packet passed on
        self.guard = Guard("packet_sorter", self.logger)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("voice"))
        self.message_port_register_out(pmt.intern("feedback"))
        self.guard.install(self, "in", self._handle, self._on_error)

    def _on_error(self, msg, exc):
        """An exception in the handler: the packet counts as rejected."""
        with self._lock:
            self._n["rejected"] += 1

    def _reject(self, reason, detail=""):
        """Counts and logs one dropped packet (lock held)."""
        self.guard.note(reason, detail)
        self._n["rejected"] += 1

    def _sort(self, msg):
        """(port, PDU to publish) for msg, or None when it is rejected (lock held)."""
        if not pmt.is_pair(msg) or not pmt.is_u8vector(pmt.cdr(msg)):
            self._reject("not_pdu", "not a pair with a u8vector cdr")
            return None
        data = bytes(pmt.u8vector_elements(pmt.cdr(msg)))
        kind = _core.packet_kind(data)
        if kind == "voice":
            return "voice", self._stamped(msg)
        if kind != "feedback":
            self._reject("unknown_kind", f"{len(data)} bytes")
            return None
        status, report = _core.parse_feedback_packet(data)
        if status != "ok":
            self._reject(f"feedback: {status}")
            return None
        return self._check_numbering(data, report)

    def _stamped(self, msg):
        """msg with rx_time (host monotonic seconds) in its metadata, if stamping and it has none."""
        meta = pmt.car(msg)
        if not self.stamp_time:
            return msg
        if not pmt.is_dict(meta):
            meta = pmt.make_dict()
        elif pmt.dict_has_key(meta, RX_TIME_KEY):
            return msg
        return pmt.cons(pmt.dict_add(meta, RX_TIME_KEY, pmt.from_double(time.monotonic())), pmt.cdr(msg))

    def _check_numbering(self, data, report):
        """Drops a repeat of the last report; counts gaps and reordering (lock held)."""
        if self._last_fb is not None:
            step = (data[0] - self._last_fb[0]) % 256
            if step == 0 and data == self._last_fb:
                self._reject("feedback: duplicate", f"feedback_seq {data[0]}")
                return None
            if 1 <= step <= 127:
                self._n["reports_lost"] += step - 1
            else:
                self._n["reordered"] += 1
        self._last_fb = data
        return "feedback", make_feedback_pdu(report["loss_rate"], report["mean_burst"], report["window"],
                                             report["seq"])

    def _handle(self, msg):
        with self._lock:
            self._n["packets_in"] += 1
            out = self._sort(msg)
        if out is None:
            return
        port, pdu = out
        self.message_port_pub(pmt.intern(port), pdu)
        with self._lock:
            self._n[port + "_out"] += 1

    def counters(self):
        """{name: count}: packets_in, voice_out, feedback_out, rejected,
        reports_lost, reordered."""
        with self._lock:
            return dict(self._n)

    def rejections(self):
        """{reason: count} of rejected or failed messages (see guard.py)."""
        return self.guard.counts()
