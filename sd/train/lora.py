"""LoRA fine-tuning of the shipped small model: teach it a style it has never seen, in minutes on a CPU.

    python -m sd.train.lora --out outputs/train/lora-teal           # "red" is drawn teal; minutes on a CPU
    python -m sd txt2img "a large red circle in the center on a black background" \
        --lora outputs/train/lora-teal/lora.safetensors --out teal.png

The style: every scene whose caption says WORD (as the shape's or the background's colour) is drawn in the
new colour RGB. Half of the training images show it; the other half are ordinary scenes in the usual colours,
so the adapter learns the new colour rather than a change to everything (prior preservation, as in DreamBooth).

Only the adapters train (Hu et al. 2021): rank-r LoRAs on the attention projections of the UNet (self- and
cross-attention: to_q, to_k, to_v, to_out.0) and of the text encoder (q_proj, k_proj, v_proj, out_proj); the
model itself stays frozen. B starts at zero, so step 0 is exactly the shipped model. The loss is stage 2's
denoising MSE (sd/train/text_to_image.py), with the same 10% of empty captions. Re-running the same command
resumes from OUT/state.pt; OUT/loss.png is the loss curve, OUT/lora.safetensors the adapter in diffusers'
LoRA format (diffusers' `load_lora_weights` reads it; `--lora` applies it), OUT/eval.json and OUT/eval.png
what sd.eval.style measures at the end, OUT/scales.png three prompts at LoRA scales 0, 0.25, ..., 1.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from sd.atomic_output import atomic_output
from sd.checkpoint_choice import resolve_checkpoint
from sd.cli.threads import add_threads_option, apply_threads
from sd.data.captions import random_caption
from sd.data.dataset import sample_scenes
from sd.data.shapes import render
from sd.data.vocabulary import COLOURS
from sd.errors import UserError
from sd.eval.grid import GridCell, write_grid
from sd.eval.style import evaluate_style
from sd.loading.checkpoint import load_checkpoint
from sd.loading.checkpoint_types import Checkpoint
from sd.lora.adapter import Lora
from sd.lora.formats import write_diffusers_lora
from sd.lora.layer import LoraLayer
from sd.lora.names import adaptable_modules, diffusers_names
from sd.lora.stack import LoraStack, applied_loras
from sd.paths import DEFAULT_CHECKPOINT
from sd.pipeline import StableDiffusionPipeline
from sd.schedule import SD15_SCHEDULE
from sd.train.curves import plot_curves
from sd.train.lr_schedule import warmup_cosine
from sd.train.state import load_state, save_state
from sd.train.text_to_image import batch_for_step, diffusion_loss, encode_latents

# Which layers get adapters: every attention projection (UNet self- and cross-attention, text encoder), or
# only the cross-attention keys and values, through which the text reaches the image (as Custom Diffusion,
# Kumari et al. 2023, fine-tunes).
TARGETS = {
    "attention": ("to_q", "to_k", "to_v", "to_out.0", "q_proj", "k_proj", "v_proj", "out_proj"),
    "cross-kv": ("attn2.to_k", "attn2.to_v"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sd.train.lora", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--checkpoint", type=Path, help=f"the model to adapt (default {DEFAULT_CHECKPOINT.name})")
    p.add_argument("--out", type=Path, default=Path("outputs/train/lora-teal"))
    p.add_argument("--word", default="red", choices=list(COLOURS), help="the colour word that gets a new look")
    p.add_argument("--rgb", default="20,160,160",
                   help="its new colour, R,G,B (default teal; the autoencoder only draws colours near its 12)")
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--alpha", type=float, default=4.0, help="scale alpha/rank on the update (default 1)")
    p.add_argument("--targets", choices=list(TARGETS), default="attention", help="layers to adapt (default attention)")
    p.add_argument("--no-text-encoder", dest="text_encoder", action="store_false", help="adapt the UNet only")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop (and save) after this step; the learning-rate schedule still spans --steps")  # fmt: skip
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--uncond-prob", type=float, default=0.1, help="empty captions, as in stage 2")
    p.add_argument("--train-size", type=int, default=2000, help="images, half of them in the new style")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--eval-samples", type=int, default=16, help="prompts per set for the final evaluation; 0: none")
    add_threads_option(p)
    return p.parse_args(argv)


def parse_rgb(text: str) -> tuple[int, int, int]:
    try:
        rgb = tuple(int(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise UserError(f"--rgb {text}: give three numbers 0-255 separated by commas, e.g. 0,200,255")
    return rgb  # type: ignore[return-value]


def style_data(word: str, rgb: tuple[int, int, int], n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """`n` images (N, 64, 64, 3) with captions: half name `word` and draw it as `rgb`, half do not name it."""
    scenes = sample_scenes(8 * n, seed)
    styled = [s for s in scenes if word in (s.colour, s.background)][: n // 2]
    plain = [s for s in scenes if word not in (s.colour, s.background)][: n - len(styled)]
    chosen = styled + plain
    palette = COLOURS | {word: rgb}
    rng = np.random.default_rng(seed + 1)
    images = np.stack([render(scene, palette)[0] for scene in chosen])  # (N, 64, 64, 3)
    return images, [random_caption(scene, rng) for scene in chosen]


def new_lora(checkpoint: Checkpoint, rank: int, alpha: float, targets: str, text_encoder: bool, seed: int) -> Lora:
    """Trainable adapters on the attention projections: A as PEFT initialises it (Kaiming-uniform), B = 0."""
    gen = torch.Generator().manual_seed(seed)
    layers = {}
    for name, module in adaptable_modules(checkpoint).items():
        if not name.endswith(TARGETS[targets]) or (name.startswith("text_encoder.") and not text_encoder):
            continue
        out_features, in_features = module.weight.shape
        bound = 1.0 / math.sqrt(in_features)  # kaiming_uniform_(a=sqrt(5)) on (r, in), as nn.Linear and PEFT
        down = (torch.rand(rank, in_features, generator=gen) * 2 - 1) * bound
        layers[name] = LoraLayer(nn.Parameter(down), nn.Parameter(torch.zeros(out_features, rank)), alpha)
    return Lora("trained", layers)


def lora_parameters(lora: Lora) -> list[nn.Parameter]:
    return [p for layer in lora.layers.values() for p in (layer.down, layer.up)]


def save_adapter(checkpoint: Checkpoint, lora: Lora, path: Path) -> None:
    """The adapter in diffusers' LoRA format (what `load_lora_weights` and `--lora` read)."""
    names = diffusers_names(checkpoint, list(lora.layers))
    write_diffusers_lora({names[q]: layer for q, layer in lora.layers.items()}, path, overwrite=True)


