#!/usr/bin/env python3
"""Two radios, one conversation, on one machine (issue 22, item 7).

Starts three processes that exchange complex baseband over GNU Radio's ZeroMQ blocks on 127.0.0.1:
node A and node B (two_radio/node.py: each talks and listens, full duplex, its loss reports about
what it hears going back through its own modem) and the air (two_radio/air.py: for each direction a
throttle at the modem's 80 kS/s standing in for the radios' sample clock, then AWGN at EBN0).
Runs DURATION seconds after all three are up, then both nodes stop talking (valves close), the air
drains for DRAIN seconds, everything stops, and one JSON object is printed: per direction the frames
encoded, packets sent, delivered, lost, the frames decoded, the loss rate measured by matching every
sent packet, feedback reports sent, delivered and lost, the controller's loss estimate against the
measured loss, capture-to-playout latency per frame, CPU per process, the machine's CPU over the
talk (`machine_cpu`: its busy cores, the benchmark's, anything else's, the hypervisor's steal), and
`checks`: every count that must add up exactly, with its two sides.

    DURATION=60 EBN0=13 .venv/bin/python3 benchmarks/two_radio.py > two_radio.json

Other settings: DRAIN (s, default 3), TALK_AFTER (s after its node's flowgraph started that each
talker starts talking, default 2: a radio that is on before the call; 0 = at once, and the first
second carries the processes' warm-up), CODEC_MODE (Mimi's step, default exact), JITTER_MS
(largesc_rx's playout clock, default the block's, 80; 0 = frames leave as packets arrive), DECODE_LEAD_MS
(largesc_rx's decode lead, default the block's, 80; 0 = frames leave at their playout time), FIXED_RATE
(largesc_rx's fixed_rate_output, default 1; 0 = each frame leaves at its playout time), PRIME_MS
(largesc_rx's output_prime_ms, default 0: silence ahead of the stream for a sound card), NICE (the
processes' niceness, default 0; -10 lets other jobs on the machine yield to the link: needs root or
CAP_SYS_NICE), TWO_RADIO_PORT,
RECOVERY (hold, or lm: the tiny LM, UNTRAINED, on the CPU), CODEC_THREADS (torch threads of each node's
Mimi, default 1), TALKERS ("A,B" full duplex, the
default; "A": B only listens, so the machine carries one encoder and one decoder, the codec load of
one full-duplex node on its own machine; only A -> B is reported),
OUTAGE="AT,LEN" (the A -> B signal gone, noise only, from AT s after start for LEN s: latency in
the first second after it and the 10 s after that).

The codec is the UNTRAINED random-weight Mimi: the audio is not speech and says nothing about
quality. Per-run files (each process's JSON and log) go to $TWO_RADIO_RUN (default
/tmp/largesc-two-radio); `benchmarks/two_radio/README.md` and docs/two_radio.md have the figures."""

import bisect
import json
import os
import statistics as st
import subprocess
import sys
import tempfile
import time

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "two_radio")
PY = sys.executable  # the venv's python: run this script with .venv/bin/python3
DURATION = float(os.environ.get("DURATION", "60"))
EBN0 = float(os.environ.get("EBN0", "13"))
DRAIN = float(os.environ.get("DRAIN", "3"))   # seconds between "stop talking" and "stop"
SETTLE = 5.0                                  # the controller is judged from this many seconds on
RUN = os.environ.get("TWO_RADIO_RUN", os.path.join(tempfile.gettempdir(), "largesc-two-radio"))
FRAME_S = 0.08
AUDIO_RATE = 16000                            # the nodes' audio rate (two_radio/common.py)
# OUTAGE="AT,LEN": the A -> B signal is gone (noise only) from AT s after start for LEN s
TALKERS = tuple(r.strip() for r in os.environ.get("TALKERS", "A,B").split(",") if r.strip())  # as common.py
OUTAGE = tuple(float(x) for x in os.environ["OUTAGE"].split(",")) if os.environ.get("OUTAGE") else None
# NICE=-10: the three processes run at that niceness (below 0 needs root or CAP_SYS_NICE), so that
# other jobs on the machine yield to the link; 0 (the default) leaves them as they are
NICE = int(os.environ.get("NICE", "0"))


def pct(v, q):
    """The q-quantile of v (nearest rank), None if empty."""
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def rnd(x, n=4):
    return None if x is None else round(x, n)


