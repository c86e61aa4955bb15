#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Speech input for evaluation: load any file at any rate as float32 mono at
the rate you ask for, and the offline demo clips (real recorded speech with
transcripts) from Debian's ``pocketsphinx-testdata`` package.

Everything here is plain Python (no flowgraph). Errors are ``SpeechError``
(a ``ValueError``) with the file name and what to do.
"""

import dataclasses
import math
import os
import re

import numpy as np

# Where Debian's pocketsphinx-testdata installs its LibriVox clips (16 kHz
# mono 16-bit WAV, public-domain recordings, one transcript line per clip).
POCKETSPHINX_TESTDATA = "/usr/share/pocketsphinx/test/data"
DEMO_DIR_ENV = "LARGESC_DEMO_SPEECH_DIR"

# A signal whose RMS is below this (dBFS) is treated as silent.
SILENCE_DBFS = -60.0
# Shortest audio worth evaluating (seconds).
MIN_DURATION_S = 0.25


class SpeechError(ValueError):
    """Unreadable, empty, silent or otherwise unusable audio."""


def resample(x, sr_in, sr_out):
    """Resample 1-D audio from ``sr_in`` to ``sr_out`` Hz with a polyphase
    anti-aliasing filter (scipy.signal.resample_poly, Kaiser window, ratio
    reduced by the gcd: 16 k -> 24 k is up 3 / down 2). Returns float32."""
    sr_in, sr_out = int(sr_in), int(sr_out)
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return x.copy()
    from scipy.signal import resample_poly
    g = math.gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


def rms_dbfs(x):
    """RMS level of ``x`` in dBFS (full scale = 1.0); -inf for all zeros."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return -math.inf
    r = math.sqrt(float(np.mean(x * x)))
    return 20.0 * math.log10(r) if r > 0 else -math.inf


def check_speech(x, sr, name="audio"):
    """Raise SpeechError unless ``x`` is finite, long enough and not silent."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise SpeechError(f"{name}: expected mono 1-D audio, got shape {x.shape}")
    if x.size == 0:
        raise SpeechError(f"{name}: no samples")
    if not np.all(np.isfinite(x)):
        raise SpeechError(f"{name}: contains NaN or infinite samples")
    if x.size < MIN_DURATION_S * sr:
        raise SpeechError(f"{name}: {x.size / sr:.3f} s is too short "
                          f"(at least {MIN_DURATION_S} s)")
    level = rms_dbfs(x)
    if level < SILENCE_DBFS:
        raise SpeechError(f"{name}: silent (RMS {level:.1f} dBFS, below "
                          f"{SILENCE_DBFS:.0f} dBFS); nothing to evaluate")
    return x


def load(path, sr=16000, check=True):
    """Read a speech file (anything libsndfile reads: WAV, FLAC, OGG/Opus,
    MP3, AIFF...; any rate, any number of channels) and return float32 mono
    at ``sr`` Hz. Channels are averaged. With ``check`` (default) silent,
    too short or non-finite audio raises SpeechError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SpeechError(f"{path}: no such file")
    try:
        import soundfile as sf
        x, sr_in = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises its own LibsndfileError / RuntimeError
        raise SpeechError(f"{path}: cannot read as audio ({e})") from None
    if x.shape[0] == 0:
        raise SpeechError(f"{path}: no samples")
    x = x.mean(axis=1)
    x = resample(x, sr_in, sr)
    if check:
        check_speech(x, sr, path)
    return x


def file_digest(path, n=16):
    """First `n` hex digits of a file's SHA-256, read in 1 MiB blocks (clip
    fingerprints of a campaign, checksums of weight files)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def save(path, x, sr):
    """Write float audio as 16-bit PCM WAV (clipped to [-1, 1])."""
    import soundfile as sf
    sf.write(os.fspath(path), np.clip(np.asarray(x, np.float32), -1, 1), int(sr),
             subtype="PCM_16")


@dataclasses.dataclass(frozen=True)
class DemoClip:
    """One recorded utterance with its transcript."""
    name: str
    path: str
    text: str          # lower-case words, as in the corpus transcript

    def audio(self, sr=16000):
        """The clip as float32 mono at ``sr`` Hz."""
        return load(self.path, sr)

    @property
    def duration_s(self):
        import soundfile as sf
        return sf.info(self.path).duration


_TRANSCRIPT_LINE = re.compile(r"^\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)\s]+)\)\s*$")


def demo_dir():
    """Directory of the LibriVox demo clips; ``$LARGESC_DEMO_SPEECH_DIR``
    (a directory with ``*.wav`` files and a ``transcription`` file in the
    same format) overrides the Debian location."""
    d = os.environ.get(DEMO_DIR_ENV)
    return d if d else os.path.join(POCKETSPHINX_TESTDATA, "librivox")


def demo_clips(max_clips=None):
    """Real recorded speech with transcripts that installs offline: the five
    LibriVox clips (Jane Austen, *Sense and Sensibility*, one male reader,
    16 kHz, 3 to 7 s each) of Debian's ``pocketsphinx-testdata``.

    Returns a list of DemoClip sorted by name (shortest-first is not
    guaranteed). Raises FileNotFoundError saying how to install them."""
    d = demo_dir()
    trans = os.path.join(d, "transcription")
    if not os.path.isfile(trans):
        raise FileNotFoundError(
            f"demo speech not found ({trans}). Install the Debian package "
            "pocketsphinx-testdata (sudo apt-get install pocketsphinx-testdata; "
            f"./setup.sh does this), or point ${DEMO_DIR_ENV} at a directory of "
            "WAV files with a 'transcription' file.")
    clips = []
    with open(trans, encoding="utf-8") as f:
        for line in f:
            m = _TRANSCRIPT_LINE.match(line)
            if not m:
                continue
            text = " ".join(m.group(1).split())
            name = m.group(2)
            wav = os.path.join(d, name + ".wav")
            if os.path.isfile(wav):
                clips.append(DemoClip(name, wav, text))
    if not clips:
        raise FileNotFoundError(f"{trans}: no clip with a WAV file next to it")
    clips.sort(key=lambda c: c.name)
    return clips[:max_clips] if max_clips else clips


def demo_speech(sr=16000, max_clips=None, gap_s=0.3):
    """All demo clips concatenated (``gap_s`` of silence between them) and
    the joined transcript: ``(audio, text)``."""
    clips = demo_clips(max_clips)
    gap = np.zeros(int(round(gap_s * sr)), np.float32)
    parts = []
    for c in clips:
        parts += [c.audio(sr), gap]
    return np.concatenate(parts[:-1]), " ".join(c.text for c in clips)
