"""`python -m sd bench spacing`: how even a long GIF's transitions are under each setting of even frame spacing.

The GIF is `bench distilled`'s (a keyframe every 24 frames: the 193-frame GIF has 8 transitions), rendered with
the model's own GIF settings (a distilled student's sampler, steps and spacing) except --snap and --rounds, which
each row sets, once per seed. Per transition, its jump ratio = largest / median step (smoothness.py); per row:

    median, p90, worst   over all transitions of all seeds (n = transitions x seeds)
    above 3, above 5     the share of transitions with a jump ratio above 3, and above 5 (a cut the eye notices)
    UNet steps           per GIF, mean and max over the seeds (probes included)
    halves               the median and the share above 5 of the first and of the second half of the seeds:
                         two runs of n / 2, their difference the noise of a row

This is where the distilled students' own spacing (snap 0.25 in 3 rounds, STUDENT_GIF in sd/loading/student.py)
was measured against the default model's (no snap, 2 rounds): docs/transitions.md.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sd.bench.distilled import bench_keyframes
from sd.bench.report_files import write_report
from sd.errors import UserError
from sd.gif.animate import animate
from sd.gif.settings import GifSettings, with_model_defaults
from sd.gif.smoothness import transition_stats
from sd.loading.checkpoint import load_checkpoint
from sd.loading.student import STUDENT_GIF, model_defaults
from sd.pipeline import StableDiffusionPipeline

# (snap, rounds): the default model's, a distilled student's own
SPACINGS = ((GifSettings.snap, GifSettings.rounds), (STUDENT_GIF["snap"], STUDENT_GIF["rounds"]))


def parse_spacing(text: str) -> tuple[float, int]:
    """'SNAP,ROUNDS' -> (snap, rounds), validated as `sd gif` validates them."""
    try:
        snap, rounds = text.split(",")
        spacing = float(snap), int(rounds)
    except ValueError:
        raise UserError(f"--spacing {text!r}: give SNAP,ROUNDS, e.g. 0.25,3") from None
    replace(GifSettings(), snap=spacing[0], rounds=spacing[1]).validate()
    return spacing


def summary(ratios: list[list[float]], steps: list[int]) -> dict:
    """One row from the jump ratios of each seed's transitions and each seed's UNet steps."""
    every = np.array([r for seed in ratios for r in seed])
    halves = [np.array([r for seed in part for r in seed]) for part in (ratios[: len(ratios) // 2],
                                                                          ratios[len(ratios) // 2 :])]  # fmt: skip
    return {
        "n": len(every), "median": float(np.median(every)), "p90": float(np.percentile(every, 90)),
        "worst": float(every.max()), "above 3": float(np.mean(every > 3)), "above 5": float(np.mean(every > 5)),
        "steps mean": float(np.mean(steps)), "steps max": int(max(steps)),
        "halves": [{"median": float(np.median(h)), "above 5": float(np.mean(h > 5))} for h in halves if len(h)],
    }  # fmt: skip


def bench_spacing(checkpoint: Path, spacings=SPACINGS, frames: int = 193, seeds: int = 20,
                  progress: bool = True) -> dict:  # fmt: skip
    if seeds < 1:
        raise UserError(f"--seeds {seeds} must be at least 1")
    keyframes = bench_keyframes(frames)
    settings = with_model_defaults(GifSettings(), model_defaults(checkpoint))
    pipe = StableDiffusionPipeline(load_checkpoint(checkpoint))
    rows = {}
    bar = tqdm(total=len(spacings) * seeds, desc="bench spacing", disable=not progress)
    for snap, rounds in spacings:
        ratios, steps = [], []
        for seed in range(seeds):
            run = replace(settings, seed=seed, snap=snap, rounds=rounds)
            result = animate(keyframes, None, run, pipe=pipe, cache_dir=None, progress=False)
            ratios.append([t.jump_ratio for t in transition_stats(result.specs, result.frames)])
            steps.append(result.unet_steps)
            bar.update()
        rows[f"snap {snap:g}, {rounds} rounds"] = summary(ratios, steps)
    return {"checkpoint": checkpoint.name, "frames": frames, "seeds": seeds, "transitions": len(keyframes) - 1,
            "sampler": settings.sampler, "steps": settings.steps, "guidance": settings.guidance,
            "own": f"snap {settings.snap:g}, {settings.rounds} rounds", "rows": rows}  # fmt: skip


def markdown(record: dict) -> str:
    lines = [
        f"{record['checkpoint']} ({record['sampler']}, {record['steps']} steps, guidance {record['guidance']:g}; its "
        f"own spacing: {record['own']}), a {record['frames']}-frame GIF of {record['transitions']} transitions, seeds "
        f"0-{record['seeds'] - 1}; jump ratio = largest / median step of a transition; halves: seeds split in two",
        "",
        "| spacing | n | median | p90 | worst | above 3 | above 5 | UNet steps (mean, max) | halves: median, above 5 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in record["rows"].items():
        halves = " / ".join(f"{h['median']:.2f}, {h['above 5']:.1%}" for h in r["halves"])
        lines.append(f"| {name} | {r['n']} | {r['median']:.2f} | {r['p90']:.2f} | {r['worst']:.2f} | "
                     f"{r['above 3']:.1%} | {r['above 5']:.1%} | {r['steps mean']:.1f}, {r['steps max']} | "
                     f"{halves} |")  # fmt: skip
    return "\n".join(lines)


def write(record: dict, out: Path) -> tuple[Path, Path]:
    """out/spacing.md and out/spacing.json."""
    return write_report(record, markdown(record), out, "spacing")
