"""Stage 2: train the text encoder and the UNet together, on latents of the stage-1 autoencoder.

    python -m sd.train.text_to_image --vae weights/tiny-shapes-vae.safetensors --out outputs/train/t2i \
        --steps 5000 --stop-after 2750      # the shipped model
    torchrun --standalone --nproc_per_node 2 -m sd.train.text_to_image ...

The denoising loss of DDPM (Ho et al. 2020) with SD 1.x's noise schedule:
    z_t = sqrt(a_t) z_0 + sqrt(1 - a_t) eps,   loss = || eps - eps_theta(z_t, t, text) ||^2
Its gradient also trains the text encoder, as LDM trained its transformer text encoder for its LAION
text-to-image model: with captions from a small grammar there is no need for a contrastive CLIP stage.
10% of captions are replaced by "" so the same model also predicts unconditionally, which
classifier-free guidance needs at sampling time.

Latents are encoded once (mean and std of q(z|x)) and a fresh z_0 is sampled from them every step. All
randomness of a step is drawn for the global batch and then split across ranks, so N ranks compute
exactly what one process does. Re-running the same command resumes from `--out`/state.pt.

`--unet mobile-tiny` trains the MobileDiffusion-style UNet with the same data, schedule and budget;
`--set FIELD=VALUE` changes single UNetConfig fields (the one-change ablations of `python -m sd bench mobile`).
`--init CKPT --attention relu` fine-tunes a trained (softmax) model with ReLU attention instead, as
MobileDiffusion converts its model (the weights carry over: ReLU attention has no parameters of its own).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sd.data.dataset import generate
from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.config_json import config_from_dict, config_overrides, config_to_dict
from sd.loading.tokenizer_files import default_tokenizer
from sd.schedule import SD15_SCHEDULE, add_noise
from sd.train.curves import plot_curves
from sd.train.distributed import Dist, check_ranks_identical, cleanup, setup, wrap
from sd.train.ema import EMA
from sd.train.latent_cache import DEFAULT_CACHE, cached_latents
from sd.train.lr_schedule import warmup_cosine
from sd.train.state import load_state, save_state
from sd.train.vae_file import load_vae
from transformer.clip_text import TINY_TEXT, CLIPTextModel
from unet.config import TINY_UNET, UNET_PRESETS, UNetConfig
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL


class TextToImage(nn.Module):
    """The two trained parts as one module, so one optimizer, one DDP wrapper and one EMA cover both."""

    def __init__(self, unet_config: UNetConfig = TINY_UNET) -> None:
        super().__init__()
        self.text_encoder = CLIPTextModel(TINY_TEXT)
        self.unet = UNetModel(unet_config)

    def forward(self, ids: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(z_t, t, self.text_encoder(ids))  # (B, 77) ids, (B, 4, 8, 8) -> eps (B, 4, 8, 8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sd.train.text_to_image", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--vae", type=Path, default=Path("outputs/train/vae/vae.safetensors"))
    p.add_argument("--out", type=Path, default=Path("outputs/train/t2i"))
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop (and save) after this step; the learning-rate schedule still spans --steps")  # fmt: skip
    p.add_argument("--batch", type=int, default=128, help="global batch, split across ranks")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--uncond-prob", type=float, default=0.1, help="caption dropout for classifier-free guidance")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--train-size", type=int, default=40000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--unet", choices=["tiny", "mobile-tiny"], default="tiny", help="UNet configuration")
    p.add_argument("--attention", choices=["softmax", "relu"], default=None,
                   help="override the UNet's attention (relu: ReLU(QK^T/sqrt(d))/L)")  # fmt: skip
    p.add_argument("--init", type=Path, default=None,
                   help="start from this trained checkpoint's text encoder and UNet (fine-tuning)")  # fmt: skip
    p.add_argument("--set", dest="unet_set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one UNetConfig field of the --unet preset, VALUE as JSON (repeatable), e.g. "
                   "--set shared_kv=true --set separable_levels=[1] --set ff_activation=silu")  # fmt: skip
    p.add_argument("--latent-cache", type=Path, default=DEFAULT_CACHE,
                   help=f"folder of encoded training latents reused across runs (default {DEFAULT_CACHE})")  # fmt: skip
    p.add_argument("--no-latent-cache", dest="latent_cache", action="store_const", const=None,
                   help="encode the training images every run")  # fmt: skip
    return p.parse_args(argv)


def unet_config(args: argparse.Namespace) -> UNetConfig:
    config = UNET_PRESETS[args.unet]
    if args.init is not None:  # fine-tuning keeps the architecture of the file it starts from
        config = load_checkpoint(args.init, dtype="fp32").unet.config
    config = dataclasses.replace(config, **config_overrides(UNetConfig, args.unet_set, "--set"))
    return dataclasses.replace(config, attention=args.attention) if args.attention else config


def initial_weights(model: TextToImage, path: Path) -> None:
    """Copy a trained checkpoint's text encoder and UNet into `model` (strict: same shapes, same keys)."""
    ckpt = load_checkpoint(path, dtype="fp32")
    model.text_encoder.load_state_dict(ckpt.text_encoder.state_dict())
    model.unet.load_state_dict(ckpt.unet.state_dict())


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image, (N, 4, 8, 8) each, encoded once."""
    means, stds = [], []
    for i in tqdm(range(0, len(images), 512), desc="encoding latents", leave=False):
        x = torch.from_numpy(images[i : i + 512]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        posterior = vae.encode(x)  # (b, 3, 64, 64) -> (b, 4, 8, 8)
        means.append(posterior.mean.cpu())
        stds.append(posterior.std.cpu())
    return torch.cat(means), torch.cat(stds)


def batch_for_step(args, step: int, n: int, empty_ids: torch.Tensor, ids: torch.Tensor, mean, std, scale: float):
    """Everything random about one global batch, from the step number alone."""
    gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    idx = torch.randperm(n, generator=gen)[: args.batch]
    z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * scale  # (B, 4, 8, 8)
    t = torch.randint(0, SD15_SCHEDULE.num_train_timesteps, (args.batch,), generator=gen)  # (B,)
    noise = torch.randn(z0.shape, generator=gen)  # (B, 4, 8, 8)
    drop = torch.rand(args.batch, generator=gen) < args.uncond_prob  # (B,)
    batch_ids = torch.where(drop[:, None], empty_ids, ids[idx])  # (B, 77)
    return batch_ids, z0, t, noise


def diffusion_loss(model: nn.Module, ids, z0, t, noise, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    z_t = add_noise(alphas_cumprod, z0, noise, t)  # forward process q(z_t | z_0)
    return F.mse_loss(model(ids, z_t, t), noise)


def train(args: argparse.Namespace) -> dict:
    d: Dist = setup(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    vae = load_vae(args.vae).to(d.device)
    tokenizer = default_tokenizer()
    data = generate(args.train_size, args.seed, progress=d.main)
    mean, std = cached_latents(
        args.latent_cache, vae.state_dict(), data.images, lambda: encode_latents(vae, data.images, d.device)
    )
    ids = tokenizer(data.captions)  # (N, 77)
    empty_ids = tokenizer([""])  # (1, 77)
    val = batch_for_step(args, -1, len(data), empty_ids, ids, mean, std, vae.config.scaling_factor)

    config = unet_config(args)
    model = TextToImage(config).to(d.device).train()
    if args.init is not None:
        initial_weights(model, args.init)
    ema = EMA(model, args.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    history: dict[str, list] = {"train": [], "val": [], "val_ema": []}
    start = 0
    state = load_state(args.out / "state.pt")
    if state is not None:
        saved = config_from_dict(UNetConfig, state.get("unet_config", config_to_dict(TINY_UNET)), "state.pt")
        if saved != config:
            raise UserError(f"{args.out / 'state.pt'}: was trained with another UNet ({saved}); use another --out")
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        history, start = state["history"], state["step"]
    ddp = wrap(model, d)
    alphas_cumprod = SD15_SCHEDULE.alphas_cumprod.to(d.device)

    end = min(args.steps, args.stop_after or args.steps)
    bar = tqdm(range(start, end), initial=start, total=end, desc="text-to-image", disable=not d.main)
    for step in bar:
        batch = batch_for_step(args, step, len(data), empty_ids, ids, mean, std, vae.config.scaling_factor)
        batch_ids, z0, t, noise = (d.shard(x).to(d.device) for x in batch)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, args.steps, args.lr, max_warmup=200)
        loss = diffusion_loss(ddp, batch_ids, z0, t, noise, alphas_cumprod)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema.update(model, step)
        if step % 10 == 0:
            history["train"].append((step, loss.item()))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if d.main and ((step + 1) % args.save_every == 0 or step + 1 == end):
            with torch.no_grad():
                val_on = [x.to(d.device) for x in val]
                history["val"].append((step + 1, diffusion_loss(model, *val_on, alphas_cumprod).item()))
                history["val_ema"].append((step + 1, diffusion_loss(ema.model, *val_on, alphas_cumprod).item()))
            save_state(args.out / "state.pt",
                       {"model": model.state_dict(), "ema": ema.model.state_dict(),
                        "optimizer": optimizer.state_dict(), "history": history, "step": step + 1,
                        "unet_config": config_to_dict(config)})  # fmt: skip
            plot_curves(history, args.out / "loss.png", "text encoder + UNet: denoising MSE")
    check_ranks_identical(model, d)
    cleanup(d)
    return {"history": history, "model": model, "ema": ema.model}


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
