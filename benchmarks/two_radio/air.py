"""Air/channel process: both directions, zmq pull -> throttle(samp_rate) -> gate -> AWGN -> zmq push.
The A -> B gate closes (signal gone, noise only) while the file STOPFILE.outage exists."""

import os
import resource
import sys
import time
from gnuradio import gr, blocks, zeromq, channels
from gnuradio.largesc.phy import channel as CH
import common as C


def main():
    out, stopfile, ebn0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sps = C.SAMP_RATE // C.BIT_RATE
    nv = CH.noise_voltage(ebn0, sps)
    tb = gr.top_block("air")
    legs = {}
    gates = {}
    for name, src, dst, seed in (("fwd", "a_to_air", "air_to_b", 11), ("rev", "b_to_air", "air_to_a", 22)):
        s = zeromq.pull_source(gr.sizeof_gr_complex, 1, C.addr(src), 100, False, -1)
        th = blocks.throttle(gr.sizeof_gr_complex, C.SAMP_RATE, True)
        ch = channels.channel_model(
            noise_voltage=nv,
            frequency_offset=0.0,
            epsilon=1.0,
            taps=[1.0 + 0j],
            noise_seed=seed,
            block_tags=False,
        )
        k = zeromq.push_sink(gr.sizeof_gr_complex, 1, C.addr(dst), 100, False, -1)
        gate = blocks.multiply_const_cc(1.0)   # 0 during an outage: the signal is gone, the noise stays
        tb.connect(s, th, gate, ch, k)
        legs[name] = (s, th, ch, k)
        gates[name] = gate
    outages = []

    def poll():  # stopfile + ".outage" present: the A -> B signal is gone
        off = os.path.exists(stopfile + ".outage")
        if off != (gates["fwd"].k() == 0):
            gates["fwd"].set_k(0.0 if off else 1.0)
            outages.append((time.time(), off))

    t0, t1, clean = C.run_until_stopped(tb, stopfile, poll, 0.01)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    res = {
        "role": "air",
        "ebn0_db": ebn0,
        "noise_voltage": nv,
        "sps": sps,
        "t_start": t0,
        "t_stop": t1,
        "clean_stop": clean,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "max_rss_mb": ru.ru_maxrss / 1024.0,
        "outages": outages,
    }
    for name, (s, th, ch, k) in legs.items():
        res[name] = {
            "samples_in": s.nitems_written(0),
            "samples_through_throttle": th.nitems_written(0),
            "samples_out": k.nitems_read(0),
            "rate_through_throttle": th.nitems_written(0) / max(1e-9, t1 - t0),
        }
    C.write_json(out, res)
    os._exit(0)


if __name__ == "__main__":
    main()
