#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The two ends of a node that a flowgraph parameter chooses (GRC has no
expression-driven enable): where the baseband goes and comes from
(radio_sink / radio_source: a ZeroMQ socket to an emulated air channel on
one machine, or a USRP) and where the speech comes from and goes to
(speech_source / speech_sink: a WAV file or the sound card). gr-uhd and
gr-audio are imported only when chosen, so a machine without them runs the
ZMQ and WAV variants.

node_links() is the port and frequency plan of the two-radio examples
(examples/two_radio/, docs/two_radio.md): node 'a' and node 'b' send on one
link and listen on the other."""

import math
import os

from gnuradio import gr

from ..common import params as P
from .framing import DEFAULT_SAMP_RATE
from .usrp import USRP_SAMP_RATE, open_usrp_sink, open_usrp_source

RADIOS = ("zmq", "uhd")
SPEECH_ENDS = ("wav", "card")
NODES = ("a", "b")
# sample rate per radio when the flowgraph leaves it at 0: 8 samples per bit
# over ZMQ (what the air flowgraph throttles to), 25 on a USRP (docs/phy.md "Rates")
RADIO_SAMP_RATES = {"zmq": DEFAULT_SAMP_RATE, "uhd": USRP_SAMP_RATE}
ZMQ_HOST = "127.0.0.1"
ZMQ_PORT_BASE = 5550
# the four ZMQ links between node A, the air and node B: port = base + 1 + index
ZMQ_LINKS = ("a_to_air", "air_to_b", "b_to_air", "air_to_a")
# node A transmits on FREQ_A and listens on FREQ_B, node B the other way round
# (both in the 433.05-434.79 MHz ISM band of ITU region 1: check your rules)
FREQ_A = 433.6e6
FREQ_B = 434.2e6
ZMQ_TIMEOUT_MS = 100  # a pull source returns to the scheduler this often with no data


def radio_samp_rate(radio, samp_rate=0):
    """samp_rate, or the radio's default (RADIO_SAMP_RATES) when it is 0."""
    P.check_choice("radio", radio, RADIOS)
    samp_rate = P.check_float("samp_rate", samp_rate, 0)
    return samp_rate if samp_rate > 0 else float(RADIO_SAMP_RATES[radio])


def zmq_address(link, host=ZMQ_HOST, port_base=ZMQ_PORT_BASE):
    """tcp://host:port of one of ZMQ_LINKS ('a_to_air', 'air_to_b', 'b_to_air',
    'air_to_a'): port_base + 1 .. + 4."""
    P.check_choice("link", link, ZMQ_LINKS)
    host = P.check_str("host", host)
    if not host or any(c in host for c in " /:"):
        raise P.ParameterError(f"host must be a host name or IP address such as 127.0.0.1, got {host!r}")
    port_base = P.check_int("port_base", port_base, 1024, 65535 - len(ZMQ_LINKS))
    return f"tcp://{host}:{port_base + 1 + ZMQ_LINKS.index(link)}"


def node_links(node, host=ZMQ_HOST, port_base=ZMQ_PORT_BASE, freq_a=FREQ_A, freq_b=FREQ_B):
    """What node 'a' or 'b' sends on and listens to: dict(tx_address,
    rx_address) for ZMQ (A sends on a_to_air and hears air_to_a, B sends on
    b_to_air and hears air_to_b) and dict(tx_freq, rx_freq) for radios (A sends
    on freq_a and hears freq_b, B the other way round)."""
    P.check_choice("node", node, NODES)
    freq_a = P.check_float("freq_a", freq_a, 0, lo_open=True)
    freq_b = P.check_float("freq_b", freq_b, 0, lo_open=True)
    if freq_a == freq_b:
        raise P.ParameterError(f"freq_a and freq_b must differ (full duplex on two frequencies), both are {freq_a:g} Hz")
    return dict(tx_address=zmq_address(f"{node}_to_air", host, port_base),
                rx_address=zmq_address(f"air_to_{node}", host, port_base),
                tx_freq=freq_a if node == "a" else freq_b,
                rx_freq=freq_b if node == "a" else freq_a)


