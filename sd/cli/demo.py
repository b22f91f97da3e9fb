"""`python -m sd demo`: the whole text-to-image data flow, offline, in seconds.

With the small model trained here (weights/tiny-shapes.safetensors) it pushes one prompt through every
component, printing each shape on the way (tokenizer -> text encoder -> UNet steps -> VAE decoder), then
draws a few example prompts into outputs/demo/ and animates keyframed prompts into GIFs there. It also
shows the real SD 1.5 architecture's size (built on the meta device: shapes only, no memory) that the
same code loads with --checkpoint.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from sd.atomic_output import atomic_output
from sd.checkpoint_choice import resolve_checkpoint
from sd.errors import UserError
from sd.gif.settings import GifSettings
from unet.config import SD15_UNET
from vae.config import SD15_VAE

if TYPE_CHECKING:  # annotations only: `python -m sd demo --help` needs no torch
    import torch

    from sd.pipeline import StableDiffusionPipeline

EXAMPLES = [
    "a large red circle in the top left on a blue background",
    "a small yellow star in the center on a black background",
    "a large white heart in the bottom right on a pink background",
    "a large blue ring in the top right on a yellow background",
    "a small green cross in the bottom left on a white background",
    "a large purple diamond in the center on a orange background",
]


LOOP_KEYFRAMES = """\
0: a large red circle in the center on a blue background
12: a large yellow star in the center on a black background
24: a large white heart in the center on a pink background"""
GROW_KEYFRAMES = """\
0: a small blue ring in the center on a yellow background
12: a large blue ring in the center on a yellow background
24: a large purple ring in the center on a white background"""
DEMO_GIFS = [
    ("shapes.gif", LOOP_KEYFRAMES, GifSettings(loop=True, scale=4, seed=1)),
    ("grow.gif", GROW_KEYFRAMES, GifSettings(pingpong=True, scale=4, seed=2)),
    ("pixel.gif", LOOP_KEYFRAMES, GifSettings(pingpong=True, pixelate=16, colors=8, scale=4, seed=1)),
]


def before_and_after(pipe: StableDiffusionPipeline, path: Path) -> None:
    """The first transition of shapes.gif drawn the way the GIF driver did before the transitions work (planned
    weights, smooth easing) and the way it does now (even frame spacing, linear easing): one row each."""
    from sd.bench.morph import PLANNED, contact_sheet
    from sd.gif.animate import animate

    keyframes = "\n".join(LOOP_KEYFRAMES.splitlines()[:2])
    rows = {"before": GifSettings(seed=1, **PLANNED), "now": GifSettings(seed=1)}
    runs = {name: animate(keyframes, None, s, pipe=pipe, cache_dir=None, progress=False) for name, s in rows.items()}
    labels = {f"{name}: jump ratio {run.smoothness[0].jump_ratio:.2f}": run.frames for name, run in runs.items()}
    contact_sheet({"red circle on blue -> yellow star on black": labels}, path)
    print(f"  wrote {path}: {', '.join(labels)}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline offline and show what each stage does", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--checkpoint", help="model to run (default: the shipped one)")
    parser.add_argument("--out", default="outputs/demo", help="folder for the images (default outputs/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=25)
    parser.set_defaults(func=run)


def count(module: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:7.1f}M"


def run(args: argparse.Namespace) -> int:
    import torch  # torch and the models: only once the arguments have parsed

    from sd.gif.animate import animate
    from sd.loading.checkpoint import load_checkpoint
    from sd.pipeline import StableDiffusionPipeline
    from transformer.clip_text import SD15_TEXT, CLIPTextModel
    from unet.model import UNetModel
    from vae.autoencoder import AutoencoderKL

    start = time.perf_counter()
    with torch.device("meta"):  # the real thing's shapes, no memory
        sd15 = {"text encoder": CLIPTextModel(SD15_TEXT), "VAE": AutoencoderKL(SD15_VAE), "UNet": UNetModel(SD15_UNET)}
    print("Stable Diffusion 1.5, hand-written (built on the meta device; load real weights with --checkpoint):")
    for name, module in sd15.items():
        print(f"  {name:<14} {count(module)} parameters")

    try:
        path = resolve_checkpoint(args.checkpoint)
    except UserError as error:
        if args.checkpoint:
            raise
        print(f"\n{error}")  # no shipped model in this checkout: the architecture above is the whole demo
        return 0
    checkpoint = load_checkpoint(path)
    pipe = StableDiffusionPipeline(checkpoint)
    print(f"\nthe small model trained here ({checkpoint.name}), one prompt through every stage:")
    for name in ("text_encoder", "vae", "unet"):
        print(f"  {name:<14} {count(getattr(checkpoint, name))} parameters")
    prompt = EXAMPLES[0]
    tokens = checkpoint.tokenizer.tokenize(prompt)
    ids = checkpoint.tokenizer([prompt])
    print(f'  prompt         "{prompt}"')
    print(f"  tokenizer      {len(tokens)} BPE tokens -> ids {tuple(ids.shape)} (start, tokens, end, padding)")
    context = pipe.encode_prompt([prompt])
    print(f"  text encoder   ids {tuple(ids.shape)} -> hidden states {tuple(context.shape)}")
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(args.seed))
    print(f"  UNet           noise {tuple(latents.shape)} -> {args.steps} DPM-Solver++ steps with guidance")
    print(f"  VAE decoder    latents {tuple(latents.shape)} -> image (1, 3, 64, 64)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = [
        pipe.txt2img(p, "", seed=args.seed, steps=args.steps, sampler="dpmpp_2m", guidance=5.0, progress=False)[0]
        for p in EXAMPLES
    ]
    sheet = np.concatenate([np.asarray(im.resize((128, 128), Image.NEAREST)) for im in images], axis=1)
    with atomic_output(out / "examples.png", overwrite=True) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    for i, prompt in enumerate(EXAMPLES):
        print(f"  [{i}] {prompt}")
    print(f"wrote {out / 'examples.png'} ({len(EXAMPLES)} images, left to right)")

    print("\nkeyframed prompts -> GIF (python -m sd gif; each keyframe once, slerped noise, lerped text):")
    for name, keyframes, settings in DEMO_GIFS:
        result = animate(keyframes, out / name, settings, pipe=pipe, overwrite=True, progress=False)
        ratios = ", ".join(f"{s.jump_ratio:.2f}" for s in result.smoothness)
        print(f"  wrote {out / name}: {len(result.frames)} frames, jump ratios {ratios}")
    before_and_after(pipe, out / "transitions-before-after.png")
    print(f"done in {time.perf_counter() - start:.1f}s")
    return 0
