"""One radio that talks and listens (role A or B): full duplex over two ZMQ legs of the air process.

talk:   looped speech -> throttle(16 kHz, 20 ms periods as a sound card) -> largesc_tx (its encoder stamps
        each frame's capture_time) -> packet_modem_tx (continuous)
        -> ZMQ push to the air; largesc_rx's loss reports -> feedback_encoder -> the same modem.
listen: ZMQ pull from the air -> packet_modem_rx -> packet_sorter: voice -> largesc_rx (hold recovery)
        -> output clock (when each frame's first sample is taken); its per-frame latency messages are logged;
        feedback -> largesc_tx's controller.
Writes one JSON file of counters and logs when stopped (stop file or SIGTERM)."""

import gc
import os
import resource
import sys
import time

import numpy as np
from gnuradio import blocks, gr, zeromq

from gnuradio import largesc
from gnuradio.largesc.eval import speech as S

import common as C

LEGS = {"A": ("a_to_air", "air_to_a"), "B": ("b_to_air", "air_to_b")}


def build(role):
    """The node's flowgraph and the blocks the report reads."""
    audio, _text = S.demo_speech(C.AUDIO_RATE)
    audio = np.asarray(audio, np.float32)
    if role == "B":  # the other party says something else
        audio = np.roll(audio, len(audio) // 2)
    tx_leg, rx_leg = LEGS[role]
    tb = gr.top_block("node_" + role)
    b = dict(tb=tb)
    src = blocks.vector_source_f(audio.tolist(), True)
    thr = blocks.throttle(gr.sizeof_float, C.AUDIO_RATE, True)
    thr.set_max_noutput_items(C.AUDIO_PERIOD)  # audio comes in 20 ms periods, as from a sound card
    b["tx"] = largesc.largesc_tx(sample_rate=C.AUDIO_RATE, budget=C.BUDGET, weights=C.WEIGHTS, threads=C.CODEC_THREADS,
                                 codec_mode=C.CODEC_MODE)
    b["mtx"] = largesc.packet_modem_tx(samp_rate=C.SAMP_RATE, bit_rate=C.BIT_RATE, mode="continuous")
    b["zsink"] = zeromq.push_sink(gr.sizeof_gr_complex, 1, C.addr(tx_leg), 100, False, -1)
    if role in C.TALKERS:
        if C.TALK_AFTER_S > 0:      # the first TALK_AFTER_S seconds of audio never reach the encoder
            b["ptt"] = blocks.skiphead(gr.sizeof_float, int(C.TALK_AFTER_S * C.AUDIO_RATE))
            tb.connect(src, thr, b["ptt"], b["tx"])
        else:
            tb.connect(src, thr, b["tx"])
    else:  # a listener only: no audio reaches its encoder (a disabled copy drops it)
        b["mic_off"] = blocks.copy(gr.sizeof_float)
        b["mic_off"].set_enabled(False)
        tb.connect(src, thr, b["mic_off"], b["tx"])
    # valves: closed at the end to stop talking cleanly (what passed them was sent)
    b["voice_valve"], b["fb_valve"] = C.valve(), C.valve()
    tb.msg_connect(b["tx"], "out", b["voice_valve"], "in")
    tb.msg_connect(b["voice_valve"], "out", b["mtx"], "in")
    tb.connect(b["mtx"], b["zsink"])
    # listen
    zsrc = zeromq.pull_source(gr.sizeof_gr_complex, 1, C.addr(rx_leg), 100, False, -1)
    b["mrx"] = largesc.packet_modem_rx(samp_rate=C.SAMP_RATE, bit_rate=C.BIT_RATE)
    b["sorter"] = largesc.packet_sorter()
    b["rx"] = largesc.largesc_rx(sample_rate=C.AUDIO_RATE, weights=C.WEIGHTS, recovery=C.RECOVERY,
                                 recovery_args=C.RECOVERY_ARGS, threads=C.CODEC_THREADS,
                                 codec_mode=C.CODEC_MODE, start_frame=0, jitter_buffer_ms=C.JITTER_MS,
                                 decode_lead_ms=C.DECODE_LEAD_MS, fixed_rate_output=C.FIXED_RATE,
                                 output_prime_ms=C.PRIME_MS)
    b["play"] = C.frame_clock("start", sink=True)
    tb.connect(zsrc, b["mrx"])
    tb.msg_connect(b["mrx"], "out", b["sorter"], "in")
    tb.msg_connect(b["sorter"], "voice", b["rx"], "in")
    tb.msg_connect(b["sorter"], "feedback", b["tx"], "feedback")
    tb.connect(b["rx"], b["play"])
    b["voice_log"] = C.msg_logger(keep_car=False)
    tb.msg_connect(b["sorter"], "voice", b["voice_log"], "in")
    b["fb_log"] = C.msg_logger()
    tb.msg_connect(b["sorter"], "feedback", b["fb_log"], "in")
    b["frame_log"] = C.msg_logger(("frame", "primary"))  # every frame the depacketizer plays out (frame, primary)
    tb.msg_connect(b["rx"].depacketizer, "out", b["frame_log"], "in")
    # the loss reports about what this node hears go back through its own modem
    b["fenc"] = largesc.feedback_encoder()
    tb.msg_connect(b["rx"], "feedback", b["fenc"], "in")
    tb.msg_connect(b["fenc"], "out", b["fb_valve"], "in")
    tb.msg_connect(b["fb_valve"], "out", b["mtx"], "in")
    b["rep_log"] = C.msg_logger()
    tb.msg_connect(b["rx"], "feedback", b["rep_log"], "in")
    b["lat_log"] = C.msg_logger(("frame", "out_time", "out_sample", "due_time", "rx_time", "play_time", "receive_to_output_ms",
                                      "late_packets"))
    tb.msg_connect(b["rx"], "latency", b["lat_log"], "in")
    return b


def report(role, b, t0, t1, clean, timeline):
    """The node's counters and logs as one dict."""
    tx, rx, mtx, mrx, ctl = b["tx"], b["rx"], b["mtx"], b["mrx"], b["tx"].controller
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "role": role, "t_start": t0, "t_stop": t1, "clean_stop": clean, "jitter_buffer_ms": C.JITTER_MS,
        "decode_lead_ms": C.DECODE_LEAD_MS, "fixed_rate_output": C.FIXED_RATE, "output_prime_ms": C.PRIME_MS,
        "talk_after_s": C.TALK_AFTER_S,
        "recovery": C.RECOVERY,
        "codec_mode": C.CODEC_MODE, "codec_threads": C.CODEC_THREADS,
        "cpu_s": ru.ru_utime + ru.ru_stime, "max_rss_mb": ru.ru_maxrss / 1024.0,
        "talk": {
            "encoder_frames_out": tx.frames_out(), "packets_sent": tx.packets_out(),
            "controller": dict(frames_in=ctl.frames_in(), feedback_in=ctl.feedback_in(),
                               feedback_rejected=ctl.feedback_rejected(), feedback_stale=ctl.feedback_stale(),
                               state=ctl.feedback_state(), loss_rate=ctl.loss_rate(),
                               mean_burst=ctl.mean_burst(), plan=ctl.speech_plan()),
            "modem_tx": dict(packets_in=mtx.packets_in(), bytes_out=mtx.bytes_out(), samples_out=mtx.samples_out()),
            "feedback_encoder": dict(reports_in=b["fenc"].reports_in(), packets_out=b["fenc"].packets_out(),
                                     rejected=b["fenc"].reports_rejected()),
            "voice_sent": len(b["voice_valve"].log), "voice_held_back": b["voice_valve"].held_back,
            # reports: each goes out as feedback_encoder.copies packets (the valve counts packets)
            "report_packets_sent": len(b["fb_valve"].log), "reports_held_back": b["fb_valve"].held_back,
            "reports_sent": sum(1 for i, p in enumerate(b["fb_valve"].log)   # a report's copies are consecutive
                                if i == 0 or p[1:] != b["fb_valve"].log[i - 1][1:]), "report_copies": b["fenc"].copies,
            "t_mute": b.get("t_mute"),
        },
        "listen": {
            "modem_rx": dict(samples_in=mrx.samples_in(), frames_detected=mrx.frames_detected(),
                             packets_out=mrx.packets_out(), crc_failures=mrx.crc_failures()),
            "sorter": b["sorter"].counters(),
            "sorter_rejections": b["sorter"].rejections(),
            "rx_counters": rx.counters(),
            "audio_samples_out": b["play"].n,
        },
        "sent_packets": b["voice_valve"].log,
        "reports_sent_packets": b["fb_valve"].log,
        "voice_packets": [(t, b0, n) for (t, c, b0, n) in b["voice_log"].log],
        "frames_out": [(t, (c or {}).get("frame"), (c or {}).get("primary")) for (t, c, b0, n) in b["frame_log"].log],
        "reports_sent": [dict(t=t, **(c or {})) for (t, c, b0, n) in b["rep_log"].log],
        "feedback_received": [dict(t=t, **(c or {})) for (t, c, b0, n) in b["fb_log"].log],
        # the module's own latency fields (host monotonic clock; clock_offset = time.time() - monotonic)
        "clock_offset": b["clock_offset"],
        "sent_meta": b["voice_valve"].meta,             # (frame, capture_time) per voice packet sent
        "latency_msgs": [c for (t, c, b0, n) in b["lat_log"].log],
        "rx_latency": b["rx"].latency(),
        "tx_latency": mtx.tx_latency(),
        "tx_lateness": mtx.framer.lateness(),
        "playout_start_times": b["play"].times,
        "output_calls": b["play"].calls,
        "timeline": timeline,
        "gc_pauses": b["gc"],
    }


