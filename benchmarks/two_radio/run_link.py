"""Orchestrator: starts air, node B, node A as separate processes; runs DURATION s after all are
started; stops them via a stop file (A first, then B and air); prints one JSON object."""

import json
import os
import subprocess
import sys
import tempfile
import time
import statistics as st

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable  # the venv's python: run this script with .venv/bin/python3
DURATION = float(os.environ.get("DURATION", "60"))
EBN0 = float(os.environ.get("EBN0", "13"))
# per-run files (each process's JSON, logs, stop files); not in the source tree
RUN = os.environ.get("TWO_RADIO_RUN", os.path.join(tempfile.gettempdir(), "largesc-two-radio"))
os.makedirs(RUN, exist_ok=True)


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def main():
    for f in os.listdir(RUN):
        os.remove(os.path.join(RUN, f))
    stop_a, stop_rest = os.path.join(RUN, "stop_a"), os.path.join(RUN, "stop_rest")
    procs = {}
    for role, script, args, stop in (
        ("air", "air.py", [str(EBN0)], stop_rest),
        ("B", "node_b.py", [], stop_rest),
        ("A", "node_a.py", [], stop_a),
    ):
        env = dict(os.environ, READY_FILE=os.path.join(RUN, role + ".ready"), OMP_NUM_THREADS="1")
        log = open(os.path.join(RUN, role + ".log"), "w")
        procs[role] = subprocess.Popen(
            [PY, os.path.join(HERE, script), os.path.join(RUN, role + ".json"), stop] + args,
            cwd=HERE,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    t_launch = time.time()
    while not all(os.path.exists(os.path.join(RUN, r + ".ready")) for r in procs):
        for r, p in procs.items():
            if p.poll() is not None:
                sys.exit(f"{r} exited early rc={p.returncode}; see {RUN}/{r}.log")
        time.sleep(0.1)
    t_all = time.time()
    load0 = open("/proc/loadavg").read().split()[:3]
    time.sleep(DURATION)
    open(stop_a, "w").close()
    procs["A"].wait(30)
    time.sleep(2.0)  # let in-flight packets and playout drain
    open(stop_rest, "w").close()
    for r in ("B", "air"):
        procs[r].wait(30)
    load1 = open("/proc/loadavg").read().split()[:3]
    R = {r: json.load(open(os.path.join(RUN, r + ".json"))) for r in procs}
    out = analyse(R, t_launch, t_all)
    out["setup"]["loadavg_start_end"] = [load0, load1]
    print(json.dumps(out, indent=1))


def unwrap_sent(sent):
    out, base, prev = [], 0, None
    for t, b0, n in sent:
        if prev is not None and b0 < prev - 128:
            base += 256
        prev = b0
        out.append((t, base + b0, n))
    return out


def analyse(R, t_launch, t_all):
    A, B, air = R["A"], R["B"], R["air"]
    sent = unwrap_sent(A["sent_packets"])  # (t, frame index, bytes) by the packetizer
    t_stop_a = A["t_stop"]
    # match each delivered voice packet to the last sent packet with the same seq mod 256 sent before it
    recv = {}
    lat_air = []
    by_mod = {}
    for t, idx, n in sent:
        by_mod.setdefault(idx % 256, []).append((t, idx))
    for t, b0, n in B["voice_packets"]:
        cands = [c for c in by_mod.get(b0, []) if c[0] <= t]
        if not cands:
            continue
        ts, idx = cands[-1]
        if idx not in recv:
            recv[idx] = t
            lat_air.append(t - ts)
    # count only packets sent by A at least 1.5 s before A stopped (the rest may be in flight)
    counted = [(t, idx) for t, idx, n in sent if t <= t_stop_a - 1.5]
    lost = [idx for t, idx in counted if idx not in recv]
    meas_loss = len(lost) / max(1, len(counted))
    # bursts of the measured losses
    bursts, run = [], 0
    for t, idx in counted:
        if idx in recv:
            if run:
                bursts.append(run)
                run = 0
        else:
            run += 1
    if run:
        bursts.append(run)
    # feedback
    reps_b = B["reports_sent"]
    reps_a = A["feedback_received"]
    seq_b = {}
    # feedback_encoder numbers the packets 0,1,... in order of the reports it takes
    for i, r in enumerate(reps_b):
        seq_b[i % 256] = r
    med_air = st.median(lat_air) if lat_air else 0.0
    fb_cmp = []
    for r in reps_a:
        s = r.get("feedback_seq")
        rb = seq_b.get(s)
        # true loss over the report's window: A packets sent in the window ending (report send time - air latency)
        if rb is None:
            continue
        w = int(rb.get("window", 0))
        t_end = rb["t"] - med_air - 0.08 * 1  # playout delay 1 frame
        win = [idx for t, idx in counted if t <= t_end][-w:] if w else []
        true = (sum(1 for i in win if i not in recv) / len(win)) if win else None
        fb_cmp.append(
            dict(
                seq=s,
                t_rel=round(r["t"] - t_all, 2),
                reported_loss=round(r.get("loss_rate", -1), 4),
                reported_burst=round(r.get("mean_burst", -1), 3),
                window=w,
                measured_loss_same_window=None if true is None else round(true, 4),
                feedback_delay_s=round(r["t"] - rb["t"], 3),
            )
        )
    tl = A["timeline"]
    ctl_track = [
        dict(
            t_rel=round(x["t"] - t_all, 1),
            loss_rate=round(x["loss_rate"], 4),
            mean_burst=round(x["mean_burst"], 3),
            state=x["state"],
            plan=x["plan"],
        )
        for x in tl[::5]
    ]
    # per-frame end-to-end latency: end of capture of frame i at A -> start of its playout at B
    cap, play = A["capture_end_times"], B["playout_start_times"]
    lat = [(cap[i] - t_all, play[i] - cap[i]) for i in range(min(len(cap), len(play))) if i in recv]
    lat_v = [l for _, l in lat]
    sent_t = {idx: t for t, idx, n in sent}
    comp = [
        (cap[i] - t_all, sent_t[i] - cap[i], recv[i] - sent_t[i], play[i] - recv[i])
        for i in range(min(len(cap), len(play)))
        if i in recv and i in sent_t
    ]

    def seg(j, lo, hi):
        v = [c[j] for c in comp if lo <= c[0] < hi]
        return round(st.median(v), 3) if v else None

    parts = {
        name: dict(median=seg(j, -1e9, 1e9), first_10s=seg(j, -1e9, 10), last_10s=seg(j, DURATION - 10, 1e9))
        for j, name in (
            (1, "capture_to_packet_sent_A"),
            (2, "packet_sent_A_to_delivered_B"),
            (3, "delivered_B_to_playout_B"),
        )
    }
    first = [l for t, l in lat if t < 10]
    last = [l for t, l in lat if t > DURATION - 10]
    dep = B["rx_counters"]
    dec = dep.get("decoder", {}) if isinstance(dep, dict) else {}
    fb_sent, fb_got = len(reps_b), A["sorter"].get("feedback_out")
    return {
        "setup": dict(
            duration_s=DURATION,
            ebn0_db=EBN0,
            samp_rate=80000,
            bit_rate=10000,
            budget=1100,
            weights="random:0",
            audio="Debian LibriVox demo clips, looped (untrained codec: not speech quality)",
            startup_s=round(t_all - t_launch, 1),
        ),
        "A": dict(
            encoder_frames_out=A["encoder_frames_out"],
            packets_sent_packetizer=A["packetizer_packets_out"],
            modem_tx_packets_in=A["modem_tx"]["packets_in"],
            modem_tx_samples_out=A["modem_tx"]["samples_out"],
            modem_tx_sample_rate=round(A["modem_tx"]["samples_out"] / (A["t_stop"] - A["t_start"]), 1),
            reverse_modem_rx=A["rev_modem_rx"],
            sorter=A["sorter"],
        ),
        "air": {k: air[k] for k in ("noise_voltage", "fwd", "rev")},
        "B": dict(
            modem_rx=B["modem_rx"],
            sorter=B["sorter"],
            voice_packets_delivered=len(B["voice_packets"]),
            decoded_frames=dec.get("frames_decoded", dec),
            decoder=dec,
            depacketizer={k: v for k, v in dep.items() if k != "decoder"} if isinstance(dep, dict) else dep,
            audio_seconds_out=round(B["audio_samples_out"] / 16000, 2),
            feedback_encoder=B["feedback_encoder"],
            reverse_modem_tx=B["rev_modem_tx"],
        ),
        "packet_loss_measured": dict(
            packets_counted=len(counted),
            lost=len(lost),
            loss_rate=round(meas_loss, 4),
            mean_burst=round(st.mean(bursts), 3) if bursts else 0.0,
            air_latency_s=dict(
                median=round(med_air, 3),
                p95=round(pct(lat_air, 0.95) or 0, 3),
                max=round(max(lat_air), 3) if lat_air else None,
            ),
        ),
        "feedback": dict(
            reports_sent_by_B=fb_sent,
            reports_delivered_to_A=fb_got,
            report_loss=None if not fb_sent else round(1 - (fb_got or 0) / fb_sent, 3),
            sorter_reports_lost_A=A["sorter"].get("reports_lost"),
            controller_feedback_in=A["controller"]["feedback_in"],
            reported_loss_values_B=[round(r.get("loss_rate", -1), 4) for r in reps_b],
            reports_at_A_vs_measured=fb_cmp,
        ),
        "controller": dict(
            final=A["controller"],
            final_vs_measured=dict(
                controller_loss_rate=round(A["controller"]["loss_rate"], 4),
                measured_loss_rate=round(meas_loss, 4),
            ),
            track_every_5s=ctl_track,
        ),
        "latency_capture_to_playout_s": dict(
            frames=len(lat_v),
            median=round(st.median(lat_v), 3) if lat_v else None,
            p95=round(pct(lat_v, 0.95), 3) if lat_v else None,
            min=round(min(lat_v), 3) if lat_v else None,
            max=round(max(lat_v), 3) if lat_v else None,
            median_first_10s=round(st.median(first), 3) if first else None,
            median_last_10s=round(st.median(last), 3) if last else None,
            components=parts,
        ),
        "air_throttle_rates": dict(
            fwd=round(air["fwd"]["rate_through_throttle"], 1),
            rev=round(air["rev"]["rate_through_throttle"], 1),
        ),
    }


if __name__ == "__main__":
    main()
