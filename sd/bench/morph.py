"""`python -m sd bench morph`: how evenly and how directly transitions move, per kind of change and per method.

Each case is two keyframes 16 frames apart (15 in-betweens), prompts of the shapes the small model is trained
on, rendered with the shipped model for several seeds. Pairs change one attribute (colour, background, size,
shape, position) or all of them (mix); each method is a GifSettings change, and a plain pixel crossfade of
the same keyframes at the same blend weights is the reference a generation must not be. Two more references
need no model: the ideal morph (sd/data/in_between.py: every attribute on a straight path, keyframes included,
drawn by the scene renderer at even weights) and the same frames through the model's autoencoder (encoded,
decoded): what its decoder can show of an ideal morph at best. Per transition (smoothness.py, sd/eval/wander.py):
    jump ratio  largest / median step (mean |pixel difference|)        1 = even
    gini        of the steps (1 - gini is AID's smoothness)            0 = even
    detour      CIELAB path length / direct distance                    1 = straight
    wander      share of in-betweens off the way between the keyframes  0 = none
    crossfade   share of in-betweens a pixel blend draws                0 = none
    UNet steps  sampler steps of the whole transition, keyframes included (a guided step counts once)
Medians and worsts are over the pairs and seeds of a kind. Every run is deterministic (same seeds, same
settings, same frames), so two runs of the bench agree exactly; the noise reported is that of the sample:
the difference between the medians of the first and second half of the seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from sd.atomic_output import atomic_output
from sd.data.captions import canonical_caption
from sd.data.in_between import ideal_morph
from sd.data.shapes import Scene
from sd.eval.classifier import ShapesClassifier
from sd.eval.wander import off_the_way
from sd.gif.animate import animate
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings, with_model_defaults
from sd.gif.smoothness import CROSSFADE_THRESHOLD, blend_gap, transition_stats
from sd.gif.timeline import FrameSpec
from sd.images import image_to_tensor, tensor_to_images
from sd.pipeline import StableDiffusionPipeline, generators_for


@dataclass(frozen=True)
class Pair:
    kind: str
    a: Scene
    b: Scene

    @property
    def prompts(self) -> tuple[str, str]:
        return canonical_caption(self.a), canonical_caption(self.b)


def _scene(text: str) -> Scene:
    """'large red circle center blue' -> Scene (size colour shape position background; position may be 2 words)."""
    size, colour, shape, *position, background = text.split()
    return Scene(shape, colour, background, size, " ".join(position))


# Two pairs per kind of change; no held-out colour-shape pair (vocabulary.py), so keyframes draw well.
PAIRS = tuple(
    Pair(kind, _scene(a), _scene(b))
    for kind, a, b in (
        ("colour", "large red circle center blue", "large yellow circle center blue"),
        ("colour", "small teal triangle top right white", "small purple triangle top right white"),
        ("background", "large white star center blue", "large white star center black"),
        ("background", "small red square bottom left yellow", "small red square bottom left green"),
        ("size", "small green square center black", "large green square center black"),
        ("size", "large blue heart top right pink", "small blue heart top right pink"),
        ("shape", "large pink circle center gray", "large pink star center gray"),
        ("shape", "small white ring bottom right brown", "small white cross bottom right brown"),
        ("position", "large orange heart top left teal", "large orange heart bottom right teal"),
        ("position", "small yellow diamond center purple", "small yellow diamond top right purple"),
        ("mix", "large red circle center blue", "small yellow star top left black"),
        ("mix", "large white heart center pink", "small teal diamond bottom left orange"),
    )
)
KINDS = tuple(dict.fromkeys(p.kind for p in PAIRS))
CROSSFADE = "pixel crossfade"
IDEAL = "ideal morph (rendered)"
IDEAL_DECODED = "ideal morph through the autoencoder"
DEFAULT = "default: even spacing, linear easing"
BEFORE = "before: planned, smooth easing"
PLANNED = {"frame_spacing": "planned", "easing": "smooth"}  # the defaults before this bench chose new ones
# Each method: the GifSettings fields it changes from the defaults (the bench's batch aside); all but the first rows
# change one thing from the defaults before (PLANNED), as they were measured when choosing.
METHODS: dict[str, dict] = {
    DEFAULT: {},
    BEFORE: PLANNED,
    "no sharing": PLANNED | {"share": False},
    "branch 0.6": PLANNED | {"branch": 0.6},
    "linear easing": PLANNED | {"easing": "linear"},
    "text slerp": PLANNED | {"text_interp": "slerp"},
    "text switched at w = 0.5": PLANNED | {"text_interp": "off"},
    "adain": PLANNED | {"adain": True},
    "adain, no sharing": PLANNED | {"adain": True, "share": False},
    "even spacing": PLANNED | {"frame_spacing": "even"},
    "even spacing + adain": PLANNED | {"frame_spacing": "even", "adain": True},
    "even spacing + adain, no sharing": PLANNED | {"frame_spacing": "even", "adain": True, "share": False},
    "attention outer": PLANNED | {"attention": "outer"},
    "attention inner": PLANNED | {"attention": "inner"},
    "attention outer, all steps": PLANNED | {"attention": "outer", "attention_fraction": 1.0},
    "attention outer, no sharing": PLANNED | {"attention": "outer", "share": False},
    "attention inner, no sharing": PLANNED | {"attention": "inner", "share": False},
    "default + attention outer": {"attention": "outer"},
    # two ways to render fewer frames, for a few-step student whose probe costs as much as a frame: fewer probes (7 a
    # transition keep its 193-frame GIF under 0.1x the teacher's UNet evaluations, sd/bench/distilled.py), or
    # probes shown in place of frames they nearly match (--snap); a distilled student's own (snap 0.25 in 3 rounds,
    # STUDENT_GIF in sd/loading/student.py) on any model, and the default model's (no snap, 2 rounds) on a student
    "default, 7 probes": {"probes": 7},
    "default, snap 0.2": {"snap": 0.2},
    "default, snap 0.25, 3 rounds": {"snap": 0.25, "rounds": 3},
    "default, no snap, 2 rounds": {"snap": 0.0, "rounds": 2},
}
SEEDS = (0, 1, 2, 3)
FRAMES = 16  # steps of a transition: keyframes at frames 0 and 16
QUICK = {"pairs": (PAIRS[0], PAIRS[8]), "seeds": (0,), "frames": 4, "steps": 6}
Sheet = dict[str, dict[str, list[Image.Image]]]  # kind -> method -> frames, keyframe to keyframe
BATCH = 6  # frames per UNet call: batch-invariant pixels (renderer.py), several times faster on a CPU


def crossfade(a: Image.Image, b: Image.Image, weights: list[float]) -> list[Image.Image]:
    """(1 - w) a + w b per pixel, rounded to 8 bits: what a video editor's dissolve draws."""
    x, y = (np.asarray(im.convert("RGB"), dtype=np.float64) for im in (a, b))
    return [Image.fromarray(np.round((1 - w) * x + w * y).astype(np.uint8)) for w in weights]