# ------------------------------------------------------------------ run

def launch():
    """Starts air, B and A; returns (processes, time all were ready)."""
    os.makedirs(RUN, exist_ok=True)
    for f in os.listdir(RUN):
        os.remove(os.path.join(RUN, f))
    stop = os.path.join(RUN, "stop")
    procs = {}
    for role, script, args in (("air", "air.py", [str(EBN0)]), ("B", "node.py", ["B"]), ("A", "node.py", ["A"])):
        env = dict(os.environ, READY_FILE=os.path.join(RUN, role + ".ready"), OMP_NUM_THREADS="1")
        out = [os.path.join(RUN, role + ".json"), stop]
        argv = [PY, os.path.join(HERE, script)] + (args[:1] + out if role != "air" else out + args)
        log = open(os.path.join(RUN, role + ".log"), "w")
        try:
            procs[role] = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           preexec_fn=(lambda: os.nice(NICE)) if NICE else None)
        except (subprocess.SubprocessError, OSError) as e:
            kill(procs)
            sys.exit(f"cannot start {role} at NICE={NICE} ({e}): a niceness below 0 needs root or "
                     f"CAP_SYS_NICE; leave NICE at 0")
    while not all(os.path.exists(os.path.join(RUN, r + ".ready")) for r in procs):
        for r, p in procs.items():
            if p.poll() is not None:
                kill(procs)
                sys.exit(f"{r} exited early rc={p.returncode}; see {RUN}/{r}.log")
        time.sleep(0.1)
    return procs, time.time()


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def cpu_snapshot(procs):
    """(time, the machine's CPU jiffies {busy, idle, steal} and the benchmark processes' major
    page faults {majflt}, {role: the process's jiffies}) from /proc; None where /proc is not
    there (not Linux)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        own, majflt = {}, 0
        for r, p in procs.items():
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own[r] = int(fields[11]) + int(fields[12])          # utime + stime
            majflt += int(fields[9])                            # pages read back from disk
    except (OSError, ValueError, IndexError):
        return None
    idle = v[3] + v[4]                                          # idle + iowait
    steal = v[7] if len(v) > 7 else 0
    return time.time(), dict(busy=sum(v[:8]) - idle - steal, idle=idle, steal=steal, majflt=majflt), own


def machine_load(a, b):
    """Cores in use over the run, between two cpu_snapshot()s: by the machine, by the
    benchmark's processes, by anything else on the machine, and taken by the hypervisor
    (steal): a run with other_cores well above 0 shared the machine; and the benchmark
    processes' major page faults (code or data the kernel had dropped, read back from disk:
    each one stalls its thread)."""
    if a is None or b is None or b[0] <= a[0]:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    dt = b[0] - a[0]
    busy = (b[1]["busy"] - a[1]["busy"]) / hz / dt
    ours = sum(b[2][r] - a[2][r] for r in a[2]) / hz / dt
    return dict(cores=os.cpu_count(), seconds=round(dt, 1), busy_cores=round(busy, 2),
                benchmark_cores=round(ours, 2), other_cores=round(max(0.0, busy - ours), 2),
                steal_cores=round((b[1]["steal"] - a[1]["steal"]) / hz / dt, 2),
                major_faults=b[1]["majflt"] - a[1]["majflt"])


def machine_cpu(snaps):
    """machine_load() over the whole list of cpu_snapshot()s (one a second), with `per_minute`:
    the same for each minute (a last part under 10 s left out): was the machine shared, and when."""
    marks = [x for x in snaps if x is not None]
    if len(marks) < 2:
        return None
    out = machine_load(marks[0], marks[-1])
    if out is not None:
        out["per_minute"] = []
        t0, a = marks[0][0], marks[0]
        for b in marks[1:]:
            if b[0] - a[0] >= 60.0 - 0.5 or b is marks[-1]:
                m = machine_load(a, b)
                if m is not None and b[0] - a[0] >= 10.0:
                    m.pop("cores")
                    out["per_minute"].append(dict(minute=round((a[0] - t0) / 60.0), **m))
                a = b
    return out


def kill(procs):
    for p in procs.values():
        if p.poll() is None:
            p.kill()


def run():
    """The whole run; returns ({role: its JSON}, t_launch, t_all_ready, loadavg, outage (start, end)
    wall times or None, machine_load() over the talk)."""
    t_launch = time.time()
    procs, t_all = launch()
    stop = os.path.join(RUN, "stop")
    load0 = loadavg()
    snaps = [cpu_snapshot(procs)]                 # the machine's CPU, every second of the talk

    def wait_until(t):
        while time.time() < t:
            time.sleep(min(1.0, max(0.0, t - time.time())))
            snaps.append(cpu_snapshot(procs))
    outage = None
    try:
        if OUTAGE:                                # A -> B loses its signal for a while (air.py)
            at, length = OUTAGE
            wait_until(time.time() + at)
            open(stop + ".outage", "w").close()
            o0 = time.time()
            wait_until(o0 + length)
            os.remove(stop + ".outage")
            outage = (o0, time.time())
        wait_until(t_all + DURATION)
        open(stop + ".mute", "w").close()        # both nodes stop talking
        time.sleep(DRAIN)                         # what was sent crosses the air
        open(stop, "w").close()
        for r in ("A", "B", "air"):
            procs[r].wait(60)
    finally:
        kill(procs)
    load1 = loadavg()
    for r, p in procs.items():
        if p.returncode != 0:
            sys.exit(f"{r} failed rc={p.returncode}; see {RUN}/{r}.log")
    R = {}
    for r in procs:
        with open(os.path.join(RUN, r + ".json")) as f:
            R[r] = json.load(f)
    return R, t_launch, t_all, [load0, load1], outage, machine_cpu(snaps)


# ------------------------------------------------------------------ analysis

def unwrap(log):
    """[(t, seq byte, n)] in sending order -> [(t, frame index)] (seq counts 0, 1, ... mod 256)."""
    out, base, prev = [], 0, None
    for t, b0, _n in log:
        if prev is not None and b0 < prev - 128:
            base += 256
        prev = b0
        out.append((t, base + b0))
    return out


def match(sent, arrived):
    """{index: arrival time} of the sent packets (t, index) that arrived ([(t, seq byte, n)]):
    each arrival is the latest packet with that seq sent before it."""
    by_mod = {}
    for t, idx in sent:
        by_mod.setdefault(idx % 256, []).append((t, idx))
    got = {}
    for t, b0, _n in arrived:
        cands = [c for c in by_mod.get(b0, []) if c[0] <= t]
        if cands and cands[-1][1] not in got:
            got[cands[-1][1]] = t
    return got


def bursts(flags):
    """Lengths of the runs of True in flags."""
    out, run = [], 0
    for f in flags:
        if f:
            run += 1
        elif run:
            out.append(run)
            run = 0
    return out + ([run] if run else [])


def direction(T, L, t_all, outage=None):
    """Figures and exact checks of one direction: talker T's speech heard by listener L."""
    sent = unwrap(T["sent_packets"])
    got = match(sent, L["voice_packets"])
    lost_flags = [idx not in got for _t, idx in sent]
    lost = sum(lost_flags)
    lat_air = [got[i] - t for t, i in sent if i in got]
    lt, ll = T["talk"], L["listen"]
    rxc = ll["rx_counters"]
    dec = rxc["decoder"]
    frames = L["frames_out"]                       # (t, frame, primary) as L played them out
    sent_idx = {i for _t, i in sent}
    played = {f: bool(p) for _t, f, p in frames}
    # the listener's view: packets accepted in time, frames it played without their own packet
    # (lost, or late: after the playout clock let the frame go), sent frames it never played out
    # and never got (before the first packet it heard, or after the last)
    missing = sum(1 for i in sent_idx if i in played and not played[i])
    never_played = sum(1 for i in sent_idx if i not in played and i not in got)
    srt = ll["sorter"]
    checks = {
        "sent = accepted + played lost + never played (listener's counts)": [
            len(sent), rxc["packets_accepted"] + missing + never_played],
        "each delivered packet is a distinct sent one": [len(got), srt["voice_out"]],
        "frames played with their packet that never arrived": [
            sum(1 for i in sent_idx if played.get(i) and i not in got), 0],
        "frames played lost although their packet arrived = late packets": [
            sum(1 for i in sent_idx if i in played and not played[i] and i in got), rxc["late"]],
        "talker packets_out = sent + held back at the stop": [lt["packets_sent"], len(sent) + lt["voice_held_back"]],
        "modem_tx packets_in = voice + report packets sent": [
            lt["modem_tx"]["packets_in"], lt["voice_sent"] + lt["report_packets_sent"]],
        "modem_rx packets_out = sorter packets_in": [ll["modem_rx"]["packets_out"], srt["packets_in"]],
        "sorter packets_in = voice + feedback + rejected": [
            srt["packets_in"], srt["voice_out"] + srt["feedback_out"] + srt["rejected"]],
        "depacketizer packets_in = sorter voice_out": [rxc["packets_in"], srt["voice_out"]],
        "depacketizer: in = accepted + dup + late + malformed + held": [
            rxc["packets_in"], rxc["packets_accepted"] + rxc["duplicates"] + rxc["late"] + rxc["malformed"] + rxc["held"]],
        "decoder frames_in = depacketizer frames_out": [dec["frames_in"], rxc["frames_out"]],
        "audio samples = decoder samples_out + fixed-rate primes + slips (in - out)": [
            ll["audio_samples_out"], dec["samples_out"] + rxc.get("playout", {}).get("samples_primed", 0)
            + rxc.get("playout", {}).get("samples_inserted", 0) - rxc.get("playout", {}).get("samples_dropped", 0)],
    }
    if rxc.get("recovery"):
        checks["recovery frames in = out = depacketizer frames_out"] = [
            [rxc["recovery"]["frames_in"], rxc["recovery"]["frames_out"]], [rxc["frames_out"]] * 2]
    checks.update(latency_checks(T, L, sent, rxc))
    fb = feedback(T, L, sent, got, t_all)
    lat = latency(T, L, sent, got, t_all, outage)
    checks.update(fb.pop("checks"))
    return {
        "frames_encoded": lt["encoder_frames_out"],
        "packets_sent": len(sent),
        "packets_delivered": len(got),
        "packets_lost": lost,
        "frames_played_out": rxc["frames_out"],
        "frames_decoded": dec["frames_decoded"],
        "audio_s": round(ll["audio_samples_out"] / 16000, 2),
        "packet_loss": dict(rate=rnd(lost / max(1, len(sent))), mean_burst=rnd(st.mean(bursts(lost_flags)), 3)
                            if lost else 0.0, crc_failures=ll["modem_rx"]["crc_failures"],
                            frames_detected=ll["modem_rx"]["frames_detected"]),
        "air_latency_s": dict(median=rnd(st.median(lat_air), 3) if lat_air else None, p95=rnd(pct(lat_air, .95), 3)),
        "arrival_jitter_s": jitter(got),
        "feedback": fb,
        "latency_capture_to_playout_s": lat,
        "depacketizer": {k: v for k, v in rxc.items() if k not in ("decoder", "recovery")},
        # token recovery at the listener: frames_late (past the deadline, filled by hold), late_restarts
        "recovery": rxc.get("recovery"),
        "checks": checks,
    }


