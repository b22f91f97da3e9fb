"""`python -m sd bench [unet|txt2img|memory|all|gif]`: ours vs the reference, side by side in one process.

unet, txt2img and memory (and `all`, which is those three) use random SD 1.5-size weights (no real
checkpoint exists on these machines). `gif` runs only when asked: it needs a trained model (--checkpoint)
and compares our GIF driver with a naive per-frame diffusers loop on it. Medians of interleaved runs
and our/diffusers ratios; a ratio below 1 means we are faster. `mobile` (also only when asked) compares
the mobile UNet with the standard one at SD 1.5 and at the tiny model's scale, one change at a time,
and writes markdown tables and a plot to --out. `morph` (only when asked) measures transitions between
keyframes on the shipped model, per kind of change, for every in-between method (sd/bench/morph.py).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sd.checkpoint_choice import resolve_checkpoint
from sd.cli.threads import add_threads_option, apply_threads
from sd.errors import UserError
from sd.paths import DEFAULT_CHECKPOINT, REPO_ROOT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark our SD 1.5 stack against diffusers", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    modes = ["unet", "txt2img", "memory", "all", "gif", "prune", "mobile", "cuda", "morph"]
    parser.add_argument("what", nargs="?", default="all", choices=modes)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per side (default 3), after a warm-up")
    parser.add_argument("--steps", type=int, default=4, help="txt2img denoising steps (default 4)")
    parser.add_argument("--size", type=int, default=512, help="txt2img image side in pixels (default 512)")
    add_threads_option(parser)
    default_model = DEFAULT_CHECKPOINT.relative_to(REPO_ROOT)
    parser.add_argument("--checkpoint", default=None, help=f"gif: the model to animate (default {default_model})")
    parser.add_argument("--frames", type=int, default=24, help="gif: frames of the animation (default 24)")
    parser.add_argument("--pruned", help="prune: the pruned checkpoint (`python -m sd prune apply`)")
    parser.add_argument("--recovered", help="prune: the pruned + recovered checkpoint (`python -m sd prune recover`)")
    parser.add_argument("--samples", type=int, default=100, help="prune: adherence prompts, held-in and held-out")
    parser.add_argument("--scale", choices=["tiny", "sd", "both"], default=None,
                        help="prune, mobile: the small model, SD 1.5 size (run under flock), or both "
                        "(default: tiny for prune, both for mobile)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None,
                        help="prune, mobile, morph: folder for the tables (markdown) and plots (default for mobile: "
                        "outputs/bench/mobile, for morph outputs/bench/morph)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="morph: a small case (2 pairs, 1 seed, 4 frames)")
    parser.add_argument("--method", dest="methods", action="append", metavar="NAME",
                        help="morph: run this method only (repeat for several; default: every method)")
    parser.add_argument("--ablation-repeats", type=int, default=1,
                        help="mobile: timed rounds per one-change row (full presets: --repeats)")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "prune":
        from sd.bench.prune_cli import run_prune

        args.scale = args.scale or "tiny"
        return run_prune(args)
    if args.what == "mobile":
        apply_threads(args)
        args.scale = args.scale or "both"
        args.out = args.out or Path("outputs/bench/mobile")
        return run_mobile(args)

    if args.what == "morph":
        apply_threads(args)
        return run_morph(args)

    import torch  # here, not above: `python -m sd bench --help` needs no torch

    from sd.bench.random_checkpoint import random_sd15
    from sd.bench.reference import require_references

    require_references()
    apply_threads(args)
    if args.what == "gif":
        return run_gif(args)
    if args.what == "cuda":
        return run_cuda(args)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; random SD 1.5 weights")
    checkpoint = random_sd15()

    if args.what in ("unet", "all"):
        from sd.bench.unet import bench_unet, upcast_seconds
        from sd.bf16_compute import cpu_has_bf16_matmul, resolve_mode

        flops, rows, peaks = bench_unet(checkpoint, [torch.float32, torch.bfloat16], repeats=args.repeats)
        print(f"\nUNet, batch 2, 64x64 latents, {flops / 1e9:.0f} GFLOP per call (torch.utils.flop_counter); "
              f"medians of {args.repeats} interleaved runs; diffusers always native")  # fmt: skip
        print("| UNet | ours s | diffusers s | ours/diffusers | ours GFLOP/s | diffusers GFLOP/s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, ours, ref, ratio, ours_rate, ref_rate in rows:
            print(f"| {label} | {ours:.2f} | {ref:.2f} | {ratio:.2f}x | {ours_rate:.0f} | {ref_rate:.0f} |")
        print("matmul peak GFLOP/s (4096^2 matmul): " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
        native = "has" if cpu_has_bf16_matmul() else "has no"
        print(f"this CPU {native} bf16 matrix instructions: --bf16-compute auto runs {resolve_mode('auto')}")
        print(f"fp32 compute's upcast of every UNet weight, measured alone: {upcast_seconds(checkpoint):.2f} s a call")

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


def run_cuda(args: argparse.Namespace) -> int:
    import torch

    from sd.bench.cuda import bench_cuda
    from sd.bench.random_checkpoint import random_sd15

    try:
        gif_checkpoint = resolve_checkpoint(args.checkpoint)
    except UserError:
        if args.checkpoint:  # a path the user gave is missing: say so
            raise
        gif_checkpoint = None  # no shipped model in this checkout: the GIF check is left out
    r = bench_cuda(random_sd15(), "cuda", steps=args.steps, size=args.size, repeats=args.repeats,
                   gif_checkpoint=gif_checkpoint)  # fmt: skip
    print(f"torch {torch.__version__}, {r['device']}; random SD 1.5 weights; TF32 off")
    print("\n| check | relative error |\n| --- | --- |")
    for name, value in r["errors"].items():
        print(f"| {name} | {value:.2e} |")
    print("\n| images | max pixel difference (0-255) |\n| --- | --- |")
    for name, value in r["pixels"].items():
        print(f"| {name} | {value} |")
    print("\n| peak GPU memory of one txt2img | GiB |\n| --- | --- |")
    for name, value in r["memory_gib"].items():
        print(f"| {name} | {value:.2f} |")
    print("\n| timing (medians of interleaved runs) | ours s | diffusers s | ours/diffusers |")
    print("| --- | --- | --- | --- |")
    for name, m in r["seconds"].items():
        print(f"| {name} | {m['ours']:.4f} | {m['diffusers']:.4f} | {m['ours'] / m['diffusers']:.2f}x |")
    if "gif" in r:
        print(f"\ngif on the GPU vs the CPU ({gif_checkpoint.name}): {r['gif']}")
    return 0


def run_gif(args: argparse.Namespace) -> int:
    import torch

    from sd.bench.gif import bench_gif

    checkpoint = resolve_checkpoint(args.checkpoint)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    r = bench_gif(checkpoint, frames=args.frames, repeats=args.repeats)
    print(f"\ngif, {checkpoint.name}: {r['frames']} frames at {r['size']}x{r['size']}, 3 keyframes, {r['sampler']} "
          f"{r['steps']} steps, guidance {r['guidance']:g}; medians of {r['repeats']} interleaved runs")  # fmt: skip
    print("| variant | wall s (median) | vs diffusers naive | UNet frame-steps | vs per-frame | jump ratios |")
    print("| --- | --- | --- | --- | --- | --- |")
    for v in r["variants"].values():
        ratios = ", ".join(f"{x:.2f}" for x in v["jump_ratios"])
        print(f"| {v['label']} | {v['seconds']:.2f} | {v['vs_diffusers']:.2f}x | {v['unet_steps']} | "
              f"{v['steps_vs_per_frame']:.2f}x | {ratios} (max {v['max_jump_ratio']:.2f}, "
              f"mean {v['mean_jump_ratio']:.2f}) |")  # fmt: skip
    print(f"ours per frame vs diffusers naive: max pixel difference {r['parity_max_pixel_difference']}/255")
    verdict = "within" if r["end_to_end_s"] <= r["budget_s"] else "OVER"
    this_run = f"{r['frames']} frames at {r['size']}x{r['size']}, {r['threads']} torch threads"
    print(f"ours end to end (model load {r['load_s']:.2f} s + animate with sharing, first run in this process): "
          f"{r['end_to_end_s']:.2f} s, {verdict} the {r['budget_s']:.0f} s budget (set for 24 frames at 64x64 on 2 "
          f"CPU cores; this run: {this_run})")  # fmt: skip
    return 0


def run_mobile(args: argparse.Namespace) -> int:
    import torch

    from sd.atomic_output import atomic_output
    from sd.bench.mobile import measure, plot, sd_scale_rows, table, tiny_scale_rows

    args.out.mkdir(parents=True, exist_ok=True)
    header = f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, random weights; latency: " + (
        f"median of {args.repeats} rounds for the full presets, {args.ablation_repeats} for one-change rows, "
        "each row interleaved with the standard UNet" if args.repeats > 0 else "not measured (--repeats 0)"
    )
    print(header)
    scales, sections = {}, [header]
    if args.scale in ("sd", "both"):
        rows = measure(sd_scale_rows(), 2, 64, args.repeats, 1, args.ablation_repeats, latency=args.repeats > 0)
        scales["SD 1.5 scale, batch 2, 64x64 latents"] = rows
    if args.scale in ("tiny", "both"):
        rows = measure(tiny_scale_rows(), 2, 8, args.repeats, 20, args.ablation_repeats, latency=args.repeats > 0)
        scales["tiny scale, batch 2, 8x8 latents (mean of 20 calls)"] = rows
    for title, rows in scales.items():
        sections.append(table(rows, title))
        print("\n" + sections[-1])
    with atomic_output(args.out / "mobile.md", overwrite=True) as tmp:
        tmp.write_text("\n\n".join(sections) + "\n")
    with atomic_output(args.out / "mobile.png", overwrite=True) as tmp:
        plot(scales, tmp.with_suffix(".png"))
        tmp.with_suffix(".png").rename(tmp)
    print(f"\nwrote {args.out / 'mobile.md'} and {args.out / 'mobile.png'}")
    return 0


def run_morph(args: argparse.Namespace) -> int:
    import torch

    from sd.bench.morph import BEFORE, DEFAULT, KINDS, METHODS, bench_morph, table
    from sd.eval.classifier import load_classifier
    from sd.loading.checkpoint import load_checkpoint
    from sd.pipeline import StableDiffusionPipeline

    checkpoint = resolve_checkpoint(args.checkpoint)
    out = args.out or Path("outputs/bench/morph")
    unknown = [name for name in args.methods or [] if name not in METHODS]
    if unknown:
        raise UserError(f"--method {unknown[0]!r}: not a method of the bench; choose from {', '.join(METHODS)}")
    chosen = [n for n in args.methods or [] if n not in (DEFAULT, BEFORE)]
    names = [DEFAULT, BEFORE, *chosen] if args.methods else list(METHODS)  # with the references
    pipe = StableDiffusionPipeline(load_checkpoint(checkpoint))
    r = bench_morph(pipe, load_classifier(), out, quick=args.quick, methods={n: METHODS[n] for n in names})
    print(f"torch {torch.__version__}, {r['threads']} threads; {checkpoint.name}, {r['frames']}-frame transitions, "
          f"{r['steps']} steps, seeds {r['seeds']}; median (worst) per transition, n transitions per row")
    for kind in ["all", *KINDS]:
        if kind in r["summary"]:
            print(f"\n{kind}\n{table(r['summary'], kind)}")
    print(f"\nwrote {out / 'morph.md'}, {out / 'morph.json'} and {out / 'morph.png'}")
    return 0