def blend_weights(specs: list[FrameSpec]) -> list[float]:
    """How much of the second keyframe each frame of one transition shows: 0, the in-betweens' weights, 1."""
    return [0.0, *(s.weight for s in specs[1:-1]), 1.0]


def through_autoencoder(pipe: StableDiffusionPipeline, frames: list[Image.Image]) -> list[Image.Image]:
    """Each frame encoded (one posterior sample, seed 0) and decoded by the model's autoencoder."""
    images = torch.cat([image_to_tensor(f, f.width, f.height) for f in frames])  # (F, 3, 64, 64)
    latents = torch.cat([pipe.encode_image(image[None], generators_for(0, 1)) for image in images])  # (F, 4, 8, 8)
    return tensor_to_images(pipe.decode_latents(latents))


def measure(frames: list[Image.Image], specs: list[FrameSpec], judge: ShapesClassifier) -> dict:
    """The measures of one transition (frames: keyframe, in-betweens, keyframe)."""
    stats = transition_stats(specs, frames)[0]
    gaps = [blend_gap(frame, frames[0], frames[-1]) for frame in frames[1:-1]]
    off = off_the_way(frames, judge)
    return {
        "jump_ratio": stats.jump_ratio, "gini": stats.gini, "detour": stats.detour,
        "wander": sum(bool(why) for why in off) / len(off), "off_the_way": off,
        "crossfade": sum(g.is_crossfade() for g in gaps) / len(gaps),
        "blend_gaps": [g.blend for g in gaps], "hold_gaps": [g.hold for g in gaps], "weights": blend_weights(specs),
    }  # fmt: skip


