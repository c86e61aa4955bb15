"""Node B (listener): zmq -> packet_modem_rx -> packet_sorter.voice -> largesc_rx -> null sink (frame clock);
largesc_rx.feedback -> feedback_encoder -> packet_modem_tx(continuous) -> zmq back."""

import sys
import os
from gnuradio import gr, zeromq
from gnuradio import largesc
import common as C


def main():
    out, stopfile = sys.argv[1], sys.argv[2]
    tb = gr.top_block("node_b")
    zsrc = zeromq.pull_source(gr.sizeof_gr_complex, 1, C.addr("air_to_b"), 100, False, -1)
    mrx = largesc.packet_modem_rx(samp_rate=C.SAMP_RATE, bit_rate=C.BIT_RATE)
    sorter = largesc.packet_sorter()
    rx = largesc.largesc_rx(
        sample_rate=C.AUDIO_RATE,
        weights="random:0",
        recovery="hold",
        threads=1,
        codec_mode="exact",
        start_frame=0,
    )
    play = C.frame_clock("start", sink=True)
    tb.connect(zsrc, mrx)
    tb.msg_connect(mrx, "out", sorter, "in")
    tb.msg_connect(sorter, "voice", rx, "in")
    tb.connect(rx, play)
    voice_log = C.msg_logger(keep_car=False)
    tb.msg_connect(sorter, "voice", voice_log, "in")
    fenc = largesc.feedback_encoder()
    mtx = largesc.packet_modem_tx(samp_rate=C.SAMP_RATE, bit_rate=C.BIT_RATE, mode="continuous")
    zsink = zeromq.push_sink(gr.sizeof_gr_complex, 1, C.addr("b_to_air"), 100, False, -1)
    tb.msg_connect(rx, "feedback", fenc, "in")
    tb.msg_connect(fenc, "out", mtx, "in")
    tb.connect(mtx, zsink)
    rep_log = C.msg_logger()
    tb.msg_connect(rx, "feedback", rep_log, "in")
    t0, t1, clean = C.run_until_stopped(tb, stopfile)
    res = {
        "role": "B",
        "t_start": t0,
        "t_stop": t1,
        "clean_stop": clean,
        "modem_rx": dict(
            samples_in=mrx.samples_in(),
            frames_detected=mrx.frames_detected(),
            packets_out=mrx.packets_out(),
            crc_failures=mrx.crc_failures(),
        ),
        "sorter": sorter.counters(),
        "rx_counters": rx.counters(),
        "feedback_encoder": dict(
            reports_in=fenc.reports_in(), packets_out=fenc.packets_out(), rejected=fenc.reports_rejected()
        ),
        "rev_modem_tx": dict(packets_in=mtx.packets_in(), samples_out=mtx.samples_out()),
        "reports_sent": [dict(t=t, **(c or {})) for (t, c, b0, n) in rep_log.log],
        "voice_packets": [(t, b0, n) for (t, c, b0, n) in voice_log.log],
        "playout_start_times": play.times,
        "audio_samples_out": play.n,
    }
    C.write_json(out, res)
    os._exit(0)


if __name__ == "__main__":
    main()
