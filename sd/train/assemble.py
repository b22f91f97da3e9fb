"""Put the trained stages together into the shipped model: one original-layout single file.

    python -m sd.train.assemble --vae outputs/train/vae/vae.safetensors --t2i outputs/train/t2i/state.pt \\
        --out weights/tiny-shapes.safetensors

Weights are stored in fp16 (half the size; `load_checkpoint` converts to the dtype asked for) with the
configs in the file's metadata, so it loads like any SD 1.x checkpoint and exports to diffusers. A
mobile UNet (`--unet mobile-tiny` in stage 2) is read from the state's stored config; its file loads with
the same strict `load_checkpoint` (its config is in the metadata), named after the output file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sd.loading.checkpoint_types import SD1, Checkpoint
from sd.loading.config_json import config_from_dict, config_to_dict
from sd.loading.original import save_original
from sd.loading.tokenizer_files import default_tokenizer
from sd.samplers.spacing import LEADING_SD15
from sd.schedule import SD15_SCHEDULE
from sd.train.state import load_state
from sd.train.text_to_image import TextToImage
from sd.train.vae_file import load_vae
from unet.config import TINY_UNET, UNetConfig


def assemble(
    vae_path: Path, t2i_state: Path, use_ema: bool = True, dtype: torch.dtype = torch.float16, name: str = "tiny-shapes"
) -> Checkpoint:
    state = load_state(t2i_state)
    if state is None:
        raise FileNotFoundError(f"{t2i_state}: no training state")
    unet_config = config_from_dict(UNetConfig, state.get("unet_config", config_to_dict(TINY_UNET)), str(t2i_state))
    model = TextToImage(unet_config)
    model.load_state_dict(state["ema" if use_ema else "model"])
    return Checkpoint(
        tokenizer=default_tokenizer(),
        text_encoder=model.text_encoder.to(dtype).eval(),
        vae=load_vae(vae_path).to(dtype),
        unet=model.unet.to(dtype).eval(),
        schedule=SD15_SCHEDULE,
        name=name,
        family=SD1,  # OpenAI CLIP's text encoder, trained from scratch here
        timestep_config=LEADING_SD15,  # the spacing its samples, figures and evaluations were made with
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sd.train.assemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--vae", type=Path, default=Path("outputs/train/vae/vae.safetensors"))
    p.add_argument("--t2i", type=Path, default=Path("outputs/train/t2i/state.pt"))
    p.add_argument("--raw", action="store_true", help="ship the raw weights instead of the EMA ones")
    p.add_argument("--out", type=Path, default=Path("weights/tiny-shapes.safetensors"))
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    checkpoint = assemble(args.vae, args.t2i, use_ema=not args.raw, name=args.out.stem)
    path = save_original(checkpoint, args.out, overwrite=args.overwrite)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
