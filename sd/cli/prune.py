"""`python -m sd prune sensitivity|apply|recover`: structured pruning of the UNet, step by step.

    python -m sd prune sensitivity --out outputs/prune          # ranked table, plot, sensitivity.json
    python -m sd prune apply --sensitivity outputs/prune/sensitivity.json --target 0.3 \\
        --out outputs/prune/pruned.safetensors                  # allocation + surgery, writes the plan too
    python -m sd prune recover --pruned outputs/prune/pruned.safetensors \\
        --out outputs/prune/recovery                            # distillation; re-run to resume

A pruned file loads wherever a checkpoint does (`--checkpoint outputs/prune/pruned.safetensors`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sd.atomic_output import atomic_output
from sd.cli.threads import add_threads_option, apply_threads
from sd.errors import UserError
from sd.json_file import read_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prune", help="structured pruning of the UNet (sensitivity, apply, recover)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")

    sens = steps.add_parser("sensitivity", help="loss increase of dropping each layer / removing channel groups")
    sens.add_argument("--checkpoint", help="the model to analyse (default: the shipped small model)")
    sens.add_argument("--batch", type=int, default=256, help="held-out samples for the denoising loss (256)")
    sens.add_argument("--shortlist", type=int, default=6, help="least harmful layers also scored by adherence (6)")
    sens.add_argument("--adherence-samples", type=int, default=48, help="held-in prompts per shortlisted layer (48)")
    sens.add_argument("--out", default="outputs/prune", help="folder for sensitivity.{json,md,png}")
    sens.add_argument("--again", action="store_true", help="measure again even if OUT/sensitivity.json exists")
    sens.set_defaults(func=run_sensitivity)

    apply = steps.add_parser("apply", help="allocate per-layer cuts to a parameter target and rebuild the UNet")
    apply.add_argument("--checkpoint", help="the model to prune (default: the shipped small model)")
    source = apply.add_mutually_exclusive_group(required=True)
    source.add_argument("--sensitivity", help="sensitivity.json from `prune sensitivity`")
    source.add_argument("--plan", help="a plan.json to apply as it is")
    apply.add_argument("--target", type=float, default=0.3, help="fraction of UNet parameters to remove (0.3)")
    apply.add_argument("--tolerance", type=float, default=0.005, help="allowed overshoot of the target (0.005)")
    apply.add_argument("--out", default="outputs/prune/pruned.safetensors", help="the pruned checkpoint")
    apply.add_argument("--overwrite", action="store_true")
    apply.set_defaults(func=run_apply)

    rec = steps.add_parser("recover", help="distil the pruned UNet from the unpruned one (BK-SDM), resumable")
    rec.add_argument("--checkpoint", help="the unpruned teacher (default: the shipped small model)")
    rec.add_argument("--pruned", required=True, help="the pruned checkpoint from `prune apply`")
    rec.add_argument("--out", default="outputs/prune/recovery", help="folder for state.pt, recovery.png, the result")
    rec.add_argument("--steps", type=int, default=300)
    rec.add_argument("--batch", type=int, default=64)
    rec.add_argument("--lr", type=float, default=2e-4)
    rec.add_argument("--train-size", type=int, default=8000, help="generated training images (8000)")
    add_threads_option(rec)
    rec.set_defaults(func=run_recover)


def _teacher(arg: str | None):
    from sd.checkpoint_choice import resolve_checkpoint
    from sd.loading.checkpoint import load_checkpoint

    return load_checkpoint(resolve_checkpoint(arg))


def run_sensitivity(args: argparse.Namespace) -> int:
    from sd.eval.adherence import evaluate_adherence
    from sd.eval.held_out import held_out_batch
    from sd.pipeline import StableDiffusionPipeline
    from sd.prune.allocation import Saved
    from sd.prune.masking import removed_masks, zeroed
    from sd.prune.report import plot_sensitivity, ranked_table
    from sd.prune.sensitivity import Sensitivity
    from sd.prune.sensitivity import run_sensitivity as sweep
    from unet.pruned import PrunePlan

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = _teacher(args.checkpoint)
    saved_sweep = out / "sensitivity.json"
    if saved_sweep.exists() and not args.again:
        sensitivity = Sensitivity.from_dict(json.loads(saved_sweep.read_text()))
        print(f"reusing the sweep in {saved_sweep} (--again to measure it again)")
    else:
        sensitivity = sweep(checkpoint.unet, held_out_batch(checkpoint, args.batch))
        with atomic_output(saved_sweep, overwrite=True) as tmp:
            tmp.write_text(json.dumps(sensitivity.to_dict(), indent=1) + "\n")

    adherence = {}
    if args.shortlist and args.adherence_samples:
        pipe = StableDiffusionPipeline(checkpoint)
        shortlist = [e.layer.path for e in sorted(sensitivity.layers, key=lambda e: e.drop)[: args.shortlist]]
        for path in ["(none)", *shortlist]:
            plan = PrunePlan(drop=() if path == "(none)" else (path,))
            with zeroed(checkpoint.unet, removed_masks(checkpoint.unet, plan)):
                result = evaluate_adherence(pipe, args.adherence_samples, 0, False, batch=2, progress=False)
            adherence[path] = result["all_correct"]
            print(f"adherence with {path} dropped: all five attributes right {result['all_correct']:.1%} "
                  f"(n={args.adherence_samples} held-in images)")  # fmt: skip
    table = ranked_table(sensitivity, Saved(checkpoint.unet), adherence)
    if adherence:
        table += (f"\nAdherence: all five attributes right on n={args.adherence_samples} held-in images (2 seeds each "
                  f"of {args.adherence_samples // 2} prompts; dpmpp_2m, 25 steps, guidance 5); unpruned "
                  f"{adherence['(none)']:.1%}.\n")  # fmt: skip
    (out / "sensitivity.md").write_text(table)
    plot_sensitivity(sensitivity, out / "sensitivity.png")
    print(table)
    print(f"wrote {out}/sensitivity.json, sensitivity.md, sensitivity.png")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sd.eval.held_out import HELD_OUT_SEED, denoising_loss, held_out_batch
    from sd.loading.original import save_original
    from sd.prune.allocation import allocate, layer_options
    from sd.prune.sensitivity import Sensitivity
    from sd.prune.surgery import check_plan, param_count, prune_unet
    from unet.pruned import PrunePlan

    if not 0 < args.target < 1:
        raise UserError(f"--target {args.target}: must be a fraction between 0 and 1")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UserError(f"{out}: already exists; choose another --out or pass --overwrite")
    checkpoint = _teacher(args.checkpoint)
    total = param_count(checkpoint.unet)
    if args.plan:
        try:
            plan = PrunePlan.from_json(_read(args.plan))
        except ValueError as error:
            raise UserError(f"{args.plan}: {error}") from None
        check_plan(checkpoint.unet, plan, args.plan)
        predicted = None
    else:
        sensitivity = Sensitivity.from_dict(read_json(args.sensitivity, "no such file"))
        plan, _, predicted = allocate(layer_options(checkpoint.unet, sensitivity), total, args.target, args.tolerance)
    pruned = prune_unet(checkpoint.unet, plan)
    batch = held_out_batch(checkpoint, 256, HELD_OUT_SEED + 1)  # not the batch the sensitivities came from
    before, after = denoising_loss(checkpoint.unet, batch), denoising_loss(pruned, batch)
    save_original(replace(checkpoint, unet=pruned), out, overwrite=args.overwrite)
    plan_path = out.with_suffix(".plan.json")
    with atomic_output(plan_path, overwrite=True) as tmp:
        tmp.write_text(plan.to_json() + "\n")
    print(f"plan: {plan.summary()}")
    print(f"UNet parameters {total:,} -> {param_count(pruned):,} ({1 - param_count(pruned) / total:.1%} removed)")
    guess = "" if predicted is None else f" (sum of the layers' measured increases predicted {predicted:+.5f})"
    print(f"denoising loss on a second held-out batch: {before:.5f} -> {after:.5f}, {after - before:+.5f}{guess}")
    print(f"wrote {out} and {plan_path}")
    return 0


def run_recover(args: argparse.Namespace) -> int:
    from sd.eval.held_out import HELD_OUT_SEED, denoising_loss, held_out_batch
    from sd.loading.checkpoint import load_checkpoint
    from sd.loading.original import save_original
    from sd.prune.distill import RecoverySettings, recover

    apply_threads(args)
    teacher = _teacher(args.checkpoint)
    plan = getattr(load_checkpoint(args.pruned).unet, "prune_plan", None)
    if plan is None:
        raise UserError(f"{args.pruned}: not a pruned checkpoint (no prune plan in its metadata)")
    out = Path(args.out)
    val = held_out_batch(teacher, 256, HELD_OUT_SEED + 1)
    settings = RecoverySettings(steps=args.steps, batch=args.batch, lr=args.lr, train_size=args.train_size)
    recovered = recover(teacher, plan, out, settings, val=val)
    path = out / "pruned-recovered.safetensors"
    save_original(recovered, path, overwrite=True)
    print(f"held-out denoising loss: teacher {denoising_loss(teacher.unet, val):.5f}, "
          f"recovered student {denoising_loss(recovered.unet, val):.5f}")  # fmt: skip
    print(f"wrote {path} and {out}/recovery.png")
    return 0


def _read(path: str) -> str:
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    return Path(path).read_text()
