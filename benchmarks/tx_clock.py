#!/usr/bin/env python3
"""The continuous transmitter's sample rate into a fixed-rate sink (issue 23, item 1).

packet_modem_tx (continuous mode, 80 kS/s, 10 kbit/s) fed 12.5 LargeSC-sized packets per second
-> throttle at the sample rate (the fixed-rate sink: a USRP or a sound card takes samples at
exactly its rate) -> null sink. Prints JSON: samples the modem produced against the nominal rate
times the elapsed time (rate error), every --report seconds and at the end, with the clock's
re-anchors (resyncs: the host stalled for more than 0.5 s) and packets sent.

    .venv/bin/python3 benchmarks/tx_clock.py --minutes 10
"""

import argparse
import json
import time

import pmt
from gnuradio import blocks, gr

from gnuradio import largesc

SAMP_RATE, BIT_RATE = 80000, 10000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--report", type=float, default=60.0, help="seconds between progress lines")
    args = ap.parse_args()
    tb = gr.top_block()
    mtx = largesc.packet_modem_tx(samp_rate=SAMP_RATE, bit_rate=BIT_RATE, mode="continuous")
    thr = blocks.throttle(gr.sizeof_gr_complex, SAMP_RATE, True)
    tb.connect(mtx, thr, blocks.null_sink(gr.sizeof_gr_complex))
    pkt = pmt.cons(pmt.make_dict(), pmt.init_u8vector(17, list(range(17))))   # a 17-byte voice packet
    strobe = blocks.message_strobe(pkt, 80)            # 12.5 packets/s
    tb.msg_connect(strobe, "strobe", mtx, "in")
    tb.start()
    t0 = time.monotonic()
    next_report = args.report
    base = None     # (elapsed, samples) after the first 10 s: the long-run rate leaves start-up out
    try:
        while True:
            el = time.monotonic() - t0
            if el >= args.minutes * 60:
                break
            if base is None and el >= 10.0:
                base = (el, mtx.samples_out())
            if el >= next_report:
                print(json.dumps(row(mtx, el, base)), flush=True)
                next_report += args.report
            time.sleep(0.01)
    finally:
        el = time.monotonic() - t0
        tb.stop()
        tb.wait()
    end = row(mtx, el, base)
    print(json.dumps(dict(final=end, setup=dict(samp_rate=SAMP_RATE, bit_rate=BIT_RATE, minutes=args.minutes))))


def row(mtx, elapsed, base):
    s = mtx.samples_out()
    fr = mtx.framer
    after = None
    if base and elapsed > base[0]:
        after = round((s - base[1]) / (SAMP_RATE * (elapsed - base[0])) - 1, 6)
    return dict(elapsed_s=round(elapsed, 2), samples_out=s, rate_error=round(s / (SAMP_RATE * elapsed) - 1, 6),
                rate_error_after_10s=after,
                packets_in=mtx.packets_in(), packets_framed=fr.frames_framed(), resyncs=fr.resyncs,
                skipped_s=round(fr.skipped_bytes / (BIT_RATE / 8), 3))


if __name__ == "__main__":
    main()
