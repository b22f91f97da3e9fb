"""Evenly spaced frames for a fixed frame count (--frame-spacing even): explore the blend weights, then choose them so
that consecutive frames are equally far apart (DiffMorpher's reschedule, Zhang et al. 2024; AID's exploration and
search, He et al. 2024).

A transition draws frame F(w) at blend weight w in [0, 1]. How far it has come at w is the length of its path,
D(w) = sum of the steps F(p_i) -> F(p_i+1) over probes 0 = p_0 < p_1 < ... < p_m = w (a step is
smoothness.frame_distance), linear between probes. The probes start evenly spaced; then the largest step is
halved, again and again, until the budget is spent: that is where the frames jump, and where D must be known
finely. A frame planned at weight w (its time through the easing, timeline.py) is then drawn at

    w' = D^-1(w D(1))

so with linear easing every step covers the same distance, and the smooth easing slows into and out of each
keyframe in distance travelled rather than in weight. Those frames are rendered too, in `rounds` rounds (slots
0, R, 2R, ... first, then 1, R + 1, ...; by default R = 2: every other one, then the rest), each respaced with D
as everything rendered before it refined it, and the frames shown are then chosen among everything rendered,
probes included, by the most even steps (choose_frames). Unlike
--max-jump, which adds frames, this keeps the frame count and moves the frames. Where F itself jumps (the model
draws nothing between two layouts), no choice of weights can hide it.

A weight w' that lands within `snap` of a frame's step (D(1) / (in-betweens + 1)) of a probe already rendered,
in distance travelled, takes the probe instead of a render of its own (snapped): at snap 0.2 a frame is off
its even place by at most a fifth of a step, and each snapped probe saves a render, which matters most to a
few-step model chosen for its speed. Snapping in 3 rounds measured fewer large jumps than either alone: it is
what the distilled students carry as their own GIF spacing (docs/transitions.md).

Cost, with trajectory sharing: `probes` + the transition's in-betweens are rendered instead of its in-betweens,
each from the branch step (20 steps, branch 0.8: 4 steps each), less the snapped ones: 16 frames, 12 probes:
148 UNet steps instead of 100 without snapping, about 132 at snap 0.2. Without sharing every probe costs a
whole frame.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sd.gif.renderer import FrameRenderer, RenderedFrame
from sd.gif.smoothness import frame_distance, step_distances
from sd.gif.timeline import FrameSpec


def first_probes(count: int) -> list[float]:
    """`count` evenly spaced weights inside (0, 1)."""
    return [i / (count + 1) for i in range(1, count + 1)]


def halve_largest(weights: list[float], steps: list[float], count: int) -> list[float]:
    """Midpoints of the `count` largest steps (steps[i]: weights[i] -> weights[i + 1]), weights sorted with the
    ends 0 and 1 included; steps already narrower than 1e-4 in weight are not split further."""
    order = sorted(range(len(steps)), key=lambda i: -steps[i])
    splittable = [i for i in order if weights[i + 1] - weights[i] > 1e-4 and steps[i] > 0]
    return sorted((weights[i] + weights[i + 1]) / 2 for i in splittable[:count])


def respaced(planned: list[float], weights: list[float], steps: list[float]) -> list[float]:
    """The weights D^-1(w D(1)) of the `planned` weights, from probes `weights` (sorted, 0 and 1 included) and
    the `steps` between consecutive probes. A path that does not move (D(1) = 0) keeps the planned weights."""
    distance = np.concatenate([[0.0], np.cumsum(steps)])  # D at each probe, (m + 1,)
    total = distance[-1]
    if total <= 0:
        return list(planned)
    # np.interp needs increasing x: a stretch where nothing moves gets a negligible slope instead of none.
    distance = distance + np.arange(len(distance)) * total * 1e-9
    return [float(np.interp(w * distance[-1], distance, weights)) for w in planned]


def snapped(
    planned: list[float], drawn: list[float], weights: list[float], steps: list[float], snap: float, count: int,
    taken: set[float],
) -> list[float]:  # fmt: skip
    """The `drawn` weights (those of the `planned` ones, respaced), each replaced by the weight of a probe among
    `weights` (sorted, 0 and 1 included; `steps` between them) that lies within `snap` frame steps of the planned
    distance w D(1), a frame step being D(1) / (count + 1) for `count` in-betweens. The nearest free probe wins,
    and it is then `taken` (updated): one probe stands in for one frame at most."""
    distance = np.concatenate([[0.0], np.cumsum(steps)])  # D at each probe, (m + 1,)
    reach = snap * distance[-1] / (count + 1)
    probes = list(zip(weights[1:-1], distance[1:-1], strict=True))  # (weight, D) of the in-betweens rendered
    out = []
    for w, target in zip(planned, drawn, strict=True):
        gap, probe = min(((abs(d - w * distance[-1]), p) for p, d in probes if p not in taken), default=(np.inf, 0.0))
        out.append(probe if gap < reach else target)
        taken.add(out[-1])
    return out


def choose_frames(distances: np.ndarray, planned: list[float]) -> list[int]:
    """Of candidate frames 0..M in weight order (0: the first keyframe, M: the second), the len(planned) ones,
    ends included, whose steps best follow the planned progress: the path minimising the kinetic energy

        E = sum_i d(c_i, c_i+1)^2 / (e_i+1 - e_i),   e = planned (0 ... 1)

    which, for a given path length, is least when every step is proportional to its share of progress (equal
    steps for linear easing), and which also prefers shorter paths. `distances` (M + 1, M + 1) between the
    candidates. Dynamic programming over (frame slot, candidate), O(len(planned) M^2)."""
    count, slots = len(distances), len(planned)
    progress = np.diff(np.asarray(planned, dtype=np.float64)).clip(min=1e-12)  # (slots - 1,)
    energy = np.full((slots, count), np.inf)
    came_from = np.zeros((slots, count), dtype=np.int64)
    energy[0, 0] = 0.0
    for i in range(1, slots):
        # candidate j in slot i: from a candidate j' < j in slot i - 1 (at least i - 1 of them before it)
        cost = energy[i - 1][:, None] + distances**2 / progress[i - 1]  # (from j', to j)
        cost[np.tril_indices(count)] = np.inf  # strictly forward in weight
        came_from[i] = np.argmin(cost, axis=0)
        energy[i] = cost[came_from[i], np.arange(count)]
    path = [count - 1]
    for i in range(slots - 1, 0, -1):
        path.append(int(came_from[i, path[-1]]))
    return path[::-1]


def render_evenly(
    renderer: FrameRenderer, specs: list[FrameSpec], probes: int, snap: float, rounds: int
) -> list[RenderedFrame]:  # fmt: skip
    """The frames of `specs`, the in-betweens of each transition moved to the weights of even steps."""
    planned: dict[tuple[int, int], set[float]] = {}  # transition -> its planned in-betweens' weights
    for spec in specs:
        if spec.weight > 0:
            planned.setdefault((spec.left, spec.right), set()).add(spec.weight)
    ends = sorted({i for spec in specs for i in (spec.left, spec.right)})
    keyframes = {frame.spec.left: frame for frame in renderer.render([FrameSpec(i, i, 0.0) for i in ends])}
    seen: dict[tuple[int, int], dict[float, RenderedFrame]] = {pair: {} for pair in planned}

    def path(pair: tuple[int, int]) -> tuple[list[float], list[RenderedFrame]]:
        """Weights 0 .. 1 and frames of everything rendered so far between the transition's keyframes."""
        inside = sorted(seen[pair].items())
        return [0.0, *(w for w, _ in inside), 1.0], [keyframes[pair[0]], *(f for _, f in inside), keyframes[pair[1]]]

    def render(new: dict[tuple[int, int], list[float]]) -> None:
        frames = renderer.render([FrameSpec(*pair, w) for pair, weights in new.items() for w in weights])
        for frame in frames:
            seen[frame.spec.left, frame.spec.right][frame.spec.weight] = frame

    def steps(pair: tuple[int, int]) -> tuple[list[float], list[float]]:
        weights, frames = path(pair)
        return weights, step_distances([f.image for f in frames])

    render({pair: first_probes(max(1, probes // 2)) for pair in planned})
    while True:  # halve each transition's largest step, one probe a round, until `probes` are rendered
        new = {pair: halve_largest(*steps(pair), 1) for pair in planned if len(seen[pair]) < probes}
        new = {pair: weights for pair, weights in new.items() if weights}
        if not new:
            break
        render(new)
    targets: dict[tuple[int, int], dict[float, float]] = {pair: {} for pair in planned}  # planned -> drawn weight
    for offset in range(rounds):  # slots offset, offset + rounds, ..., with D as the earlier rounds refined it
        for pair in planned:
            slots = sorted(planned[pair])[offset::rounds]
            weights, distances = steps(pair)
            drawn = respaced(slots, weights, distances)
            drawn = snapped(slots, drawn, weights, distances, snap, len(planned[pair]), set(targets[pair].values()))
            targets[pair] |= dict(zip(slots, drawn, strict=True))
        render({pair: sorted({w for w in t.values() if w not in seen[pair]}) for pair, t in targets.items()})

    chosen: dict[tuple[int, int, float], RenderedFrame] = {}
    for pair, weights in planned.items():
        slots = sorted(weights)
        _, frames = path(pair)
        if len(frames) < len(slots) + 2:  # fewer distinct frames than slots: show the targets as they are
            chosen |= {(*pair, w): seen[pair][targets[pair][w]] for w in slots}
            continue
        images = [f.image for f in frames]
        distances = np.array([[frame_distance(a, b) for b in images] for a in images])  # (M + 1, M + 1)
        picked = choose_frames(distances, [0.0, *slots, 1.0])[1:-1]
        chosen |= {(*pair, w): frames[i] for w, i in zip(slots, picked, strict=True)}
    return [replace(keyframes[s.left], spec=s) if s.weight == 0 else chosen[s.left, s.right, s.weight] for s in specs]
