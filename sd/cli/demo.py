"""`python -m sd demo`: the whole text-to-image data flow, offline, in a few seconds.

Until the project's own small trained model ships in weights/, this walks the real SD 1.5
architecture (built on the meta device: shapes and parameter counts, no memory) and pushes one
prompt through every component of a toy-sized model with random weights, printing each shape on
the way: tokenizer -> text encoder -> UNet (one denoising step) -> VAE decoder -> image.
"""

from __future__ import annotations

import argparse
import time

import torch

from transformer.clip_text import SD15_TEXT, TINY_TEXT, CLIPTextModel
from transformer.clip_tokenizer import default_tokenizer
from unet.config import SD15_UNET, TINY_UNET
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL
from vae.config import SD15_VAE, TINY_VAE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline offline and show what each stage does",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prompt", default="a caterpillar smoking a hookah on a mushroom")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def count(module: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:7.1f}M"


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    tokenizer = default_tokenizer()
    tokens = tokenizer.tokenize(args.prompt)
    ids = tokenizer([args.prompt])  # (1, 77)
    print(f'prompt: "{args.prompt}"')
    print(f"  tokenizer      {len(tokens)} BPE tokens {tokens} -> ids {tuple(ids.shape)}, padded to 77")

    with torch.device("meta"):  # the real thing's shapes, no memory
        sd15 = {
            "text encoder": CLIPTextModel(SD15_TEXT),
            "VAE": AutoencoderKL(SD15_VAE),
            "UNet": UNetModel(SD15_UNET),
        }
    print("Stable Diffusion 1.5 architecture (hand-written, built on the meta device):")
    for name, module in sd15.items():
        print(f"  {name:<14} {count(module)} parameters")

    torch.manual_seed(args.seed)
    text_encoder, unet, vae = (
        CLIPTextModel(TINY_TEXT).eval(),
        UNetModel(TINY_UNET).eval(),
        AutoencoderKL(TINY_VAE).eval(),
    )
    print("one pass through a toy-sized model with random weights (the trained one comes with weights/):")
    with torch.no_grad():
        context = text_encoder(ids)
        print(f"  text encoder   ids {tuple(ids.shape)} -> hidden states {tuple(context.shape)}")
        latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(args.seed))
        eps = unet(latents, 999, context)
        print(
            f"  UNet           noisy latents {tuple(latents.shape)} at t=999 -> predicted noise {tuple(eps.shape)}"
        )
        image = vae.decode(latents / vae.config.scaling_factor)
        print(f"  VAE decoder    latents {tuple(latents.shape)} -> image {tuple(image.shape)}")
    print(f"done in {time.perf_counter() - start:.1f}s; to run the stack on your own SD 1.x checkpoint:")
    print("  python -m sd inspect weights/your-model.safetensors")
    return 0
