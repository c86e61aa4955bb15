"""Air/channel process: both directions, zmq pull -> throttle(samp_rate) -> AWGN -> zmq push."""

import os
import resource
import sys
from gnuradio import gr, blocks, zeromq, channels
from gnuradio.largesc.phy import channel as CH
import common as C


def main():
    out, stopfile, ebn0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sps = C.SAMP_RATE // C.BIT_RATE
    nv = CH.noise_voltage(ebn0, sps)
    tb = gr.top_block("air")
    legs = {}
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
        tb.connect(s, th, ch, k)
        legs[name] = (s, th, ch, k)
    t0, t1, clean = C.run_until_stopped(tb, stopfile)
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
