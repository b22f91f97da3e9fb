"""`python -m sd bench distilled`: a few-step student against its teacher, side by side in one process (issue 19).

Each model samples with its own defaults, the way `python -m sd gif` applies them (with_model_defaults): the
teacher with GifSettings() (dpmpp_2m, 20 steps, guidance 5), the student with its file's sampler, steps and
guidance (LCM, 1-4 steps, no guidance). Per model, per image (one txt2img) and per GIF (`animate`, keyframes to
frames, nothing cached, nothing written):

    seconds           median over interleaved rounds (teacher, student, teacher, ...): drift hits both alike
    sampler steps     summed over the frames (Animation.unet_steps; probes of even frame spacing included)
    UNet evaluations  sampler steps x 2 when guided (the conditional and the unconditional branch, batched in
                      one call), x 1 without: what the issue counts ("40-50 UNet evaluations per image")
    UNet rows run     measured by a hook: batch rows through the UNet. The evaluations, except that the GIF
                      driver runs a lone unguided frame as two rows (renderer.py: batch-invariant pixels); by
                      default it pairs unguided frames in a call (GifSettings.frames_per_call), so few are lone

Ratios are student / teacher; the goals are issue 19's, on the 193-frame GIF: <= 0.3x the teacher's seconds
with <= 0.1x its UNet evaluations. Keyframes are shapes-world captions (morph.py's PAIRS), one every 24 frames
and one on the last frame, from a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sd.bench.morph import PAIRS
from sd.bench.report_files import write_report
from sd.bench.timing import interleaved_medians
from sd.errors import UserError
from sd.file_hash import file_sha256
from sd.gif.animate import animate
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings, with_model_defaults
from sd.loading.checkpoint import load_checkpoint
from sd.loading.student import model_defaults, student_info
from sd.pipeline import StableDiffusionPipeline

SEED = 0
KEYFRAME_GAP = 24  # frames between keyframes: the 193-frame GIF has 9 keyframes, 8 transitions of 24 frames
PROMPTS = tuple(dict.fromkeys(prompt for pair in PAIRS for prompt in pair.prompts))  # distinct, in a fixed order
GOAL_FRAMES = 193
GOALS = {"seconds": 0.3, "evaluations": 0.1}  # student / teacher on the 193-frame GIF, at most
MEASURES = {"seconds": "seconds", "steps": "sampler steps", "evaluations": "UNet evaluations", "rows": "UNet rows run"}


def bench_keyframes(frames: int) -> list[Keyframe]:
    """A keyframe every KEYFRAME_GAP frames and one on the last frame, the prompts in PROMPTS' order."""
    if frames < 2:
        raise UserError(f"--frames {frames}: a GIF needs at least 2 frames (a keyframe at each end)")
    positions = [*range(0, frames - 1, KEYFRAME_GAP), frames - 1]
    return [Keyframe(frame, PROMPTS[i % len(PROMPTS)]) for i, frame in enumerate(positions)]


@dataclass
class Model:
    """One side of the comparison: a loaded model and the sampling it runs with."""

    role: str  # "teacher" or "student"
    path: Path
    pipe: StableDiffusionPipeline
    settings: GifSettings
    rows: int = 0  # batch rows through the UNet since the last reset

    @classmethod
    def load(cls, role: str, path: Path, batch: int | None = None, snap: float | None = None) -> Model:
        settings = with_model_defaults(GifSettings(seed=SEED, batch=batch), model_defaults(path))
        settings = settings if snap is None else replace(settings, snap=snap)
        model = cls(role, path, StableDiffusionPipeline(load_checkpoint(path)), settings)
        model.pipe.checkpoint.unet.register_forward_pre_hook(model._count)
        return model

    def _count(self, _module: torch.nn.Module, args: tuple) -> None:
        self.rows += args[0].shape[0]  # x: (rows, 4, h, w)

    @property
    def guided(self) -> bool:
        return self.settings.guidance > 1.0  # as the pipeline decides (pipeline.py, conditioning.py)

    def describe(self) -> str:
        s = self.settings
        return f"{s.sampler}, {s.steps} steps, guidance {s.guidance:g}"

    def image(self) -> tuple[int, int]:
        """One txt2img of the first prompt: (sampler steps, frames)."""
        s = self.settings
        self.pipe.txt2img(PROMPTS[0], s.negative_prompt, seed=s.seed, steps=s.steps, sampler=s.sampler,
                          guidance=s.guidance, spacing=s.spacing, progress=False)  # fmt: skip
        return s.steps, 1

    def gif(self, frames: int) -> tuple[int, int]:
        """The whole GIF, keyframes to frames, from nothing cached: (sampler steps, frames)."""
        result = animate(bench_keyframes(frames), None, self.settings, pipe=self.pipe, cache_dir=None, progress=False)
        return result.unet_steps, len(result.frames)


def task_name(frames: int | None) -> str:
    return "image" if frames is None else f"{frames}-frame GIF"


