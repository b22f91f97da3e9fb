"""Pacing: how far through a transition each frame is, when something other than the clock sets the speed.

Without pacing, frame f of the transition from keyframe a (frame f_a) to b (frame f_b) is at
t_f = (f - f_a) / (f_b - f_a): constant speed. With a positive speed e_g for every frame g (the audio's
smoothed loudness, sd/audio/energy.py), the transition instead advances by e_f from frame f to f + 1:

    t_f = sum_{g = f_a}^{f - 1} e_g  /  sum_{g = f_a}^{f_b - 1} e_g

so t_{f_a} = 0 and t_{f_b} = 1 exactly (each transition still ends on its keyframe), t never decreases,
and a frame twice as loud takes a step twice as large. The easing is applied to t afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paced_progress(speeds: Sequence[float]) -> list[float]:
    """t for each of the len(speeds) frames of one transition (t = 1, the next keyframe, is not included)."""
    e = np.asarray(speeds, dtype=np.float64)  # (n,) speed of each step f -> f + 1
    if e.ndim != 1 or len(e) == 0 or not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ValueError("speeds must be a non-empty sequence of positive numbers")
    cumulative = np.concatenate([[0.0], np.cumsum(e)[:-1]])  # (n,) sum of the steps before frame f
    return (cumulative / e.sum()).tolist()
