"""`python -m sd bench MODE`: ours vs the reference, side by side in one process; `python -m sd bench MODE --help`
shows that mode's options.

unet, txt2img and memory (and `all`, which is those three and what `python -m sd bench` alone runs) use random
SD 1.5-size weights (no real checkpoint exists on these machines). The other modes run only when asked: `gif`
compares our GIF driver with a naive per-frame diffusers loop on a trained model; `prune` measures the pruned and
recovered models; `mobile` compares the mobile UNet with the standard one at SD 1.5 and at the tiny model's
scale, one change at a time, and `mobile-adherence` trains each of those tiny rows to score its prompt adherence;
`cuda` is what only a GPU shows; `morph` measures transitions between keyframes on the shipped model, per kind of
change, for every in-between method (sd/bench/morph.py); `distilled` times a few-step student against its
teacher, per image and per GIF, with UNet evaluations (sd/bench/distilled.py); `spacing` measures how even a long
GIF's transitions are for each setting of even frame spacing, over seeds (sd/bench/spacing.py). Medians of
interleaved runs and our/diffusers ratios; a ratio below 1 means we are faster.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from sd.checkpoint_choice import resolve_checkpoint
from sd.cli.threads import add_threads_option, apply_threads
from sd.errors import UserError
from sd.paths import DEFAULT_CHECKPOINT, REPO_ROOT

DEFAULT_MODEL_PATH = DEFAULT_CHECKPOINT.relative_to(REPO_ROOT)
REFERENCE_MODES = {  # ours against diffusers on random SD 1.5-size weights
    "unet": "the SD 1.5 UNet, ours and diffusers', fp32 and bf16, random weights",
    "txt2img": "a whole txt2img with CFG, VAE decode included, random SD 1.5-size weights",
    "memory": "resident memory after loading a random SD 1.5-size fp32 single file, in a fresh process",
    "all": "the unet, txt2img and memory modes; what `python -m sd bench` alone runs",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark our SD 1.5 stack against diffusers", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    modes = parser.add_subparsers(metavar="MODE")

    def mode(name: str, summary: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = modes.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}.")
        sub.set_defaults(func=func, mode=name)
        return sub

    for name, summary in REFERENCE_MODES.items():
        sub = mode(name, summary, run_reference)
        if name != "memory":
            add_repeats_option(sub)
        if name in ("txt2img", "all"):
            add_steps_and_size_options(sub)
    everything = modes.choices["all"]
    parser.set_defaults(func=lambda _: run_reference(everything.parse_args([])))  # no MODE: `all`, its defaults

    gif = mode("gif", "our GIF driver against a naive per-frame diffusers loop, on a trained model", run_gif)
    add_checkpoint_option(gif, "the model to animate")
    gif.add_argument("--frames", type=int, default=24, help="frames of the animation (default 24)")
    add_repeats_option(gif)

    prune = mode("prune", "unpruned, masked, pruned and recovered UNets: parameters, FLOPs, latency, loss, "
                 "adherence", run_prune)  # fmt: skip
    add_checkpoint_option(prune, "the unpruned model")
    prune.add_argument("--pruned", required=True, help="the pruned checkpoint (`python -m sd prune apply`)")
    prune.add_argument("--recovered", help="the pruned + recovered checkpoint (`python -m sd prune recover`)")
    prune.add_argument("--samples", type=int, default=100, help="adherence prompts, held-in and held-out (100)")
    prune.add_argument("--scale", choices=["tiny", "sd", "both"], default="tiny",
                       help="the small model, SD 1.5 size (run under flock), or both (default tiny)")  # fmt: skip
    prune.add_argument("--out", type=Path, help="folder for the table, bench-prune-SCALE.md (default: none)")
    add_repeats_option(prune)

    mobile = mode("mobile", "the mobile UNet against the standard one, one change at a time; markdown tables "
                  "and a plot", run_mobile)  # fmt: skip
    mobile.add_argument("--scale", choices=["tiny", "sd", "both"], default="both",
                        help="the small model, SD 1.5 size (run under flock), or both (default both)")  # fmt: skip
    mobile.add_argument("--out", type=Path, default=Path("outputs/bench/mobile"),
                        help="folder for mobile.md and mobile.png (default outputs/bench/mobile)")  # fmt: skip
    add_repeats_option(mobile, "timed rounds for the full presets; 0 skips latency")
    mobile.add_argument("--ablation-repeats", type=int, default=1,
                        help="timed rounds per one-change row (default 1)")  # fmt: skip

    adherence = mode("mobile-adherence", "prompt adherence of each one-change row of the tiny mobile table, "
                     "trained with the shipped models' recipe (resumable)", run_mobile_adherence)  # fmt: skip
    adherence.add_argument("--steps", type=int, default=5000, help="each row's cosine schedule (default 5000)")
    adherence.add_argument("--stop-after", type=int, default=2750, help="stop training there (default 2750; 0: all)")
    adherence.add_argument("--train-size", type=int, default=40000, help="training images, as the shipped model's")
    adherence.add_argument("--convert-steps", type=int, default=500,
                           help="fine-tuning steps of the ReLU conversion rows (default 500)")  # fmt: skip
    adherence.add_argument("--samples", type=int, default=400, help="adherence prompts per set (default 400)")
    adherence.add_argument("--rows", help="comma-separated row numbers to run (default: all)")
    adherence.add_argument("--out", type=Path, default=Path("outputs/bench/mobile-adherence"),
                           help="folder of the rows and adherence.md (default %(default)s)")  # fmt: skip

    cuda = mode("cuda", "what only a GPU shows: CUDA against the CPU and against diffusers, memory, timings", run_cuda)
    add_checkpoint_option(cuda, "the model of the GIF check (skipped when the default is not there)")
    add_repeats_option(cuda)
    add_steps_and_size_options(cuda)

    morph = mode("morph", "transitions between keyframes, per kind of change, for every in-between method", run_morph)
    add_checkpoint_option(morph, "the model to animate")
    morph.add_argument("--out", type=Path, default=Path("outputs/bench/morph"),
                       help="folder for morph.md, morph.json and morph.png (default outputs/bench/morph)")  # fmt: skip
    morph.add_argument("--quick", action="store_true", help="a small case (2 pairs, 1 seed, 4 frames)")
    morph.add_argument("--method", dest="methods", action="append", metavar="NAME",
                       help="run this method only (repeat for several; default: every method)")  # fmt: skip

    distilled = mode("distilled", "a few-step distilled student against its teacher: time and UNet evaluations per "
                     "image and per GIF, and issue 19's goals", run_distilled)  # fmt: skip
    distilled.add_argument("--student", required=True, metavar="FILE",
                           help="the student file (`python -m sd.train.distill`)")  # fmt: skip
    distilled.add_argument("--teacher", metavar="FILE",
                           help=f"the model it was distilled from (default {DEFAULT_MODEL_PATH})")  # fmt: skip
    distilled.add_argument("--frames", type=int, nargs="+", default=[24, 193], metavar="N",
                           help="frames of each GIF to time (default 24 193; the goals are on 193)")  # fmt: skip
    distilled.add_argument("--batch", type=int, metavar="N",
                           help="GIF frames per UNet call for both models (default: each its own, 2 UNet rows a "
                           "call: 1 frame guided, 2 unguided)")  # fmt: skip
    distilled.add_argument("--student-snap", type=float, metavar="S",
                           help="the student's --snap (even spacing shows a probe instead of rendering a frame this "
                           "close to it); the teacher keeps its defaults (default: the student's own)")  # fmt: skip
    add_repeats_option(distilled, "timed rounds per model and task")
    distilled.add_argument("--out", type=Path, default=Path("outputs/bench/distilled"), metavar="DIR",
                           help="folder for distilled.md and distilled.json (default %(default)s)")  # fmt: skip

    spacing = mode("spacing", "how even a long GIF's transitions are for each --snap and --rounds of even frame "
                   "spacing, over seeds", run_spacing)  # fmt: skip
    add_checkpoint_option(spacing, "the model to animate (a distilled student: its own sampling)")
    spacing.add_argument("--spacing", dest="spacings", action="append", metavar="SNAP,ROUNDS",
                         help="a row: --snap and --rounds (repeat; default 0,2 and 0.25,3)")  # fmt: skip
    spacing.add_argument("--frames", type=int, default=193, help="frames of the GIF, a keyframe every 24 (193)")
    spacing.add_argument("--seeds", type=int, default=20, help="GIFs per row, seeds 0 .. N-1 (default 20)")
    spacing.add_argument("--out", type=Path, default=Path("outputs/bench/spacing"), metavar="DIR",
                         help="folder for spacing.md and spacing.json (default %(default)s)")  # fmt: skip
    for sub in modes.choices.values():
        add_threads_option(sub)


def add_repeats_option(parser: argparse.ArgumentParser, text: str = "timed rounds per side") -> None:
    parser.add_argument("--repeats", type=int, default=3, help=f"{text} (default %(default)s), after a warm-up")


def add_steps_and_size_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=4, help="txt2img denoising steps (default 4)")
    parser.add_argument("--size", type=int, default=512, help="txt2img image side in pixels (default 512)")


def add_checkpoint_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--checkpoint", help=f"{what} (default {DEFAULT_MODEL_PATH})")


def run_reference(args: argparse.Namespace) -> int:
    import torch  # here, not above: `python -m sd bench --help` needs no torch

    from sd.bench.random_checkpoint import random_sd15
    from sd.bench.reference import require_references

    require_references()
    apply_threads(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; random SD 1.5 weights")
    checkpoint = random_sd15()

    if args.mode in ("unet", "all"):
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

    if args.mode in ("txt2img", "all"):
        from sd.bench.txt2img import bench_txt2img

        medians = bench_txt2img(checkpoint, steps=args.steps, size=args.size, repeats=args.repeats)
        print(f"\ntxt2img fp32, {args.size}x{args.size}, DDIM {args.steps} steps with CFG, VAE decode included")
        print(f"  ours {medians['ours']:.2f} s, diffusers {medians['diffusers']:.2f} s, "
              f"ours/diffusers {medians['ours'] / medians['diffusers']:.2f}x")  # fmt: skip

    if args.mode in ("memory", "all"):
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


def run_gif(args: argparse.Namespace) -> int:
    import torch

    from sd.bench.gif import bench_gif
    from sd.bench.reference import require_references

    require_references()
    apply_threads(args)
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


def run_prune(args: argparse.Namespace) -> int:
    """The pruning table (sd/bench/prune.py), printed and written as markdown."""
    import torch

    from sd.bench.prune import markdown, sd_rows, tiny_rows
    from sd.loading.checkpoint import load_checkpoint
    from sd.prune.transfer import kind_fractions

    apply_threads(args)
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
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"bench-prune-{args.scale}.md").write_text("\n".join(tables))
        print(f"wrote {args.out}/bench-prune-{args.scale}.md")
    return 0


def run_mobile(args: argparse.Namespace) -> int:
    import torch

    from sd.atomic_output import atomic_output
    from sd.bench.mobile import measure, plot, sd_scale_rows, table, tiny_scale_rows

    apply_threads(args)
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


def run_mobile_adherence(args: argparse.Namespace) -> int:
    from sd.bench.mobile_adherence import run

    apply_threads(args)
    return run(args)


def run_cuda(args: argparse.Namespace) -> int:
    import torch

    from sd.bench.cuda import bench_cuda
    from sd.bench.random_checkpoint import random_sd15
    from sd.bench.reference import require_references

    require_references()
    apply_threads(args)
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


def run_morph(args: argparse.Namespace) -> int:
    import torch

    from sd.bench.morph import BEFORE, DEFAULT, KINDS, METHODS, bench_morph, table
    from sd.eval.classifier import load_classifier
    from sd.loading.checkpoint import load_checkpoint
    from sd.pipeline import StableDiffusionPipeline

    apply_threads(args)
    checkpoint = resolve_checkpoint(args.checkpoint)
    unknown = [name for name in args.methods or [] if name not in METHODS]
    if unknown:
        raise UserError(f"--method {unknown[0]!r}: not a method of the bench; choose from {', '.join(METHODS)}")
    chosen = [n for n in args.methods or [] if n not in (DEFAULT, BEFORE)]
    names = [DEFAULT, BEFORE, *chosen] if args.methods else list(METHODS)  # with the references
    pipe = StableDiffusionPipeline(load_checkpoint(checkpoint))
    r = bench_morph(pipe, load_classifier(), args.out, quick=args.quick, methods={n: METHODS[n] for n in names})
    print(f"torch {torch.__version__}, {r['threads']} threads; {checkpoint.name}, {r['frames']}-frame transitions, "
          f"{r['steps']} steps, seeds {r['seeds']}; median (worst) per transition, n transitions per row")
    for kind in ["all", *KINDS]:
        if kind in r["summary"]:
            print(f"\n{kind}\n{table(r['summary'], kind)}")
    print(f"\nwrote {args.out / 'morph.md'}, {args.out / 'morph.json'} and contact sheets {args.out / 'morph*.png'}")
    return 0


def run_distilled(args: argparse.Namespace) -> int:
    """Issue 19's measurements (sd/bench/distilled.py), printed and written as markdown and JSON."""
    from sd.bench.distilled import bench_distilled, markdown, write

    apply_threads(args)
    student, teacher = resolve_checkpoint(args.student), resolve_checkpoint(args.teacher)
    record = bench_distilled(teacher, student, frames=tuple(args.frames), repeats=args.repeats, batch=args.batch,
                             student_snap=args.student_snap)  # fmt: skip
    print(markdown(record))
    md, js = write(record, args.out)
    print(f"\nwrote {md} and {js}")
    return 0


def run_spacing(args: argparse.Namespace) -> int:
    """Jump ratios of a long GIF per even-spacing setting (sd/bench/spacing.py), printed and written."""
    from sd.bench.spacing import SPACINGS, bench_spacing, markdown, parse_spacing, write

    apply_threads(args)
    spacings = [parse_spacing(text) for text in args.spacings] if args.spacings else SPACINGS
    checkpoint = resolve_checkpoint(args.checkpoint)
    record = bench_spacing(checkpoint, spacings, frames=args.frames, seeds=args.seeds)
    print(markdown(record))
    md, js = write(record, args.out)
    print(f"\nwrote {md} and {js}")
    return 0