def run_bench(
    pipe: StableDiffusionPipeline, judge: ShapesClassifier, methods: dict[str, dict] = METHODS,
    pairs: tuple[Pair, ...] = PAIRS, seeds: tuple[int, ...] = SEEDS, frames: int = FRAMES, steps: int = 20,
    progress: bool = True,
) -> tuple[list[dict], Sheet]:  # fmt: skip
    """Every method on every pair and seed, the pixel crossfade of each case's keyframes (every method draws
    the same keyframes) and the ideal morph at even weights: (one record per transition, {kind: {method:
    frames}} of the first pair and seed of each kind, for the contact sheet)."""
    records, sheet = [], {}
    todo = [(pair, seed, name) for pair in pairs for seed in seeds for name in methods]
    for pair, seed, name in tqdm(todo, desc="transitions", disable=not progress):
        keyframes = [Keyframe(0, pair.prompts[0]), Keyframe(frames, pair.prompts[1])]
        settings = GifSettings(seed=seed, steps=steps, batch=BATCH, **methods[name])
        # a student's own steps and spacing, as `sd gif`, except what the method sets
        settings = with_model_defaults(settings, pipe.checkpoint.defaults, given=set(methods[name]))
        result = animate(keyframes, None, settings, pipe=pipe, cache_dir=None, progress=False)
        images, specs = result.frames, result.specs
        shown = {name: images}
        case = {"kind": pair.kind, "pair": pairs.index(pair), "seed": seed}
        records.append(case | {"method": name, "unet_steps": result.unet_steps} | measure(images, specs, judge))
        if name == next(iter(methods)):
            fade = [images[0], *crossfade(images[0], images[-1], blend_weights(specs)[1:-1]), images[-1]]
            even = [i / frames for i in range(frames + 1)]
            ideal = ideal_morph(pair.a, pair.b, even)
            references = {CROSSFADE: fade, IDEAL: ideal, IDEAL_DECODED: through_autoencoder(pipe, ideal)}
            shown |= references
            for reference, drawn in references.items():
                record = case | {"method": reference, "unet_steps": 0} | measure(drawn, specs, judge)
                records.append(record | ({} if reference == CROSSFADE else {"weights": even}))
        if seed == seeds[0] and pair == next(p for p in pairs if p.kind == pair.kind):
            sheet.setdefault(pair.kind, {}).update(shown)
    return records, sheet


COLUMNS = ("jump_ratio", "gini", "detour", "wander", "crossfade")