def jitter(got):
    """How much later than the least delayed packet each packet arrived (its arrival - frame x 80 ms,
    less the smallest such value): what the playout clock's jitter buffer must ride out."""
    if not got:
        return {}
    off = [t - i * FRAME_S for i, t in got.items()]
    lo = min(off)
    v = [o - lo for o in off]
    return dict(p50=rnd(st.median(v), 3), p95=rnd(pct(v, .95), 3), p99=rnd(pct(v, .99), 3), max=rnd(max(v), 3))


def talking_state(T):
    """The talker's controller's feedback state at its last poll before it stopped talking."""
    t_mute = T["talk"].get("t_mute") or float("inf")
    states = [x["state"] for x in T["timeline"] if x["t"] <= t_mute]
    return states[-1] if states else None


def unwrap_seqs(seqs):
    """8-bit numbers in arrival order (increasing mod 256, gaps < 128) -> 0, 1, ... unwrapped."""
    out, base, prev = [], 0, None
    for s in seqs:
        if prev is not None and s < prev - 128:
            base += 256
        prev = s
        out.append(base + s)
    return out


def feedback(T, L, sent, got, t_all):
    """Reports L sent about T's speech, what reached T, and T's controller against the measured loss."""
    rep = L["reports_sent"]                       # as L's depacketizer made them, in order
    n_sent = L["talk"]["reports_sent"]            # passed L's valve into its modem
    recv = T["feedback_received"]                 # as T's sorter passed them on (feedback_seq)
    seqs = unwrap_seqs([r.get("feedback_seq") for r in recv])  # report numbers are 8-bit: unwrapped
    delivered = len(set(seqs))
    first, last = (min(seqs), max(seqs)) if seqs else (0, -1)   # numbered from 0
    srt = T["listen"]["sorter"]
    # T's controller at each second from SETTLE on, against the loss of the last window of packets T sent
    idx_t = [(t, i) for t, i in sent]
    errs = []
    for x in T["timeline"]:
        if x["t"] - t_all < SETTLE or x["state"] == "initial":
            continue
        w = [i for t, i in idx_t if t <= x["t"] - 0.5][-125:]
        if len(w) < 25:
            continue
        meas = sum(1 for i in w if i not in got) / len(w)
        errs.append(abs(x["loss_rate"] - meas))
    return {
        "reports_made": len(rep), "reports_sent": n_sent, "reports_delivered": delivered,
        "reports_lost": n_sent - delivered,
        "delivery": rnd(delivered / n_sent if n_sent else None, 3),
        "controller_final_loss": rnd(T["talk"]["controller"]["loss_rate"]),
        "controller_state_at_stop": T["talk"]["controller"]["state"],
        "controller_state_talking": talking_state(T),
        "controller_vs_measured_after_5s": dict(points=len(errs), max_abs_error=rnd(max(errs) if errs else None),
                                                p95_abs_error=rnd(pct(errs, .95))),
        "checks": {
            "report packets sent = encoder packets_out - held back": [
                L["talk"]["report_packets_sent"],
                L["talk"]["feedback_encoder"]["packets_out"] - L["talk"]["reports_held_back"]],
            "reports delivered once each": [len(seqs), delivered],
            "reports delivered = talker's sorter feedback_out": [delivered, srt["feedback_out"]],
            "reports delivered = talker's controller feedback_in": [delivered, T["talk"]["controller"]["feedback_in"]],
            "report gaps seen by the talker = reports lost between the first and last delivered": [
                srt["reports_lost"], (last - first + 1) - delivered if seqs else 0],
            "reports delivered that were never sent": [sum(1 for s in seqs if s >= n_sent), 0],
        },
    }


