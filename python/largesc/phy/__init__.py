#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""A packet modem built from GNU Radio's own blocks: the frame format and the
byte-stream framer (framing), forward error correction (fec), the transmitter
(modem_tx: packet_modem_tx) and the receiver (modem_rx: packet_modem_rx), the
test packet_source (packet_source), USRP helpers (usrp: check_usrp,
open_usrp_source / open_usrp_sink), the radio and speech ends a flowgraph
parameter chooses (radio_io: radio_source / radio_sink for ZMQ or a USRP,
speech_source / speech_sink for a WAV file or the sound card, node_links for
the two-radio examples), the simulated channels (channel) and the
baseband link simulation used by largesc-phy-sweep (link_sim, and burst_slots:
bursts in 80 ms slots with silence between). The public
names of every module are importable from here:
`from gnuradio.largesc import phy; phy.check_usrp(args)`. See docs/phy.md."""

from .framing import (CRC_BYTES, DEFAULT_ACCESS_CODE, DEFAULT_BIT_RATE, DEFAULT_SAMP_RATE, FRAME_PERIOD, HEADER_BYTES,
                      FRAME_VERSION, IDLE_BYTE, LENGTH_TAG, MAX_FRAME_BYTES, MODES, SCRAMBLER_BYTES, SLOT_FILL_BYTE,
                      STARTUP_BYTES, descramble_soft, frame_bytes, frame_length_range, max_packet_bytes, packet_framer,
                      samples_per_symbol, scramble_bytes)
from .fec import CC_K, CC_POLYS, CC_TAIL_BYTES, FEC_CODES, FEC_LABELS, FEC_MTU, check_fec, fec_coded_bytes
from .modem_tx import GMSK_BT, packet_modem_tx
from .modem_rx import MAX_SAMPLE_ABS, SNR_KEY, packet_modem_rx, soft_snr_db
from .packet_source import packet_source
from .usrp import USRP_HELP, USRP_SAMP_RATE, USRPNotFound, check_usrp, open_usrp_sink, open_usrp_source
from .channel import (CHANNELS, DEFAULT_DOPPLER_HZ, DEFAULT_K_FACTOR_DB, FADING_SINUSOIDS, check_channel,
                      noise_voltage, snr_db)
from .link_sim import STALE_NOISE_SAMPLES, burst_slots, link_sim
from .radio_io import (FREQ_A, FREQ_B, NODES, RADIO_SAMP_RATES, RADIOS, SPEECH_ENDS, ZMQ_HOST, ZMQ_LINKS,
                       ZMQ_PORT_BASE, node_links, radio_samp_rate, radio_sink, radio_source, speech_sink,
                       speech_source, zmq_address)

__all__ = [
    # framing
    "CRC_BYTES", "DEFAULT_ACCESS_CODE", "DEFAULT_BIT_RATE", "DEFAULT_SAMP_RATE", "FRAME_PERIOD", "HEADER_BYTES",
    "FRAME_VERSION", "IDLE_BYTE", "LENGTH_TAG", "MAX_FRAME_BYTES", "MODES", "SCRAMBLER_BYTES", "SLOT_FILL_BYTE",
    "STARTUP_BYTES", "descramble_soft", "frame_bytes", "frame_length_range", "max_packet_bytes", "packet_framer",
    "samples_per_symbol", "scramble_bytes",
    # fec
    "CC_K", "CC_POLYS", "CC_TAIL_BYTES", "FEC_CODES", "FEC_LABELS", "FEC_MTU", "check_fec", "fec_coded_bytes",
    # modem_tx, modem_rx, packet_source
    "GMSK_BT", "packet_modem_tx", "MAX_SAMPLE_ABS", "SNR_KEY", "packet_modem_rx", "soft_snr_db", "packet_source",
    # usrp
    "USRP_HELP", "USRP_SAMP_RATE", "USRPNotFound", "check_usrp", "open_usrp_sink", "open_usrp_source",
    # channel, link_sim
    "CHANNELS", "DEFAULT_DOPPLER_HZ", "DEFAULT_K_FACTOR_DB", "FADING_SINUSOIDS", "check_channel", "noise_voltage",
    "snr_db", "STALE_NOISE_SAMPLES", "burst_slots", "link_sim",
    # radio_io
    "FREQ_A", "FREQ_B", "NODES", "RADIO_SAMP_RATES", "RADIOS", "SPEECH_ENDS", "ZMQ_HOST", "ZMQ_LINKS",
    "ZMQ_PORT_BASE", "node_links", "radio_samp_rate", "radio_sink", "radio_source", "speech_sink",
    "speech_source", "zmq_address",
]
