"""`python -m sd eval`: how well a shapes model follows its prompts, judged by the attribute classifier.

Prints a markdown table of per-attribute accuracy on held-in and held-out prompts (held-in targets
marked met / not met), and writes OUT/grid.png (samples titled with their prompts) and
OUT/adherence.json (every figure, every sample's prompt, seed and reading, and the settings).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sd.atomic_output import atomic_output
from sd.cli.model_option import add_model_option, apply_model_option, fill_sampling_defaults
from sd.errors import UserError
from sd.loading.checkpoint_types import SamplingDefaults
from sd.paths import CLASSIFIER_PATH, DEFAULT_CHECKPOINT
from sd.samplers import SAMPLERS

EVAL_DEFAULTS = SamplingDefaults("dpmpp_2m", 25, 5.0)  # the settings the shipped models' scores were measured at
GRID_PER_GROUP = 16  # 2 rows of 8 held-in samples, then 2 rows of 8 held-out ones


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score prompt adherence of a shapes model with the attribute classifier",
        description="Generate images for canonical prompts of held-in and held-out colour-shape pairs, read "
        "them with the attribute classifier, and report how often each attribute matches the prompt.",
    )
    parser.add_argument("--checkpoint", help=f"the model to evaluate (default {DEFAULT_CHECKPOINT.name})")
    add_model_option(parser)
    parser.add_argument("--samples", type=int, default=400, help="held-in prompts/images (default 400)")
    parser.add_argument("--held-out-samples", type=int, default=400, help="held-out prompts/images (default 400)")
    own, d = " unless the model has its own (a distilled one)", EVAL_DEFAULTS
    parser.add_argument("--steps", type=int, help=f"denoising steps (default {d.steps}{own})")
    parser.add_argument("--sampler", choices=list(SAMPLERS), help=f"sampler (default {d.sampler}{own})")
    parser.add_argument("--guidance", type=float, help=f"classifier-free guidance scale (default {d.guidance:g}{own})")
    parser.add_argument("--seed", type=int, default=0, help="image j uses seed SEED+j (default 0)")
    parser.add_argument("--batch", type=int, default=1, help="images per prompt in one call (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... for the diffusion model (default cpu)")
    parser.add_argument("--out", default="outputs/eval", help="folder for grid.png and adherence.json")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(func=run)


def validate(args: argparse.Namespace) -> tuple[Path, Path]:
    """Checks that need no model, so a typo fails at once rather than after sampling."""
    apply_model_option(args)
    fill_sampling_defaults(args, EVAL_DEFAULTS)
    for flag, value in (("--samples", args.samples), ("--held-out-samples", args.held_out_samples),
                        ("--steps", args.steps), ("--batch", args.batch)):  # fmt: skip
        if value < 1:
            raise UserError(f"{flag} ({value}) must be at least 1")
    out = Path(args.out)
    paths = out / "grid.png", out / "adherence.json"
    existing = [str(p) for p in paths if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]}: already exists; choose another --out or pass --overwrite")
    return paths


def summary(result: dict) -> dict:
    """The JSON-able part of an `evaluate_adherence` result: figures and each sample's reading."""
    from sd.eval.adherence import targets_met

    records = [
        {"prompt": prompt, "seed": seed, "predicted": predicted,
         "correct": {a: predicted[a] == target[a] for a in result["accuracy"]}}
        for (prompt, _, predicted), target, seed in zip(result["samples"], result["targets"], result["seeds"],
                                                        strict=True)
    ]  # fmt: skip
    figures = {k: result[k] for k in ("held_out", "n_samples", "accuracy", "all_correct")}
    if not result["held_out"]:
        figures["targets_met"] = targets_met(result["accuracy"])
    return figures | {"samples": records}


def grid_cells(result: dict, count: int) -> list:
    from sd.eval.grid import GridCell

    group = "held-out" if result["held_out"] else "held-in"
    return [
        GridCell(image, prompt, group, {a: v for a, v in predicted.items() if v != target[a]})
        for (prompt, image, predicted), target in zip(result["samples"][:count], result["targets"][:count],
                                                      strict=True)
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    grid_path, json_path = validate(args)
    path = Path(args.checkpoint)

    from sd.eval.adherence import evaluate_adherence, markdown_table
    from sd.eval.classifier import load_classifier
    from sd.eval.grid import write_grid
    from sd.loading.checkpoint import load_checkpoint
    from sd.pipeline import StableDiffusionPipeline

    classifier = load_classifier(CLASSIFIER_PATH)
    pipe = StableDiffusionPipeline(load_checkpoint(path), device=args.device)
    settings = dict(steps=args.steps, sampler=args.sampler, guidance=args.guidance, batch=args.batch)
    results = [
        evaluate_adherence(pipe, n, args.seed, held_out, classifier=classifier, **settings)
        for n, held_out in ((args.samples, False), (args.held_out_samples, True))
    ]
    print(f"prompt adherence of {path.name} ({args.sampler}, {args.steps} steps, guidance {args.guidance:g}):")
    print(markdown_table(*results))

    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_grid([c for r in results for c in grid_cells(r, GRID_PER_GROUP)], grid_path, 8, args.overwrite)
    report = {
        "settings": {"checkpoint": str(path), "classifier": str(CLASSIFIER_PATH), "seed": args.seed,
                     "negative_prompt": "", "device": args.device, **settings},
        "held_in": summary(results[0]),
        "held_out": summary(results[1]),
    }  # fmt: skip
    with atomic_output(json_path, overwrite=args.overwrite) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {grid_path} and {json_path}")
    return 0
