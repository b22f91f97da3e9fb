"""Prompt adherence of every one-change mobile ablation at the tiny scale: train, assemble, evaluate, tabulate.

    python -m sd bench mobile-adherence --out outputs/bench/mobile-adherence
    python -m sd bench mobile-adherence --rows 1,3,5 --threads 1 &   # or split the rows over two processes
    python -m sd bench mobile-adherence --rows 2,4,6 --threads 1

Latency and FLOPs say what a switch saves; only training says what it costs. Each row of `python -m sd bench
mobile`'s tiny table (the standard tiny UNet, each switch alone, the mobile-tiny preset) is trained from
scratch with the shipped model's recipe (same data, seed, stage-1 VAE, batch, learning rate and budget: a
5,000-step cosine schedule stopped after step 2,750; `python -m sd.train.text_to_image --set ...`) and scored
with `python -m sd eval`'s protocol. With that recipe the two rows that are shipped models (the standard tiny
UNet and mobile-tiny) are evaluated from `weights/` instead of being trained again.
The preset with ReLU attention is instead converted, as MobileDiffusion converts its model: the trained
mobile-tiny row fine-tuned with ReLU attention (`--init ... --attention relu`, 500 steps at batch 128, lr 2e-4);
the one-change ReLU row shows what training ReLU attention from scratch gives (at this budget: no position).
A shorter budget is not a cheaper ablation: after 1,000 steps (full cosine) the standard model got all five
attributes right on 1% of held-in prompts, so rows differ by noise in what was learned first.
About 55 minutes of training per row on one core. Resumable: OUT/ROW holds each row's training state,
checkpoint and adherence.json, and a rerun skips what is done.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from sd.atomic_output import atomic_output
from sd.bench.mobile import Row, count_cost, tiny_scale_rows
from sd.paths import SHIPPED_MODELS, WEIGHTS_DIR
from unet.config import MOBILE_TINY_UNET, TINY_UNET, UNetConfig

VAE = WEIGHTS_DIR / "tiny-shapes-vae.safetensors"
SHIPPED_RECIPE = {"steps": 5000, "stop_after": 2750, "train_size": 40000}  # how both shipped models were trained
SHIPPED_ROWS = {TINY_UNET: SHIPPED_MODELS["tiny-shapes"], MOBILE_TINY_UNET: SHIPPED_MODELS["mobile-tiny"]}
ATTRIBUTES = ("colour", "shape", "position", "background", "size")
CONVERTED_FROM = {"mobile-tiny + ReLU attention": "mobile-tiny (preset: all but ReLU)"}  # row -> its softmax row
CONVERSION_LR = 2e-4  # with the default batch of 128; --convert-steps sets the length (default 500)


def overrides(config: UNetConfig, base: UNetConfig = TINY_UNET) -> list[str]:
    """The `--set FIELD=VALUE` arguments that turn `base` into `config`."""
    out = []
    for field in dataclasses.fields(config):
        value, default = getattr(config, field.name), getattr(base, field.name)
        if value != default:
            out += ["--set", f"{field.name}={json.dumps(list(value) if isinstance(value, tuple) else value)}"]
    return out


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def row_folder(out: Path, index: int, row: Row) -> Path:
    """Where row `index` keeps its training state, checkpoint and adherence.json."""
    return out / f"{index}-{slug(row.name)}"


def train_row(row: Row, folder: Path, args: argparse.Namespace, init: Path | None = None) -> Path:
    """Train (or resume) the row's model and assemble its EMA weights into folder/model.safetensors.

    With `init` the row is a ReLU conversion of that trained softmax model instead of a training from scratch.
    """
    from sd.loading.original import save_original
    from sd.train import text_to_image
    from sd.train.assemble import assemble

    recipe = {"steps": args.steps, "stop_after": args.stop_after, "train_size": args.train_size}
    if init is None and recipe == SHIPPED_RECIPE and row.config in SHIPPED_ROWS:  # trained exactly so already: it ships
        return SHIPPED_ROWS[row.config]
    path = folder / "model.safetensors"
    if path.exists():
        return path
    train_args = ["--vae", str(VAE), "--out", str(folder / "t2i"), "--train-size", str(args.train_size)]
    if init is None:  # from scratch, with the recipe
        train_args += ["--steps", str(args.steps), *overrides(row.config)]
        if args.stop_after:
            train_args += ["--stop-after", str(args.stop_after)]
    else:  # the weights carry over; only the attention changes
        train_args += ["--init", str(init), "--attention", row.config.attention, "--steps", str(args.convert_steps),
                       "--lr", str(CONVERSION_LR)]  # fmt: skip
    text_to_image.train(text_to_image.parse_args(train_args))
    return save_original(assemble(VAE, folder / "t2i" / "state.pt", name=slug(row.name)), path)


def evaluate_row(checkpoint: Path, folder: Path, samples: int) -> dict:
    """Held-in and held-out adherence with `python -m sd eval`'s defaults, cached in folder/adherence.json."""
    from sd.eval.adherence import evaluate_adherence
    from sd.eval.classifier import load_classifier
    from sd.loading.checkpoint import load_checkpoint
    from sd.pipeline import StableDiffusionPipeline

    path = folder / "adherence.json"
    if path.exists():
        return json.loads(path.read_text())
    pipe, classifier = StableDiffusionPipeline(load_checkpoint(checkpoint)), load_classifier()
    result = {}
    for kind, held_out in (("held_in", False), ("held_out", True)):
        r = evaluate_adherence(pipe, samples, seed=0, held_out=held_out, classifier=classifier)
        result[kind] = {"n": samples, "accuracy": r["accuracy"], "all_correct": r["all_correct"]}
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return result