def _check_radio(radio, address, device_args, center_freq, gain, antenna, samp_rate):
    P.check_choice("radio", radio, RADIOS)
    samp_rate = P.check_float("samp_rate", samp_rate, 0, lo_open=True)
    P.check_str("device_args", device_args)
    P.check_str("antenna", antenna)
    center_freq = P.check_float("center_freq", center_freq, 0, lo_open=True)
    gain = P.check_float("gain", gain, 0)
    P.check_str("address", address)
    if radio == "zmq" and not address.startswith(("tcp://", "ipc://")):
        raise P.ParameterError(f"address must be a ZeroMQ endpoint such as tcp://127.0.0.1:5551 "
                               f"(or ipc://PATH), got {address!r}")
    return samp_rate, center_freq, gain


class radio_source(gr.hier_block2):
    """Complex baseband from the radio at samp_rate.

    radio 'zmq': a ZeroMQ pull source that connects to `address` (the air
    flowgraph, or a peer's push sink, binds it); it waits for samples, so the
    far end sets the pace. radio 'uhd': a USRP source (gr-uhd, fc32, channel 0)
    opened with device_args and tuned to center_freq with gain and antenna
    ('' = the device's default, RX2 on a B200); no device raises
    phy.USRPNotFound naming the arguments to check. samples_out() counts the
    samples delivered."""

    def __init__(self, radio="zmq", address="tcp://127.0.0.1:5554", device_args="", center_freq=FREQ_B,
                 gain=30.0, antenna="", samp_rate=DEFAULT_SAMP_RATE):
        samp_rate, center_freq, gain = _check_radio(radio, address, device_args, center_freq, gain, antenna,
                                                    samp_rate)
        gr.hier_block2.__init__(self, "largesc_radio_source", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.radio = radio
        if radio == "zmq":
            from gnuradio import zeromq
            self.src = zeromq.pull_source(gr.sizeof_gr_complex, 1, address, ZMQ_TIMEOUT_MS, False, -1)
        else:
            self.src = open_usrp_source(device_args, samp_rate, center_freq, gain, antenna)
        self.connect(self.src, self)

    def samples_out(self):
        return self.src.nitems_written(0)


class radio_sink(gr.hier_block2):
    """Complex baseband to the radio at samp_rate.

    radio 'zmq': a ZeroMQ push sink bound to `address` (the air flowgraph
    connects to it); nothing paces it, so feed it a stream with a clock (the
    packet modem TX in continuous mode). radio 'uhd': a USRP sink (gr-uhd,
    fc32, channel 0, streaming: no burst tags) opened with device_args and
    tuned to center_freq with gain and antenna ('' = the device's default,
    TX/RX on a B200); no device raises phy.USRPNotFound. samples_in() counts
    the samples taken."""

    def __init__(self, radio="zmq", address="tcp://127.0.0.1:5551", device_args="", center_freq=FREQ_A,
                 gain=30.0, antenna="", samp_rate=DEFAULT_SAMP_RATE):
        samp_rate, center_freq, gain = _check_radio(radio, address, device_args, center_freq, gain, antenna,
                                                    samp_rate)
        gr.hier_block2.__init__(self, "largesc_radio_sink", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.radio = radio
        if radio == "zmq":
            from gnuradio import zeromq
            self.snk = zeromq.push_sink(gr.sizeof_gr_complex, 1, address, ZMQ_TIMEOUT_MS, False, -1)
        else:
            self.snk = open_usrp_sink(device_args, samp_rate, center_freq, gain, antenna, length_tag="")
        self.connect(self, self.snk)

    def samples_in(self):
        return self.snk.nitems_read(0)


AUDIO_HELP = ("list the sound cards with `arecord -l` / `aplay -l` and name one as plughw:CARD,DEVICE "
              "(e.g. plughw:1,0), or use a WAV file")


def _open_card(kind, sample_rate, device):
    from gnuradio import audio
    try:
        if kind == "source":
            return audio.source(sample_rate, device, True)
        return audio.sink(sample_rate, device, True)
    except RuntimeError as e:
        what = "microphone (audio source)" if kind == "source" else "speaker (audio sink)"
        raise RuntimeError(f"cannot open the sound card {device or 'default'!r} as {what} at {sample_rate} Hz "
                           f"({e}): {AUDIO_HELP}") from None


class speech_source(gr.hier_block2):
    """Speech as a float stream at sample_rate, from a WAV file or the sound card.

    source 'wav': wav_file (mono or its first channel, any rate: resampled to
    sample_rate) played at real time (a throttle is the capture clock, as a
    microphone would be), looped when repeat is True (else the stream ends
    with the file). source 'card': the sound card's input `device` ('' = the
    default; gr-audio), which sets the pace. samples_out() counts the samples
    delivered."""

    def __init__(self, source="wav", wav_file="", sample_rate=16000, device="", repeat=True):
        P.check_choice("source", source, SPEECH_ENDS)
        sample_rate = P.check_int("sample_rate", sample_rate, 1000, 192000)
        P.check_str("wav_file", wav_file)
        P.check_str("device", device)
        repeat = P.check_bool("repeat", repeat)
        if source == "wav" and not os.path.isfile(wav_file):
            raise P.ParameterError(f"wav_file: no such file {wav_file!r} (give a WAV file of speech, "
                                   f"or choose the sound card)")
        gr.hier_block2.__init__(self, "largesc_speech_source", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_float))
        if source == "card":
            self.src = _open_card("source", sample_rate, device)
            self.out = self.src
            self.connect(self.src, self)
            return
        from gnuradio import blocks, filter as gr_filter
        try:
            self.src = blocks.wavfile_source(wav_file, repeat)
        except RuntimeError as e:
            raise P.ParameterError(f"wav_file: cannot read {wav_file!r} as a WAV file ({e})") from None
        chain = [(self.src, 0)]
        for ch in range(1, self.src.channels()):
            self.connect((self.src, ch), blocks.null_sink(gr.sizeof_float))
        rate = int(self.src.sample_rate())
        if rate != sample_rate:
            g = math.gcd(rate, sample_rate)
            self.resampler = gr_filter.rational_resampler_fff(sample_rate // g, rate // g)
            chain.append(self.resampler)
        self.throttle = blocks.throttle(gr.sizeof_float, sample_rate, True)
        chain.append(self.throttle)
        self.out = self.throttle
        self.connect(*chain, self)

    def samples_out(self):
        return self.out.nitems_written(0)


class speech_sink(gr.hier_block2):
    """Speech (float stream at sample_rate, full scale +-1) to a WAV file or
    the sound card.

    sink 'wav': wav_file (mono, 16-bit PCM), written from the start (the file
    is complete when the flowgraph stops). sink 'card': the sound card's output
    `device` ('' = the default; gr-audio). samples_in() counts the samples
    taken."""

    def __init__(self, sink="wav", wav_file="/tmp/largesc_speech_out.wav", sample_rate=16000, device=""):
        P.check_choice("sink", sink, SPEECH_ENDS)
        sample_rate = P.check_int("sample_rate", sample_rate, 1000, 192000)
        P.check_str("wav_file", wav_file)
        P.check_str("device", device)
        if sink == "wav":
            folder = os.path.dirname(os.path.abspath(wav_file)) if wav_file else ""
            if not wav_file or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise P.ParameterError(f"wav_file: cannot write {wav_file!r} (give a path in a folder "
                                       f"that exists and is writable, e.g. /tmp/heard.wav)")
        gr.hier_block2.__init__(self, "largesc_speech_sink", gr.io_signature(1, 1, gr.sizeof_float),
                                gr.io_signature(0, 0, 0))
        if sink == "card":
            self.snk = _open_card("sink", sample_rate, device)
        else:
            from gnuradio import blocks
            self.snk = blocks.wavfile_sink(wav_file, 1, sample_rate, blocks.FORMAT_WAV, blocks.FORMAT_PCM_16,
                                           False)
        self.connect(self, self.snk)

    def samples_in(self):
        return self.snk.nitems_read(0)