def summarise(records: list[dict], seeds: tuple[int, ...]) -> dict:
    """{kind: {method: {n, median and worst of each measure, UNet steps, noise of the median jump ratio}}},
    with the kind "all" over every pair."""
    half = set(seeds[: len(seeds) // 2])
    summary: dict[str, dict] = {}
    methods = list(dict.fromkeys(r["method"] for r in records))
    for kind in ["all", *dict.fromkeys(r["kind"] for r in records)]:
        rows = summary.setdefault(kind, {})
        for method in methods:
            cases = [r for r in records if r["method"] == method and kind in ("all", r["kind"])]
            row: dict = {"n": len(cases), "unet_steps": float(np.median([c["unet_steps"] for c in cases]))}
            for column in COLUMNS:
                values = [c[column] for c in cases]
                row[column] = {"median": float(np.median(values)), "worst": float(max(values))}
            if half and len(half) < len(seeds):
                medians = [np.median([c["jump_ratio"] for c in cases if (c["seed"] in half) == side])
                           for side in (True, False)]  # fmt: skip
                row["jump_ratio_noise"] = float(abs(medians[0] - medians[1]))
            rows[method] = row
    return summary


def table(summary: dict, kind: str) -> str:
    """A markdown table of one kind: median (worst) of each measure, per method."""
    rows = summary[kind]
    noise = any("jump_ratio_noise" in row for row in rows.values())
    head = "| method | n | jump ratio | gini | detour | wander | crossfade | UNet steps |" + (
        " jump ratio noise |" if noise else ""
    )
    lines = [head, "| --- " * (head.count("|") - 1) + "|"]
    for method, row in rows.items():
        cells = [f"{row[c]['median']:.2f} ({row[c]['worst']:.2f})" for c in COLUMNS]
        line = f"| {method} | {row['n']} | " + " | ".join(cells) + f" | {row['unet_steps']:.0f} |"
        if noise:
            line += f" {row.get('jump_ratio_noise', float('nan')):.2f} |"
        lines.append(line)
    return "\n".join(lines)


SHEET_ROWS = (BEFORE, CROSSFADE, "even spacing", DEFAULT)  # the short sheet's rows
REFERENCE_ROWS = (DEFAULT, CROSSFADE, IDEAL, IDEAL_DECODED)  # the default beside what needs no model


def contact_sheet(sheet: Sheet, path: Path, rows: tuple[str, ...] | None = None) -> None:
    """One block per kind of change (its first pair and seed), one row per method (`rows`, default all), keyframe
    to keyframe, at the frames' own pixels."""
    font = ImageFont.load_default(size=13)
    names = [name for name in next(iter(sheet.values())) if rows is None or name in rows]
    frames = len(next(iter(next(iter(sheet.values())).values())))
    size = next(iter(next(iter(sheet.values())).values()))[0].width
    label = 20 + int(max(font.getlength(name) for name in names))
    heading = 22
    block = heading + size * len(names)
    canvas = Image.new("RGB", (label + size * frames, block * len(sheet)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (kind, methods) in enumerate(sheet.items()):
        top = k * block
        draw.text((4, top + 4), kind, fill="black", font=font)
        for r, name in enumerate(names):
            y = top + heading + r * size
            draw.text((4, y + size // 2 - 7), name, fill="black", font=font)
            for c, frame in enumerate(methods[name]):
                canvas.paste(frame.convert("RGB"), (label + c * size, y))
    small = canvas.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)  # 1/4 the bytes
    with atomic_output(path, overwrite=True) as tmp:
        small.save(tmp, format="PNG", optimize=True)


def bench_morph(
    pipe: StableDiffusionPipeline, judge: ShapesClassifier, out: Path, quick: bool = False,
    methods: dict[str, dict] = METHODS, progress: bool = True,
) -> dict:  # fmt: skip
    """Run, summarise, and write out/morph.json, out/morph.md, the contact sheet out/morph.png and one with the
    SHEET_ROWS only, out/morph-short.png, and the default beside the references, out/morph-references.png;
    returns the record."""
    plan = QUICK if quick else {"pairs": PAIRS, "seeds": SEEDS, "frames": FRAMES, "steps": GifSettings().steps}
    own = pipe.checkpoint.defaults  # a distilled student samples in its own few steps (run_bench applies them)
    plan = plan | ({"steps": own.steps} if own is not None and own.steps is not None else {})
    records, sheet = run_bench(pipe, judge, methods, progress=progress, **plan)
    summary = summarise(records, plan["seeds"])
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "pairs": [{"kind": p.kind, "prompts": p.prompts} for p in plan["pairs"]], "seeds": list(plan["seeds"]),
        "frames": plan["frames"], "steps": plan["steps"], "methods": methods, "threads": torch.get_num_threads(),
        "crossfade_threshold": CROSSFADE_THRESHOLD, "summary": summary, "transitions": records,
    }  # fmt: skip
    with atomic_output(out / "morph.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    markdown = "\n\n".join(f"**{kind}**\n\n{table(summary, kind)}" for kind in summary)
    with atomic_output(out / "morph.md", overwrite=True) as tmp:
        tmp.write_text(markdown + "\n")
    contact_sheet(sheet, out / "morph.png")
    if all(name in next(iter(sheet.values())) for name in SHEET_ROWS):
        contact_sheet(sheet, out / "morph-short.png", SHEET_ROWS)
    if DEFAULT in next(iter(sheet.values())):
        contact_sheet(sheet, out / "morph-references.png", REFERENCE_ROWS)
    return record
