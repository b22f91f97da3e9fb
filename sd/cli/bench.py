"""`python -m sd bench [unet|txt2img|memory|all]`: ours vs the reference, side by side in one process.

Random SD 1.5-size weights (no real checkpoint exists on these machines). Medians of interleaved runs
and our/diffusers ratios; a ratio below 1 means we are faster.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark our SD 1.5 stack against diffusers", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("what", nargs="?", choices=["unet", "txt2img", "memory", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per side (default 3), after a warm-up")
    parser.add_argument("--steps", type=int, default=4, help="txt2img denoising steps (default 4)")
    parser.add_argument("--size", type=int, default=512, help="txt2img image side in pixels (default 512)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sd.bench.random_checkpoint import random_sd15
    from sd.bench.reference import require_references

    require_references()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; random SD 1.5 weights")
    checkpoint = random_sd15()

    if args.what in ("unet", "all"):
        from sd.bench.unet import bench_unet

        flops, rows = bench_unet(checkpoint, [torch.float32, torch.bfloat16], repeats=args.repeats)
        print(f"\nUNet, batch 2, 64x64 latents, {flops / 1e9:.0f} GFLOP per call (torch.utils.flop_counter)")
        print(
            "| dtype | ours s | diffusers s | ours/diffusers | ours GFLOP/s | diffusers GFLOP/s | matmul peak GFLOP/s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for dtype, ours, ref, ratio, ours_rate, ref_rate, peak in rows:
            print(
                f"| {dtype} | {ours:.2f} | {ref:.2f} | {ratio:.2f}x | {ours_rate:.0f} | {ref_rate:.0f} | {peak:.0f} |"
            )

    if args.what in ("txt2img", "all"):
        from sd.bench.txt2img import bench_txt2img

        medians = bench_txt2img(checkpoint, steps=args.steps, size=args.size, repeats=args.repeats)
        print(f"\ntxt2img fp32, {args.size}x{args.size}, DDIM {args.steps} steps with CFG, VAE decode included")
        print(f"  ours {medians['ours']:.2f} s, diffusers {medians['diffusers']:.2f} s, "
              f"ours/diffusers {medians['ours'] / medians['diffusers']:.2f}x")  # fmt: skip

    if args.what in ("memory", "all"):
        from sd.bench.load_memory import load_peak_memory
        from sd.loading.original import save_original

        with tempfile.TemporaryDirectory() as folder:
            path = save_original(checkpoint, Path(folder) / "random-sd15.safetensors")
            m = load_peak_memory(path)
        print(f"\nloading a {m['file']:.2f} GiB fp32 single file (fresh process, peak RSS)")
        print(f"  Python + torch alone {m['base']:.2f} GiB; after load_checkpoint +{m['loaded'] - m['base']:.2f} GiB "
              "(memory-mapped: weights are read when used)")  # fmt: skip
        print(f"  after reading every weight +{m['touched'] - m['base']:.2f} GiB = "
              f"{(m['touched'] - m['base']) / m['file']:.2f}x the weights")  # fmt: skip
    return 0
