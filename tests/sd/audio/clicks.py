"""Short test audio made in the test: clicks at known times, and tones."""

from pathlib import Path

import numpy as np
import soundfile

RATE = 22050


def clicks(times: list[float], duration: float, rate: int = RATE) -> np.ndarray:
    """Silence with a 5 ms decaying noise burst starting at each time."""
    samples = np.zeros(int(duration * rate), dtype=np.float32)
    burst = np.random.default_rng(0).standard_normal(int(0.005 * rate)) * np.exp(-np.linspace(0, 6, int(0.005 * rate)))
    for t in times:
        start = int(t * rate)
        samples[start : start + len(burst)] += 0.8 * burst
    return samples


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    soundfile.write(path, samples, rate)
    return path
