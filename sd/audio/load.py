"""Reading an audio file as mono samples, with a one-line error when it cannot be read.

librosa is an optional dependency (the `audio` extra): it is imported here, when audio is used, so the rest
of the project runs without it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sd.errors import UserError

SAMPLE_RATE = 22050  # librosa's default: plenty for onsets and loudness


@dataclass
class Audio:
    samples: np.ndarray  # (N,) float32 mono in [-1, 1]
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def require_librosa():
    try:
        import librosa
    except ImportError:
        raise UserError("audio features need librosa: pip install -e '.[audio]'") from None
    return librosa


def load_audio(path: str | Path, rate: int = SAMPLE_RATE) -> Audio:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such audio file")
    librosa = require_librosa()
    try:
        with warnings.catch_warnings():  # "PySoundFile failed. Trying audioread instead.": the error says it
            warnings.simplefilter("ignore")
            samples, rate = librosa.load(path, sr=rate, mono=True)
    except Exception as error:  # soundfile / audioread raise many types for unreadable files
        raise UserError(f"{path}: not a readable audio file ({type(error).__name__}: {error})") from None
    if len(samples) == 0:
        raise UserError(f"{path}: the audio is empty")
    return Audio(samples.astype(np.float32), int(rate))
