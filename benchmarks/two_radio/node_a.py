"""Node A (talker): looped speech -> throttle(16 kHz) -> largesc_tx -> packet_modem_tx(continuous) -> zmq;
reverse: zmq -> packet_modem_rx -> packet_sorter -> feedback -> largesc_tx.feedback."""

import sys
import os
import time
import numpy as np
from gnuradio import gr, blocks, zeromq
from gnuradio import largesc
from gnuradio.largesc.eval import speech as S
import common as C


def main():
    out, stopfile = sys.argv[1], sys.argv[2]
    audio, _text = S.demo_speech(C.AUDIO_RATE)  # returns (audio, transcript), not (x, sr)
    audio = np.asarray(audio, np.float32)
    tb = gr.top_block("node_a")
    src = blocks.vector_source_f(audio.tolist(), True)
    thr = blocks.throttle(gr.sizeof_float, C.AUDIO_RATE, True)
    thr.set_max_noutput_items(160)  # 10 ms granularity of the capture clock
    cap = C.frame_clock("end")
    tx = largesc.largesc_tx(
        sample_rate=C.AUDIO_RATE, budget=1100, weights="random:0", threads=1, codec_mode="exact"
    )
    mtx = largesc.packet_modem_tx(samp_rate=C.SAMP_RATE, bit_rate=C.BIT_RATE, mode="continuous")
    zsink = zeromq.push_sink(gr.sizeof_gr_complex, 1, C.addr("a_to_air"), 100, False, -1)
    tb.connect(src, thr, cap, tx)
    tb.msg_connect(tx, "out", mtx, "in")
    tb.connect(mtx, zsink)
    sent_log = C.msg_logger(keep_car=False)
    tb.msg_connect(tx, "out", sent_log, "in")
    # reverse link
    zsrc = zeromq.pull_source(gr.sizeof_gr_complex, 1, C.addr("air_to_a"), 100, False, -1)
    mrx = largesc.packet_modem_rx(samp_rate=C.SAMP_RATE, bit_rate=C.BIT_RATE)
    sorter = largesc.packet_sorter()
    fb_log = C.msg_logger()
    tb.connect(zsrc, mrx)
    tb.msg_connect(mrx, "out", sorter, "in")
    tb.msg_connect(sorter, "feedback", tx, "feedback")
    tb.msg_connect(sorter, "feedback", fb_log, "in")
    ctl = tx.controller
    timeline = []

    def poll():
        timeline.append(
            dict(
                t=time.time(),
                loss_rate=ctl.loss_rate(),
                mean_burst=ctl.mean_burst(),
                state=ctl.feedback_state(),
                feedback_in=ctl.feedback_in(),
                plan=ctl.speech_plan(),
                frames_out=tx.frames_out(),
                modem_packets_in=mtx.packets_in(),
                samples_out=mtx.samples_out(),
            )
        )

    t0, t1, clean = C.run_until_stopped(tb, stopfile, poll, 1.0)
    poll()
    res = {
        "role": "A",
        "t_start": t0,
        "t_stop": t1,
        "clean_stop": clean,
        "encoder_frames_out": tx.frames_out(),
        "packetizer_packets_out": tx.packets_out(),
        "controller": dict(
            frames_in=ctl.frames_in(),
            frames_out=ctl.frames_out(),
            feedback_in=ctl.feedback_in(),
            feedback_rejected=ctl.feedback_rejected(),
            feedback_stale=ctl.feedback_stale(),
            state=ctl.feedback_state(),
            loss_rate=ctl.loss_rate(),
            mean_burst=ctl.mean_burst(),
            plan=ctl.speech_plan(),
            rejections=ctl.rejections(),
        ),
        "modem_tx": dict(
            packets_in=mtx.packets_in(), bytes_out=mtx.bytes_out(), samples_out=mtx.samples_out()
        ),
        "zmq_sink_items": zsink.nitems_read(0),
        "rev_modem_rx": dict(
            samples_in=mrx.samples_in(),
            frames_detected=mrx.frames_detected(),
            packets_out=mrx.packets_out(),
            crc_failures=mrx.crc_failures(),
        ),
        "sorter": sorter.counters(),
        "feedback_received": [dict(t=t, **(c or {})) for (t, c, b0, n) in fb_log.log],
        "sent_packets": [(t, b0, n) for (t, c, b0, n) in sent_log.log],
        "capture_end_times": cap.times,
        "timeline": timeline,
    }
    C.write_json(out, res)
    os._exit(0)


if __name__ == "__main__":
    main()