def table(rows: list[Row], results: dict[str, dict], steps: int) -> str:
    """One line per finished row: cost, held-in accuracy per attribute, then all-five held-in and held-out."""
    head = " | ".join(ATTRIBUTES)
    lines = [
        f"| tiny scale, {steps} training steps | params | FLOPs | {head} | all five | held-out all five |",
        "| --- " * (5 + len(ATTRIBUTES)) + "|",
    ]
    for row in rows:
        if row.name not in results:
            continue
        held_in, held_out = results[row.name]["held_in"], results[row.name]["held_out"]
        cells = " | ".join(f"{100 * held_in['accuracy'][a]:.1f}" for a in ATTRIBUTES)
        name = f"{row.name} (converted)" if row.name in CONVERTED_FROM else row.name
        lines.append(
            f"| {name} | {row.params / rows[0].params:.2f}x | {row.flops / rows[0].flops:.2f}x | {cells} | "
            f"{100 * held_in['all_correct']:.1f} | {100 * held_out['all_correct']:.1f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Train and evaluate the chosen rows (`python -m sd bench mobile-adherence`'s options), then tabulate every
    finished one into OUT/adherence.md."""
    rows = tiny_scale_rows()
    for row in rows:
        row.params, row.flops = count_cost(row.config, 2, 8)
    chosen = range(len(rows)) if args.rows is None else [int(i) for i in args.rows.split(",")]
    for i in chosen:
        folder = row_folder(args.out, i, rows[i])
        folder.mkdir(parents=True, exist_ok=True)
        print(f"row {i}: {rows[i].name} {' '.join(overrides(rows[i].config))}", flush=True)
        init = None
        if rows[i].name in CONVERTED_FROM:  # train (or find) the softmax row first: it is the starting point
            j = next(k for k, r in enumerate(rows) if r.name == CONVERTED_FROM[rows[i].name])
            source = row_folder(args.out, j, rows[j])
            source.mkdir(parents=True, exist_ok=True)
            init = train_row(rows[j], source, args)
        evaluate_row(train_row(rows[i], folder, args, init), folder, args.samples)

    results = {}
    for i, row in enumerate(rows):  # every finished row, also those another process ran
        path = row_folder(args.out, i, row) / "adherence.json"
        if path.exists():
            results[row.name] = json.loads(path.read_text())
    text = table(rows, results, args.stop_after or args.steps)
    with atomic_output(args.out / "adherence.md", overwrite=True) as tmp:
        tmp.write_text(text + "\n")
    print(text)
    return 0
