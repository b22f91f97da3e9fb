"""`python -m sd bench prune`: the pruning table (see sd/bench/prune.py), printed and written as markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sd.checkpoint_choice import resolve_checkpoint
from sd.cli.threads import apply_threads
from sd.errors import UserError


def run_prune(args: argparse.Namespace) -> int:
    from sd.bench.prune import markdown, sd_rows, tiny_rows
    from sd.loading.checkpoint import load_checkpoint
    from sd.prune.transfer import kind_fractions

    apply_threads(args)
    if not args.pruned:
        raise UserError("bench prune needs --pruned PATH (made by `python -m sd prune apply`)")
    checkpoint = load_checkpoint(resolve_checkpoint(args.checkpoint))
    pruned = load_checkpoint(args.pruned).unet
    plan = getattr(pruned, "prune_plan", None)
    if plan is None:
        raise UserError(f"{args.pruned}: not a pruned checkpoint (no prune plan in its metadata)")
    recovered = load_checkpoint(args.recovered).unet if args.recovered else None
    header = f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; plan: {plan.summary()}"
    print(header)
    tables = [header, ""]
    if args.scale in ("tiny", "both"):
        size = checkpoint.vae.config.resolution
        title = (f"Small model ({checkpoint.name}), {size}x{size} images. Latency: medians of interleaved runs; "
                 f"adherence: all five attributes right, n={args.samples} held-in and n={args.samples // 2} held-out "
                 "images, 2 seeds per prompt (dpmpp_2m, 25 steps, guidance 5); loss: denoising MSE on 256 held-out "
                 "samples.")  # fmt: skip
        table = markdown(tiny_rows(checkpoint, pruned, recovered, args.samples, args.repeats))
        print(f"\n{title}\n{table}")
        tables += [title, "", table]
    if args.scale in ("sd", "both"):
        fractions = kind_fractions(checkpoint.unet, plan)
        shown = ", ".join(f"{k} {v:.0%}" for k, v in fractions.items())
        title = (f"SD 1.5-size UNet, random weights, batch 2, 64x64 latents, fp32; the small plan's proportions "
                 f"({shown} of each kind's parameters), scaled to 30% of the UNet.")  # fmt: skip
        table = markdown(sd_rows(fractions, 0.3, args.repeats))
        print(f"\n{title}\n{table}")
        tables += [title, "", table]
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"bench-prune-{args.scale}.md").write_text("\n".join(tables))
        print(f"wrote {args.out}/bench-prune-{args.scale}.md")
    return 0