def latency(T, L, sent, got, t_all, outage=None):
    """Capture of a frame's last sample at T to its first output sample at L, per delivered frame,
    and its parts: capture to packet out of the packetizer, packet to the listener's sorter,
    sorter to output (playout buffer, recovery, decoder). Capture times are the module's own
    (the encoder's capture_time, on the packets' metadata), output times L's output clock;
    `module` is the same measured by the module alone (the decoder's latency messages)."""
    off_t = T["clock_offset"]
    cap_mono = {m[0]: m[1] for m in T["sent_meta"] if m[0] is not None and m[1] is not None}
    cap = {i: c + off_t for i, c in cap_mono.items()}
    # when each frame's first sample reached L's output: the decoder's out_sample (the output
    # sample it became: the fixed-rate stream slips) on L's output clock
    starts = [c[0] for c in L["output_calls"]]
    play = {}
    for m in L["latency_msgs"]:
        if m and m.get("frame") is not None and m.get("out_sample") is not None and starts:
            k = bisect.bisect_right(starts, m["out_sample"]) - 1
            if k >= 0:
                play[m["frame"]] = L["output_calls"][k][1]
    sent_t = {i: t for t, i in sent}
    idx = [i for i in sorted(play) if i in got and i in sent_t and i in cap]
    if len(idx) < 2:
        return {}
    lat = [(cap[i] - t_all, play[i] - cap[i]) for i in idx]
    v = [x for _, x in lat]
    parts = {}
    for name, a, b in (("capture_to_packet", cap, sent_t), ("packet_to_listener", sent_t, got),
                       ("listener_to_output", got, play)):
        w = [b[i] - a[i] for i in idx]
        parts[name] = dict(p50=rnd(st.median(w), 3), p95=rnd(pct(w, .95), 3))
    out = dict(frames=len(lat), **summary(v), slope_ms_per_min=slope_ms_per_min(lat), parts=parts)
    if DURATION >= 120:     # a soak: each minute (by capture time from the start), to see when it moved
        out["per_minute"] = [dict(minute=k, frames=len(w), **summary(w)) for k, w in enumerate(
            [x for t, x in lat if k * 60 <= t < (k + 1) * 60] for k in range(int(max(t for t, _ in lat) // 60) + 1)) if w]
    # the module alone: capture_time (T's encoder) to out_time (L's decoder), one clock
    msgs = [m for m in L["latency_msgs"] if m and m.get("frame") is not None]
    c2o = [(cap_mono[m["frame"]] + off_t - t_all, m["out_time"] - cap_mono[m["frame"]])
           for m in msgs if m["frame"] in cap_mono]
    r2o = [m["receive_to_output_ms"] / 1000.0 for m in msgs if m.get("receive_to_output_ms") is not None]
    # receive to output in two: the frame's first packet to its playout time (the jitter buffer),
    # its playout time to its first sample out (recovery and decoder past the decode lead)
    r2p = [m["play_time"] - m["rx_time"] for m in msgs if m.get("play_time") is not None and m.get("rx_time") is not None]
    p2o = [m["out_time"] - m["play_time"] for m in msgs if m.get("play_time") is not None]
    # the fixed-rate output: its line against the playout clock, and the decoder's lateness on it
    p2d = [m["due_time"] - m["play_time"] for m in msgs if m.get("due_time") is not None]
    d2o = [m["out_time"] - m["due_time"] for m in msgs if m.get("due_time") is not None]
    out["module"] = dict(
        frames=len(c2o), capture_to_output=dict(**summary([x for _, x in c2o]), slope_ms_per_min=slope_ms_per_min(c2o)),
        receive_to_output=summary(r2o), receive_to_play_time=summary(r2p), play_time_to_output=summary(p2o),
        play_time_to_due=summary(p2d), due_to_output=summary(d2o),
        tx_capture_to_send_ms=T["tx_latency"],
        late_packets=msgs[-1].get("late_packets") if msgs else None)
    # a fixed-rate sink (sound card) started with the first frame needs this much buffer never to
    # underrun: each piece of the output stream (as the listener's
    # sink took it) is due at line + its first sample / 16 kHz; the line is the stream's median
    # (a piece that came early, such as a slip's samples, only fills the buffer); from SETTLE s on
    # until the talker stopped talking (then the call ends: the clock stops, the last frames flush)
    t_end = T["talk"].get("t_mute") or float("inf")
    steady = [t - n0 / AUDIO_RATE for n0, t in L["output_calls"] if t - t_all >= SETTLE and t <= t_end]
    out["sink_buffer_needed_ms"] = round(1000 * (max(steady) - st.median(steady)), 1) if steady else None
    # a sound card started by the stream's first sample (the output prime, if any, is in the
    # stream), with this much more audio in its buffer than the stream gave it (a larger prime)
    out["sink_underruns_by_extra_buffer_ms"] = {
        str(ms): card_underruns(L["output_calls"], t_end, ms / 1000.0) for ms in SINK_EXTRA_MS}
    if outage:
        o0, o1 = outage
        after = [(cap[i] - o1, play[i] - cap[i]) for i in idx if cap[i] >= o1]
        out["outage"] = dict(
            start_s=round(o0 - t_all, 2), length_s=round(o1 - o0, 2),
            first_second_after=summary([x for t, x in after if t < 1.0]),
            next_10_s=summary([x for t, x in after if 1.0 <= t < 11.0]),
            frames_lost=sum(1 for i in sent_t if i not in got and o0 <= cap.get(i, 0) < o1))
    return out


SINK_EXTRA_MS = (0, 50, 100, 150, 200, 300)


def card_underruns(calls, t_end, extra_s=0.0, tol_s=0.002):
    """A fixed-rate sink (a sound card) fed the listener's output pieces [(first sample, time
    taken)] until t_end: it starts playing with the first piece, extra_s later, and plays
    sample n at T + n / AUDIO_RATE. A piece taken more than tol_s after its first sample was
    due underruns it; the card then plays on from when the piece came (ALSA's recovery), so
    T moves later by the gap and the next underrun needs a later piece still. Returns the
    underruns' count, their total (the delay the card added over the call) and the largest."""
    T, gaps = None, []
    for n0, t in calls:
        if t > t_end:
            break
        if T is None:
            T = t - n0 / AUDIO_RATE + extra_s
            continue
        late = t - (T + n0 / AUDIO_RATE)
        if late > tol_s:
            gaps.append(late)
            T += late
    return dict(count=len(gaps), total_ms=round(1000 * sum(gaps), 1),
                max_ms=round(1000 * max(gaps), 1) if gaps else 0.0)


def summary(v):
    """p50/p95/max of v (seconds, 3 decimals)."""
    if not v:
        return dict(p50=None, p95=None, max=None)
    return dict(p50=rnd(st.median(v), 3), p95=rnd(pct(v, .95), 3), max=rnd(max(v), 3))


def slope_ms_per_min(pts):
    """Least-squares slope of [(t, latency)] in ms per minute."""
    if len(pts) < 2:
        return None
    n = len(pts)
    mt, mv = sum(t for t, _ in pts) / n, sum(x for _, x in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    return round(60e3 * sum((t - mt) * (x - mv) for t, x in pts) / var, 1) if var else 0.0


def latency_checks(T, L, sent, rxc):
    """The latency fields' presence and order (issue 23): every voice packet sent carries its
    frame's index (= its on-air index) and capture_time, never decreasing; one latency message per
    frame that brought tokens, frames increasing, out_time never decreasing."""
    meta = T["sent_meta"]
    caps = [m[1] for m in meta]
    msgs = [m for m in L["latency_msgs"] if m]
    frames = [m.get("frame") for m in msgs]
    outs = [m.get("out_time") for m in msgs]
    return {
        "voice packets sent with capture_time = voice packets sent": [sum(c is not None for c in caps), len(sent)],
        "packet metadata frame = on-air index": [sum(m[0] == i for m, (_, i) in zip(meta, sent)), len(sent)],
        "capture_time steps decreasing = 0": [sum(1 for a, b in zip(caps, caps[1:])
                                                  if a is None or b is None or b < a), 0],
        "latency messages = frames with tokens": [len(msgs), rxc["frames_out"] - rxc["frames_empty"]],
        "latency message frames not increasing = 0": [sum(1 for a, b in zip(frames, frames[1:]) if b <= a), 0],
        "latency out_time decreasing = 0": [sum(1 for a, b in zip(outs, outs[1:]) if b < a), 0],
    }


def analyse(R, t_launch, t_all, load, outage=None, machine=None):
    A, B, air = R["A"], R["B"], R["air"]
    ons = [t for t, off in air.get("outages", []) if off]
    offs = [t for t, off in air.get("outages", []) if not off]
    if outage and ons and offs:      # when the air closed and opened the gate (within 50 ms of the request)
        outage = (ons[0], offs[0])
    cpu = {r: dict(cpu_s=round(x["cpu_s"], 1), cores=round(x["cpu_s"] / max(1e-9, x["t_stop"] - x["t_start"]), 2),
                   max_rss_mb=round(x["max_rss_mb"])) for r, x in R.items()}
    out = {
        "setup": dict(duration_s=DURATION, drain_s=DRAIN, ebn0_db=EBN0, samp_rate=80000, bit_rate=10000,
                      mode="continuous", budget_bps=1100, weights="random:0 (UNTRAINED codec: not speech quality)",
                      codec_mode=A["codec_mode"], codec_threads=A.get("codec_threads", 1), jitter_buffer_ms=A["jitter_buffer_ms"],
                      decode_lead_ms=A.get("decode_lead_ms"), fixed_rate_output=A.get("fixed_rate_output"),
                      output_prime_ms=A.get("output_prime_ms"), nice=NICE,
                      recovery=A.get("recovery", "hold"), audio="Debian LibriVox demo clips, looped; B from the middle",
                      startup_s=round(t_all - t_launch, 1), loadavg_start_end=load,
                      air_rate_fwd=round(air["fwd"]["rate_through_throttle"], 1),
                      air_rate_rev=round(air["rev"]["rate_through_throttle"], 1),
                      outage=os.environ.get("OUTAGE"), talk_after_s=A.get("talk_after_s")),
        "talkers": ",".join(TALKERS),
        "cpu_per_process": cpu,
        "machine_cpu": machine,
    }
    dirs = [d for d in ("A->B", "B->A") if d[0] in TALKERS]
    if "A" in TALKERS:
        out["A->B"] = direction(A, B, t_all, outage)
    if "B" in TALKERS:
        out["B->A"] = direction(B, A, t_all)
    bad = [f"{d}: {k} {v[0]} != {v[1]}" for d in dirs for k, v in out[d]["checks"].items() if v[0] != v[1]]
    out["checks_failed"] = bad
    return out


def main():
    R, t_launch, t_all, load, outage, machine = run()
    out = analyse(R, t_launch, t_all, load, outage, machine)
    print(json.dumps(out, indent=1))
    return 1 if out["checks_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
