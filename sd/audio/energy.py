"""Loudness per video frame, smoothed: the speeds that pace each transition (sd/gif/pacing.py).

    rms_f = sqrt(mean(x[n]^2)) over the samples of frame f, [f / fps, (f + 1) / fps) seconds
    s     = rms convolved with a Gaussian of sigma = smoothing seconds (smoothing * fps frames)
    e_f   = s_f + FLOOR * mean(s)

The floor keeps silent stretches moving slowly instead of stopping (a zero speed would repeat frames, and
an all-silent transition would have no progress at all). Frames past the end of the audio are silent.
"""

from __future__ import annotations

import numpy as np

from sd.audio.load import Audio

FLOOR = 0.05


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return values
    radius = max(1, int(round(3 * sigma)))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, radius, mode="edge")  # (n + 2r,): no dip at the ends
    return np.convolve(padded, kernel, mode="valid")  # (n,)


def frame_energy(audio: Audio, fps: float, frames: int, smoothing: float = 0.25) -> np.ndarray:
    """(frames,) positive speeds e_f, one per video frame."""
    bounds = np.round(np.arange(frames + 1) * audio.rate / fps).astype(np.int64)  # (frames + 1,) sample edges
    squares = np.concatenate([[0.0], np.cumsum(audio.samples.astype(np.float64) ** 2)])  # prefix sums
    ends = np.minimum(bounds, len(audio.samples))
    counts = np.maximum(bounds[1:] - bounds[:-1], 1)
    rms = np.sqrt((squares[ends[1:]] - squares[ends[:-1]]) / counts)  # (frames,) 0 past the end
    smooth = gaussian_smooth(rms, smoothing * fps)
    return smooth + FLOOR * max(float(smooth.mean()), 1e-12)
