#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Simulated channels (link_sim, largesc-phy-sweep): GNU Radio's gr-channels
models, their names and defaults, check_channel (what link_sim can make) and
the Eb/N0 conversions (noise_voltage, snr_db). See docs/phy.md ("Simulated
channels")."""

import math

from .framing import DEFAULT_BIT_RATE

CHANNELS = ("awgn", "rayleigh", "rician")
FADING_SINUSOIDS = 8            # channels.fading_model N (sum of sinusoids; "8 is a good value")
DEFAULT_DOPPLER_HZ = 10.0       # 25 km/h at 433 MHz, walking pace at 2.4 GHz
DEFAULT_K_FACTOR_DB = 6.0       # Rician K (line-of-sight / scattered power)


def check_channel(channel="awgn", doppler_hz=DEFAULT_DOPPLER_HZ, k_factor_db=DEFAULT_K_FACTOR_DB,
                  bit_rate=DEFAULT_BIT_RATE, freq_drift_hz=0.0, timing_drift_ppm=0.0):
    """Raises ValueError (saying what is allowed) for a simulated channel
    link_sim cannot make: channel one of CHANNELS; fading channels need
    0 < doppler_hz <= bit_rate / 10 (slower than the bits: flat, slow fading
    per bit) and -10 <= k_factor_db <= 30; drifts >= 0, timing drift < 1000 ppm."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    for name, v in (("doppler_hz", doppler_hz), ("k_factor_db", k_factor_db), ("freq_drift_hz", freq_drift_hz),
                    ("timing_drift_ppm", timing_drift_ppm)):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if channel != "awgn" and not 0 < doppler_hz <= bit_rate / 10:
        raise ValueError(f"Doppler must be > 0 and <= bit rate / 10 = {bit_rate / 10:g} Hz "
                         f"(fD x Tb <= 0.1), got {doppler_hz:g} Hz")
    if not -10.0 <= k_factor_db <= 30.0:
        raise ValueError(f"Rician K factor must be in -10..30 dB, got {k_factor_db:g} dB")
    if not 0 <= freq_drift_hz <= bit_rate / 4:
        raise ValueError(f"frequency drift must be in 0..bit rate / 4 = {bit_rate / 4:g} Hz, got {freq_drift_hz:g}")
    if not 0 <= timing_drift_ppm < 1000:
        raise ValueError(f"timing drift must be in 0..1000 ppm (exclusive), got {timing_drift_ppm:g}")


def noise_voltage(ebn0_db, sps):
    """channel_model noise voltage for a unit-power signal at Eb/N0 (dB):
    noise power in the full sample bandwidth = sps / (Eb/N0), one bit per symbol."""
    return math.sqrt(sps / 10 ** (ebn0_db / 10.0))


def snr_db(ebn0_db, sps):
    """SNR in the sample-rate bandwidth, and in a 2 x bit-rate bandwidth."""
    return ebn0_db - 10 * math.log10(sps), ebn0_db - 10 * math.log10(2.0)
