"""Keyframes: which prompt the animation shows at which frame.

    0: a red circle on a blue background
    24: a blue square on a yellow background
    48 seed=7: a green star on a black background

One keyframe a line, `FRAME: PROMPT` or `FRAME seed=SEED: PROMPT`; blank lines and lines starting with
`#` are ignored; a prompt may itself contain colons (only the first one separates). The first keyframe
is at frame 0, frames strictly increase, and no frame is above MAX_FRAME. The last line works with or
without a trailing newline (Giffusion drops the last character of a file without one). Any other input
is refused with one line naming the line and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sd.errors import UserError

MAX_FRAME = 10_000  # about 14 minutes at 12 fps: well past any GIF, and a typo like 2400000 is caught
_HEAD = re.compile(r"^\s*(?P<frame>[^\s:]+)(?:\s+seed\s*=\s*(?P<seed>[^\s:]+))?\s*$")


@dataclass(frozen=True)
class Keyframe:
    frame: int
    prompt: str
    seed: int | None = None  # None: derived from the run's --seed (see the GIF driver)


def _integer(text: str, what: str, where: str) -> int:
    if not re.fullmatch(r"\+?\d+", text):
        raise UserError(f"{where}: {what} {text!r} is not a non-negative integer")
    return int(text)


def parse_keyframes(text: str, source: str = "keyframes") -> list[Keyframe]:
    """Keyframes from `text` (a file's contents, or one argument per line); UserError on any problem."""
    keyframes: list[Keyframe] = []
    last_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {number}"
        if ":" not in line:
            raise UserError(f"{where}: missing ':' (expected 'FRAME: PROMPT', e.g. '0: a red circle')")
        head, prompt = line.split(":", 1)
        match = _HEAD.match(head)
        if match is None:
            raise UserError(f"{where}: {head.strip()!r} is not 'FRAME' or 'FRAME seed=SEED' before the ':'")
        frame = _integer(match["frame"], "frame", where)
        seed = _integer(match["seed"], "seed", where) if match["seed"] is not None else None
        prompt = prompt.strip()
        if not prompt:
            raise UserError(f"{where}: empty prompt after '{head.strip()}:'")
        if frame > MAX_FRAME:
            raise UserError(f"{where}: frame {frame} is over the cap of {MAX_FRAME}")
        if not keyframes and frame != 0:
            raise UserError(f"{where}: the first keyframe must be at frame 0, not {frame}")
        if keyframes and frame <= keyframes[-1].frame:
            previous = keyframes[-1].frame
            raise UserError(f"{where}: frame {frame} does not come after frame {previous} (line {last_line})")
        keyframes.append(Keyframe(frame, prompt, seed))
        last_line = number
    if not keyframes:
        raise UserError(f"{source}: no keyframes (expected lines like '0: a red circle')")
    return keyframes


def spread_prompts(prompts: list[str], frames: int) -> list[Keyframe]:
    """A plain list of prompts spread evenly over `frames` frames: the first at 0, the last at frames - 1."""
    prompts = [p.strip() for p in prompts]
    if not prompts or any(not p for p in prompts):
        raise UserError("every prompt in the list must be non-empty")
    if len(prompts) == 1:
        return [Keyframe(0, prompts[0])]
    if not len(prompts) <= frames <= MAX_FRAME + 1:
        raise UserError(f"--frames {frames} must be between {len(prompts)} (one per prompt) and {MAX_FRAME + 1}")
    step = (frames - 1) / (len(prompts) - 1)
    return [Keyframe(int(i * step + 0.5), p) for i, p in enumerate(prompts)]  # half up: stays strictly increasing