def gc_pauses():
    """Records each garbage collection: (time, generation, seconds). A collection holds the
    interpreter lock, so every Python block (the codec's included) waits for it."""
    log, start = [], [0.0]

    def cb(phase, info):
        if phase == "start":
            start[0] = time.perf_counter()
        else:
            log.append((time.time(), info["generation"], time.perf_counter() - start[0]))
    gc.callbacks.append(cb)
    return log


def main():
    role, out, stopfile = sys.argv[1], sys.argv[2], sys.argv[3]  # stopfile + ".mute": stop talking
    b = build(role)
    b["gc"] = gc_pauses()
    b["clock_offset"] = time.time() - time.monotonic()
    ctl = b["tx"].controller
    timeline = []

    def poll():
        timeline.append(dict(t=time.time(), loss_rate=ctl.loss_rate(), mean_burst=ctl.mean_burst(),
                             state=ctl.feedback_state(), feedback_in=ctl.feedback_in(), plan=ctl.speech_plan()))

    def mute():
        b["voice_valve"].open = b["fb_valve"].open = False
        b["t_mute"] = time.time()

    def settle(timeout=120.0, quiet=0.5):
        """Stops the playout clock (no more lost frames after the talk stopped), then waits
        until every frame played out is decoded and its audio consumed, and nothing has
        changed for `quiet` seconds (frames still queued in the decoder are not counted yet)."""
        rx, end = b["rx"], time.time() + timeout
        if rx.clock is not None:
            rx.clock.stop()
        last, since = None, time.time()
        while time.time() < end:
            now = (rx.decoder.stats()["frames_in"], rx.depacketizer.frames_out(), rx.decoder.stream_samples(),
                   b["play"].n)
            if now != last:
                last, since = now, time.time()
            elif now[0] == now[1] and now[2] == now[3] and time.time() - since >= quiet:
                return
            time.sleep(0.05)

    t0, t1, clean = C.run_until_stopped(b["tb"], stopfile, poll, 1.0, stopfile + ".mute", mute, settle)
    C.write_json(out, report(role, b, t0, t1, clean, timeline))
    os._exit(0)


if __name__ == "__main__":
    main()
