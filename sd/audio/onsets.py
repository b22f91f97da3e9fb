"""Onsets (where notes and beats start) as candidate keyframe frames, from the percussive part, the
harmonic part (harmonic/percussive source separation, librosa.effects.hpss) or both.

An onset at t seconds lands on frame round(t * fps). Detection works on an onset-strength envelope with
hops of 256 samples (11.6 ms at 22,050 Hz), well under a frame at any usual fps, so a click is placed
within one frame of where it is (tested).
"""

from __future__ import annotations

import numpy as np

from sd.audio.load import Audio, require_librosa

COMPONENTS = ("percussive", "harmonic", "both")
HOP = 256


def onset_times(audio: Audio, component: str = "percussive") -> list[float]:
    """Onset times in seconds, ascending. `both` merges the onsets of the two parts."""
    librosa = require_librosa()
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {COMPONENTS}")
    harmonic, percussive = librosa.effects.hpss(audio.samples)
    parts = {"percussive": [percussive], "harmonic": [harmonic], "both": [percussive, harmonic]}[component]
    times: list[float] = []
    for part in parts:
        envelope = librosa.onset.onset_strength(y=part, sr=audio.rate, hop_length=HOP)  # (n_hops,)
        found = librosa.onset.onset_detect(onset_envelope=envelope, sr=audio.rate, hop_length=HOP, units="time")
        times += [float(t) for t in np.atleast_1d(found)]
    return sorted(times)


def onset_frames(times: list[float], fps: float, min_gap: int = 1) -> list[int]:
    """Frames round(t * fps), ascending, with frame 0 first and neighbours at least `min_gap` frames apart."""
    frames = [0]
    for frame in sorted(round(t * fps) for t in times):
        if frame - frames[-1] >= max(1, min_gap):
            frames.append(frame)
    return frames


def keyframe_template(
    audio: Audio, fps: float, component: str = "percussive", min_gap: int = 1, source: str = "audio"
) -> str:
    """Keyframe lines at the onsets plus the last frame, each with a placeholder prompt to replace."""
    times = onset_times(audio, component)
    frames = onset_frames(times, fps, min_gap)
    last = max(round(audio.duration * fps) - 1, frames[-1])
    if last > frames[-1]:
        frames.append(last)
    lines = [
        f"# {source}: {len(times)} {component} onsets, {audio.duration:.2f} s = {last + 1} frames at {fps:g} fps",
        "# replace each prompt; the frame numbers are the onsets (round(seconds * fps))",
    ]
    lines += [f"{frame}: a prompt for {frame / fps:.2f} s" for frame in frames]
    return "\n".join(lines) + "\n"
