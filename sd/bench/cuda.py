"""`python -m sd bench cuda`: what only a GPU shows, ours and diffusers side by side in one process.

These paths never run on the project's CPU machines, so this bench checks before it times:
- the UNet on CUDA in fp32 (TF32 off) against the same UNet on the CPU, and in fp16/bf16 against diffusers' UNet on
  CUDA with the same weights (relative error, max |a - b| / max |b|);
- whole txt2img images on CUDA in fp16 against diffusers' pipeline, and against our fp32 CPU image (pixels, 0-255);
- `--offload` (each component on the GPU only while it runs): the same image bits, and its peak GPU memory;
- the GIF driver on CUDA with a shipped model, frame for frame against the CPU;
then times the UNet and txt2img against diffusers (medians of interleaved runs, each synchronised).
Random SD 1.5-size weights (no real checkpoint exists here), as the CPU benches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sd.bench.reference import reference_pipeline, reference_unet
from sd.bench.timing import interleaved_medians
from sd.errors import UserError
from sd.loading.checkpoint import Checkpoint
from sd.pipeline import StableDiffusionPipeline

PROMPT = "a photograph of an astronaut riding a horse"


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float().cpu(), b.float().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def max_pixel_difference(a, b) -> int:
    """Largest difference of two lists of PIL images, in 0-255 levels."""
    return max(int(np.abs(np.asarray(x, np.int16) - np.asarray(y, np.int16)).max()) for x, y in zip(a, b, strict=True))


def in_dtype(checkpoint: Checkpoint, dtype: torch.dtype) -> Checkpoint:
    """An independent copy of the checkpoint's modules in `dtype` (on the CPU)."""
    parts = {name: copy.deepcopy(getattr(checkpoint, name)).to(dtype) for name in ("text_encoder", "vae", "unet")}
    return replace(checkpoint, **parts)


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    def run() -> object:
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    return run


def peak_memory_gib(fn: Callable[[], object], device: torch.device) -> tuple[object, float]:
    """fn()'s result and the GPU memory it allocated at its peak beyond what was already held, in GiB."""
    if device.type != "cuda":
        return fn(), float("nan")
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = fn()
    torch.cuda.synchronize(device)
    return out, (torch.cuda.max_memory_allocated(device) - before) / 2**30


def check_unet(checkpoint: Checkpoint, device: torch.device, latent: int) -> dict[str, float]:
    """Relative errors of one guided UNet call (batch 2): CUDA fp32 vs CPU fp32; ours vs diffusers in fp16 and bf16."""
    gen = torch.Generator().manual_seed(0)
    config = checkpoint.unet.config
    x = torch.randn(2, config.in_channels, latent, latent, generator=gen)  # (2, 4, h, w)
    context = torch.randn(2, 77, config.context_dim, generator=gen)  # (2, 77, C)
    t = torch.tensor([500, 500])
    out = {}
    with torch.no_grad():
        cpu = checkpoint.unet(x, t, context)
        unet = copy.deepcopy(checkpoint.unet).to(device)
        out["unet fp32: device vs cpu"] = rel_error(unet(x.to(device), t.to(device), context.to(device)), cpu)
        del unet
        for dtype in (torch.float16, torch.bfloat16):
            ours = copy.deepcopy(checkpoint.unet).to(device, dtype)
            ref = reference_unet(replace(checkpoint, unet=ours))
            args = (x.to(device, dtype), t.to(device), context.to(device, dtype))
            name = str(dtype).removeprefix("torch.")
            out[f"unet {name}: ours vs diffusers"] = rel_error(ours(*args), ref(*args).sample)
            out[f"unet {name}: ours vs fp32 cpu"] = rel_error(ours(*args), cpu)
            del ours, ref
    return out