def bench_distilled(
    teacher: Path, student: Path, frames: tuple[int, ...] = (24, GOAL_FRAMES), repeats: int = 3,
    batch: int | None = None, student_snap: float | None = None, progress: bool = True,
) -> dict:  # fmt: skip
    """Load both models, warm each up, then time every task interleaved; returns the record (see the docstring).
    `batch`: GIF frames per UNet call for both (None: each model's default); `student_snap`: the student's --snap
    (None: the default), the teacher keeping its own."""
    if repeats < 1:
        raise UserError(f"--repeats {repeats} must be at least 1")
    if batch is not None and batch < 1:
        raise UserError(f"--batch {batch} must be at least 1")
    for n in frames:
        bench_keyframes(n)  # refuses too few frames before anything loads
    if model_defaults(student) is None:
        raise UserError(f"{student}: not a distilled student (it carries no sampler, steps and guidance of its own)")
    if student_snap is not None:
        replace(GifSettings(), snap=student_snap).validate()
    models = {"teacher": Model.load("teacher", teacher, batch),
              "student": Model.load("student", student, batch, student_snap)}  # fmt: skip
    tasks: list[int | None] = [None, *frames]
    counts: dict[tuple[str, str], dict] = {}
    bar = tqdm(total=2 * len(models) + repeats * len(tasks) * len(models), desc="bench distilled", disable=not progress)

    def run(model: Model, n: int | None) -> Callable[[], None]:
        def once() -> None:
            model.rows = 0
            steps, made = model.image() if n is None else model.gif(n)
            counts[task_name(n), model.role] = {"steps": steps, "rows": model.rows, "frames": made}
            bar.update()

        return once

    for model in models.values():  # warm-up, untimed: first calls pick kernels and fill caches
        for n in (None, 2):
            run(model, n)()
    runs = {f"{task_name(n)}/{role}": run(model, n) for n in tasks for role, model in models.items()}
    medians = interleaved_medians(runs, repeats=repeats, warmup=0)
    bar.close()

    results = {}
    for n in tasks:
        task = task_name(n)
        sides = {}
        for role, model in models.items():
            c = counts[task, role]
            evaluations = c["steps"] * (2 if model.guided else 1)
            sides[role] = {"seconds": medians[f"{task}/{role}"], "steps": c["steps"], "evaluations": evaluations,
                           "rows": c["rows"], "frames": c["frames"]}  # fmt: skip
        ratios = {m: sides["student"][m] / sides["teacher"][m] for m in MEASURES}
        keyframes = [] if n is None else [{"frame": k.frame, "prompt": k.prompt} for k in bench_keyframes(n)]
        results[task] = sides | {"ratios": ratios, "keyframes": keyframes}
    info = student_info(student)
    return {
        "models": {role: {"path": str(m.path), "name": m.pipe.checkpoint.name, "sampler": m.settings.sampler,
                          "steps": m.settings.steps, "guidance": m.settings.guidance, "guided": m.guided}
                   for role, m in models.items()},
        "teacher_is_students_base": info is not None and teacher.is_file() and file_sha256(teacher) == info.base_sha256,
        "image_prompt": PROMPTS[0], "seed": SEED, "frames": list(frames), "repeats": repeats, "batch": batch,
        "student_snap": student_snap,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "results": results, "goals": goals(results),
    }  # fmt: skip


def goals(results: dict) -> dict | None:
    """Issue 19's goals on the 193-frame GIF, or None when it was not measured."""
    ratios = results.get(task_name(GOAL_FRAMES), {}).get("ratios")
    if ratios is None:
        return None
    return {m: {"ratio": ratios[m], "at_most": limit, "met": ratios[m] <= limit} for m, limit in GOALS.items()}


def markdown(record: dict) -> str:
    """A header, the side-by-side table (one row per task and measure) and the goals."""
    teacher, student = record["models"]["teacher"], record["models"]["student"]

    def who(m: dict) -> str:
        return f"{m['name']} ({m['sampler']}, {m['steps']} steps, guidance {m['guidance']:g})"

    changes = [] if record.get("batch") is None else [f"--batch {record['batch']} for both"]
    changes += [] if record.get("student_snap") is None else [f"--snap {record['student_snap']:g} for the student"]
    but = f" but {' and '.join(changes)}" if changes else ""
    lines = [
        f"Teacher {who(teacher)} against student {who(student)}; torch {record['torch']}, {record['threads']} "
        f"threads, CPU; medians of {record['repeats']} interleaved rounds after a warm-up; seed {record['seed']}; "
        f"GIFs: a keyframe every {KEYFRAME_GAP} frames and on the last, each model's own GIF settings{but}, "
        "nothing cached. A guided step is one batched UNet call that counts 2 evaluations (both branches); UNet rows "
        "run are measured (the GIF driver runs a lone unguided frame as two rows).",
        "",
        "| task | measure | teacher | student | student / teacher |",
        "| --- | --- | --- | --- | --- |",
    ]
    for task, r in record["results"].items():
        for key, label in MEASURES.items():
            t, s = r["teacher"][key], r["student"][key]
            cells = (f"{t:.3f}", f"{s:.3f}") if key == "seconds" else (str(t), str(s))
            lines.append(f"| {task} | {label} | {cells[0]} | {cells[1]} | {r['ratios'][key]:.3f}x |")
    g = record["goals"]
    if g is None:
        lines += ["", f"Goals (issue 19): not measured; they are on the {GOAL_FRAMES}-frame GIF (--frames ... 193)."]
    else:
        shown = "; ".join(f"{MEASURES[m]} {v['ratio']:.3f}x <= {v['at_most']}x: {'met' if v['met'] else 'NOT met'}"
                          for m, v in g.items())  # fmt: skip
        lines += ["", f"Goals (issue 19), {GOAL_FRAMES}-frame GIF, student / teacher: {shown}."]
    if not record["teacher_is_students_base"]:
        lines += ["", "Note: the teacher is not the base file the student was distilled from."]
    return "\n".join(lines)


def write(record: dict, out: Path) -> tuple[Path, Path]:
    """out/distilled.md and out/distilled.json."""
    return write_report(record, markdown(record), out, "distilled")
