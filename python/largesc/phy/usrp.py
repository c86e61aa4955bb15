#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""USRP helpers (gr-uhd): open a source or sink tuned and set, or check that a
device answers, with the same error message everywhere a device is opened."""

from .framing import LENGTH_TAG

USRP_SAMP_RATE = 250000.0       # USRP examples: 25 samples per symbol
USRP_HELP = (
    "check the device arguments {args!r}: run `uhd_find_devices` (Debian package uhd-host) "
    "and `uhd_usrp_probe --args \"{args}\"`; name the device with e.g. type=b200, serial=..., "
    "or addr=192.168.10.2 (networked USRPs: host interface on the same subnet); "
    "USB devices need the udev rules (uhd-host) and a USB 3 port; "
    "FPGA images: `uhd_images_downloader`")


class USRPNotFound(RuntimeError):
    pass


def _usrp_error(kind, args, err):
    return USRPNotFound(f"cannot open USRP {kind} ({err}); " + USRP_HELP.format(args=args))


def _tune(dev, samp_rate, center_freq, gain, antenna):
    """Rate, frequency, gain and antenna of channel 0 of a USRP source or sink."""
    from gnuradio import uhd
    dev.set_samp_rate(samp_rate)
    dev.set_center_freq(uhd.tune_request(center_freq), 0)
    dev.set_gain(gain, 0)
    if antenna:
        dev.set_antenna(antenna, 0)
    return dev


def open_usrp_source(args="", samp_rate=USRP_SAMP_RATE, center_freq=433.92e6, gain=30.0, antenna=""):
    """uhd.usrp_source (fc32, one channel) tuned and set; raises USRPNotFound
    naming the device arguments to check when no device answers."""
    from gnuradio import uhd
    try:
        src = uhd.usrp_source(args, uhd.stream_args(cpu_format="fc32", channels=[0]))
    except RuntimeError as e:
        raise _usrp_error("source", args, e) from None
    return _tune(src, samp_rate, center_freq, gain, antenna)


def open_usrp_sink(args="", samp_rate=USRP_SAMP_RATE, center_freq=433.92e6, gain=30.0, antenna="",
                   length_tag=LENGTH_TAG):
    """uhd.usrp_sink (fc32, one channel); with length_tag set it sends each
    tagged burst with start/end of burst. Raises USRPNotFound as above."""
    from gnuradio import uhd
    try:
        snk = uhd.usrp_sink(args, uhd.stream_args(cpu_format="fc32", channels=[0]), length_tag or "")
    except RuntimeError as e:
        raise _usrp_error("sink", args, e) from None
    return _tune(snk, samp_rate, center_freq, gain, antenna)


def check_usrp(args=""):
    """Opens and closes the USRP named by `args`; on failure prints what to
    check and exits (used by the example flowgraphs before their UHD blocks)."""
    import sys
    from gnuradio import uhd
    try:
        dev = uhd.usrp_source(args, uhd.stream_args(cpu_format="fc32", channels=[0]))
        del dev
    except RuntimeError as e:
        sys.stderr.write(f"No USRP: {_usrp_error('device', args, e)}\n")
        raise SystemExit(2)