def bench_cuda(
    checkpoint: Checkpoint, device: str = "cuda", steps: int = 20, size: int = 512, repeats: int = 3,
    gif_checkpoint: Path | None = None,
) -> dict:  # fmt: skip
    """Checks first, then timings; returns a dict of named figures (the CLI prints it as tables)."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("bench cuda needs a CUDA GPU (torch.cuda.is_available() is False); run it on a GPU machine")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 checks mean fp32, not TF32
    torch.backends.cudnn.allow_tf32 = False
    result: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    latent = size // checkpoint.vae.config.downsample_factor  # latent side
    result["errors"] = check_unet(checkpoint, device, latent)

    txt = dict(steps=steps, width=size, height=size, sampler="ddim", guidance=7.5, seed=0, progress=False)
    cpu_image = StableDiffusionPipeline(checkpoint).txt2img(PROMPT, **txt) if size <= 256 else None
    pixels, memory, times = {}, {}, {}
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        figures = compare_pipelines(checkpoint, dtype, device, txt, cpu_image, repeats)
        for key, table in (("pixels", pixels), ("memory", memory), ("seconds", times)):
            table.update({f"{name} {k}": v for k, v in figures[key].items()})
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result.update(pixels=pixels, memory_gib=memory, seconds=times)
    if gif_checkpoint is not None:
        result["gif"] = check_gif(gif_checkpoint, device)
    return result


def compare_pipelines(
    checkpoint: Checkpoint, dtype: torch.dtype, device: torch.device, txt: dict, cpu_image, repeats: int
) -> dict[str, dict]:
    """One dtype: images (ours, diffusers, offloaded), peak memory, interleaved timings of txt2img and a UNet call."""
    size, steps = txt["width"], txt["steps"]
    offloaded = StableDiffusionPipeline(in_dtype(checkpoint, dtype), device=device, offload=True)
    image_off, memory_off = peak_memory_gib(lambda: offloaded.txt2img(PROMPT, **txt), device)
    offloaded = None  # free it before the GPU-resident pipelines are built
    ours = StableDiffusionPipeline(in_dtype(checkpoint, dtype), device=device)
    reference = reference_pipeline(in_dtype(checkpoint, dtype), "DDIMScheduler").to(device)
    image, memory_on = peak_memory_gib(lambda: ours.txt2img(PROMPT, **txt), device)

    def ref_image():
        generator = [torch.Generator().manual_seed(0)]
        return reference(PROMPT, num_inference_steps=steps, width=size, height=size, guidance_scale=txt["guidance"],
                         generator=generator).images  # fmt: skip

    pixels = {"ours vs diffusers": max_pixel_difference(image, ref_image()),
              "--offload vs not": max_pixel_difference(image_off, image)}  # fmt: skip
    if cpu_image is not None:
        pixels["ours vs fp32 cpu"] = max_pixel_difference(image, cpu_image)
    runs = {"ours": lambda: ours.txt2img(PROMPT, **txt), "diffusers": ref_image}
    seconds = {f"txt2img {size}px, ddim {steps} steps, CFG": interleaved_medians(
        {k: synced(v, device) for k, v in runs.items()}, repeats=repeats)}  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    h, w = ours.latent_size(size, size)
    x = torch.randn(2, 4, h, w, generator=gen).to(device, dtype)  # (2, 4, h, w)
    context = torch.randn(2, 77, checkpoint.unet.config.context_dim, generator=gen).to(device, dtype)  # (2, 77, C)
    t = torch.tensor([500, 500], device=device)
    unet_runs = {"ours": lambda: ours.checkpoint.unet(x, t, context),
                 "diffusers": lambda: reference.unet(x, t, context)}  # fmt: skip
    with torch.no_grad():
        seconds[f"UNet call, batch 2, {h}x{w} latents"] = interleaved_medians(
            {k: synced(v, device) for k, v in unet_runs.items()}, repeats=repeats * 5)  # fmt: skip
    memory = {"txt2img, --offload": memory_off, "txt2img, on the GPU": memory_on}
    return {"pixels": pixels, "memory": memory, "seconds": seconds}


def check_gif(checkpoint_path: Path, device: torch.device) -> dict:
    """The GIF driver on `device` against the CPU, same keyframes and settings, no frame cache."""
    import time

    from sd.gif.animate import animate
    from sd.loading.checkpoint import load_checkpoint

    keyframes = ("0: a large red circle in the center on a blue background\n"
                 "12: a large yellow star in the center on a black background")  # fmt: skip
    out, frames = {}, {}
    for name, dev in (("cpu", torch.device("cpu")), ("gpu", device)):
        pipe = StableDiffusionPipeline(load_checkpoint(checkpoint_path), device=dev)
        start = time.perf_counter()
        frames[name] = animate(keyframes, pipe=pipe, cache_dir=None, progress=False).frames
        out[f"seconds, {name}"] = time.perf_counter() - start
    out["frames"] = len(frames["gpu"])
    out["max pixel difference gpu vs cpu"] = max_pixel_difference(frames["gpu"], frames["cpu"])
    return out