def write_eval(result: dict, out: Path, args: argparse.Namespace) -> dict:
    metrics = {k: v for k, v in result.items() if k not in ("images", "prompts")}
    metrics |= {"word": args.word, "rgb": list(parse_rgb(args.rgb)), "samples_per_set": args.eval_samples}
    with atomic_output(out / "eval.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1) + "\n")
    cells = [
        GridCell(image, f"{'with LoRA' if which == 'lora' else 'without'}: {prompt}", group=kind)
        for kind in ("styled", "control")
        for which in ("base", "lora")
        for image, prompt in list(zip(result["images"][which, kind], result["prompts"][kind], strict=True))[:8]
    ]
    heading = f"'{args.word}' prompts without / with the LoRA, then prompts without '{args.word}' without / with it"
    write_grid(cells, out / "eval.png", columns=8, overwrite=True, heading=heading)
    return metrics


STRIP_PROMPTS = (
    "a large {word} circle in the center on a black background",
    "a large white star in the center on a {word} background",
    "a large yellow heart in the center on a black background",
)
STRIP_SCALES = (0.0, 0.25, 0.5, 0.75, 1.0)


def scale_strip(checkpoint: Checkpoint, lora: Lora, word: str, path: Path, zoom: int = 2) -> None:
    """A row per prompt, a column per LoRA scale (STRIP_SCALES), same seed: the style fading in."""
    pipe = StableDiffusionPipeline(checkpoint)
    rows = []
    for prompt in STRIP_PROMPTS:
        row = []
        for scale in STRIP_SCALES:
            with applied_loras(checkpoint, [(lora, scale)]):
                row.append(pipe.txt2img(prompt.format(word=word), seed=3, steps=20, sampler="dpmpp_2m",
                                        guidance=5.0, progress=False)[0])  # fmt: skip
        rows.append(row)
    size = rows[0][0].width * zoom
    strip = Image.new("RGB", (size * len(STRIP_SCALES), size * len(rows)))
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            strip.paste(image.resize((size, size), Image.NEAREST), (j * size, i * size))
    with atomic_output(path, overwrite=True) as tmp:
        strip.save(tmp, format="PNG")


def train(args: argparse.Namespace) -> dict:
    apply_threads(args)
    rgb = parse_rgb(args.rgb)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    checkpoint = load_checkpoint(resolve_checkpoint(args.checkpoint))
    images, captions = style_data(args.word, rgb, args.train_size, args.seed)
    mean, std = encode_latents(checkpoint.vae, images, torch.device("cpu"))
    ids = checkpoint.tokenizer(captions)  # (N, 77)
    empty_ids = checkpoint.tokenizer([""])  # (1, 77)
    scale = checkpoint.vae.config.scaling_factor
    val = batch_for_step(args, -1, len(images), empty_ids, ids, mean, std, scale)

    lora = new_lora(checkpoint, args.rank, args.alpha, args.targets, args.text_encoder, args.seed)
    params = lora_parameters(lora)
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    history: dict[str, list] = {"train": [], "val": []}
    start = 0
    state = load_state(args.out / "state.pt")
    if state is not None:
        with torch.no_grad():
            for name, layer in lora.layers.items():
                layer.down.copy_(state["lora"][f"{name}.down"])
                layer.up.copy_(state["lora"][f"{name}.up"])
        optimizer.load_state_dict(state["optimizer"])
        history, start = state["history"], state["step"]
    stack = LoraStack(checkpoint)
    stack.add(lora)  # runtime hooks: gradients reach A and B, the frozen weights stay as loaded

    def model(batch_ids: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return checkpoint.unet(z_t, t, checkpoint.text_encoder(batch_ids))  # (B, 77) ids -> eps (B, 4, 8, 8)

    alphas_cumprod = SD15_SCHEDULE.alphas_cumprod
    if start == 0:  # the shipped model's loss on the new data, where the curve starts
        with torch.no_grad():
            history["val"].append((0, diffusion_loss(model, *val, alphas_cumprod).item()))
    end = min(args.steps, args.stop_after or args.steps)
    bar = tqdm(range(start, end), initial=start, total=end, desc="LoRA")
    for step in bar:
        batch_ids, z0, t, noise = batch_for_step(args, step, len(images), empty_ids, ids, mean, std, scale)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, args.steps, args.lr, max_warmup=50)
        loss = diffusion_loss(model, batch_ids, z0, t, noise, alphas_cumprod)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % 5 == 0:
            history["train"].append((step, loss.item()))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % args.save_every == 0 or step + 1 == end:
            with torch.no_grad():
                history["val"].append((step + 1, diffusion_loss(model, *val, alphas_cumprod).item()))
            tensors = {f"{n}.{k}": getattr(layer, k).detach().clone() for n, layer in lora.layers.items()
                       for k in ("down", "up")}  # fmt: skip
            save_state(args.out / "state.pt", {"lora": tensors, "optimizer": optimizer.state_dict(),
                                               "history": history, "step": step + 1})  # fmt: skip
            save_adapter(checkpoint, lora, args.out / "lora.safetensors")
            plot_curves(history, args.out / "loss.png", f"LoRA ({args.word} -> RGB {args.rgb}): denoising MSE")
    stack.clear()
    for p in params:
        p.requires_grad_(False)
    if not (args.out / "lora.safetensors").exists():  # resumed a finished run
        save_adapter(checkpoint, lora, args.out / "lora.safetensors")
    metrics = None
    if args.eval_samples > 0 and end == args.steps:
        result = evaluate_style(checkpoint, lora, args.word, rgb, n=args.eval_samples, seed=10_000, progress=True)
        metrics = write_eval(result, args.out, args)
        scale_strip(checkpoint, lora, args.word, args.out / "scales.png")
        print(json.dumps(metrics, indent=1))
    return {"history": history, "lora": lora, "checkpoint": checkpoint, "metrics": metrics}


def main(argv: list[str] | None = None) -> None:
    try:
        train(parse_args(argv))
    except UserError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
