"""Text-to-image and image-to-image: the components of a checkpoint wired into a sampler loop.

    prompt -> tokenizer -> text encoder -> context (B, 77, 768)   (SD 2.x: 1024, from the penultimate layer)
    noise (or encoded init image + noise) -> [UNet + classifier-free guidance + sampler step] x steps
    -> latents / 0.18215 -> VAE decoder -> images

The UNet's output is whatever the checkpoint was trained to predict (`checkpoint.prediction_type`: the
noise eps for SD 1.x and SD 2.x-base, v for SD 2.x at 768); guidance combines it the same way either way,
and the sampler turns it into a step.

Classifier-free guidance (Ho & Salimans 2022): eps = eps_uncond + w * (eps_text - eps_uncond), with the
unconditional (negative prompt) and conditional halves batched into one UNet call.

Seeds: image i of a batch started with seed s uses its own generator seeded s + i, drawn the way
diffusers draws on CPU, so it is the same image whatever the batch size, and the same image diffusers'
pipeline makes with `generator=[torch.Generator().manual_seed(s + i) for i in range(batch)]`.
`encode_prompt` and `encode_image` are public steps, so the GIF driver can interpolate between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from sd.bf16_compute import compute_dtype, set_bf16_compute
from sd.errors import UserError
from sd.images import image_to_tensor, tensor_to_images
from sd.loading.checkpoint_types import Checkpoint
from sd.samplers import make_sampler, options_of, spacing_of
from sd.samplers.noise import randn_tensor
from sd.samplers.spacing import TimestepConfig


def generators_for(seed: int, batch: int) -> list[torch.Generator]:
    """One CPU generator per image: seed, seed + 1, ..."""
    return [torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)]


def img2img_start(steps: int, strength: float) -> int:
    """The first of `steps` sampler steps img2img runs: the last int(steps * strength) run, as in diffusers."""
    return steps - min(int(steps * strength), steps)


def check_size(width: int, height: int, factor: int) -> None:
    """`factor`: the VAE's downsampling (VAEConfig.downsample_factor, 8 for SD)."""
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % factor:
            raise UserError(f"{name} {value} is not a positive multiple of {factor} (the VAE downsamples by {factor})")


class StableDiffusionPipeline:
    def __init__(
        self, checkpoint: Checkpoint, device: str | torch.device = "cpu", offload: bool = False,
        bf16_compute: str = "auto",
    ) -> None:  # fmt: skip
        """`offload=True` keeps every component on the CPU and moves each to `device` only while it
        runs (the low-VRAM split optimizedSD made popular); otherwise all live on `device`.
        `bf16_compute` ("auto", "native" or "fp32"): how bf16 weights compute (sd/bf16_compute.py);
        `self.bf16_compute` records what runs ("native", "fp32", or None for a model without bf16 weights)."""
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self.offload = offload
        self.bf16_compute = set_bf16_compute(self._modules(), bf16_compute, self.device)
        self.dtype = compute_dtype(checkpoint.unet)  # the activations' dtype: fp32 under fp32 compute
        if not offload:
            for module in self._modules():
                module.to(self.device)

    def _modules(self) -> list[nn.Module]:
        return [self.checkpoint.text_encoder, self.checkpoint.unet, self.checkpoint.vae]

    @contextmanager
    def _on_device(self, module: nn.Module) -> Iterator[nn.Module]:
        if self.offload and self.device.type != "cpu":
            module.to(self.device)
            try:
                yield module
            finally:
                module.to("cpu")
        else:
            yield module

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], skip_last_layers: int = 0) -> torch.Tensor:
        """Text hidden states (B, 77, C), the UNet's cross-attention context. `skip_last_layers` counts on
        top of the layers the model skips anyway (SD 2.x's last one)."""
        ids = self.checkpoint.tokenizer(prompts).to(self.device)  # (B, 77)
        with self._on_device(self.checkpoint.text_encoder) as text_encoder:
            return text_encoder(ids, skip_last_layers)  # (B, 77) -> (B, 77, 768)

    @torch.no_grad()
    def latent_size(self, width: int, height: int) -> tuple[int, int]:
        """(h, w) of the latents of a width x height image: each side over the VAE's downsampling factor."""
        factor = self.checkpoint.vae.config.downsample_factor
        return height // factor, width // factor

    def encode_image(self, image: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """Scaled latents (B, 4, H/8, W/8) of one image (1, 3, H, W) in [-1, 1], one posterior sample per
        generator (as diffusers' img2img: the VAE sample consumes each generator before the noise does)."""
        vae = self.checkpoint.vae
        with self._on_device(vae):
            posterior = vae.encode(image.to(self.device, self.dtype))  # (1, 3, H, W) -> mean, std (1, 4, h, w)
        latents = torch.cat([posterior.sample(g) for g in generators])  # (B, 4, h, w)
        return latents * vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, 4, h, w) -> images (B, 3, 8h, 8w) in [-1, 1]."""
        vae = self.checkpoint.vae
        with self._on_device(vae):
            return vae.decode(latents / vae.config.scaling_factor)

    @torch.no_grad()
    def denoise(
        self,
        latents: torch.Tensor,
        context: torch.Tensor,
        uncond_context: torch.Tensor | None,
        sampler,
        timesteps: torch.Tensor,
        guidance: float,
        generators: list[torch.Generator],
        progress: bool = True,
        on_step: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Run the sampler over `timesteps`; guidance applies when `uncond_context` is given.
        `on_step(i, latents)` sees the latents before step i (the GIF driver keeps some to branch from)."""
        if uncond_context is not None:
            both = torch.cat([uncond_context, context])  # (2B, 77, C): negative first, as diffusers
        with self._on_device(self.checkpoint.unet) as unet:
            for i, t in enumerate(tqdm(timesteps, desc="denoising", disable=not progress, leave=False)):
                if on_step is not None:
                    on_step(i, latents)
                if uncond_context is None:
                    out = unet(sampler.scale_model_input(latents, t), t, context)  # (B, 4, h, w): eps or v
                else:
                    model_input = sampler.scale_model_input(torch.cat([latents, latents]), t)  # (2B, 4, h, w)
                    out_uncond, out_text = unet(model_input, t, both).chunk(2)  # 2 x (B, 4, h, w)
                    out = out_uncond + guidance * (out_text - out_uncond)
                latents = sampler.step(out, t, latents, generator=generators)  # x_t -> x_{t-1}
        return latents

    def timestep_config(self, sampler: str, spacing: str | None = None) -> TimestepConfig:
        """The timestep facts `sampler` runs with: the checkpoint's, its spacing replaced by `spacing` (the
        user's --spacing) if given, else by the sampler's diffusers default if the checkpoint names none.
        The spacing is None for a sampler that follows no spacing rule (LCM), which refuses --spacing."""
        config = self.checkpoint.timestep_config
        own = spacing_of(sampler, config)
        if own is None and spacing is not None:
            raise UserError(f"--spacing {spacing}: the {sampler} sampler picks its timesteps from its own grid, "
                            "not by a spacing rule; drop --spacing")  # fmt: skip
        return replace(config, spacing=spacing or own)

    def _sampler(self, name: str, steps: int, eta: float, spacing: str | None = None):
        """The named sampler with its timesteps set, for what the UNet predicts; eta goes to the samplers that
        take it (DDIM, TCD), as diffusers' pipeline passes its `eta` to a scheduler whose step takes one."""
        options = {"prediction_type": self.checkpoint.prediction_type}
        if "eta" in options_of(name):
            options["eta"] = eta
        sampler = make_sampler(name, self.checkpoint.schedule, self.timestep_config(name, spacing), **options)
        sampler.set_timesteps(steps, device=self.device)
        return sampler

    def new_sampler(self, name: str, steps: int, begin: int = 0, eta: float = 0.0, spacing: str | None = None):
        """A fresh sampler (multistep ones keep state) with its timesteps set, to run from step `begin` on: the GIF
        driver starts in-betweens and img2img frames part of the way along the schedule."""
        sampler = self._sampler(name, steps, eta, spacing)
        sampler.set_begin_index(begin)
        return sampler

    def _contexts(self, prompt: str, negative: str, batch: int, guidance: float):
        context = self.encode_prompt([prompt]).expand(batch, -1, -1)  # (B, 77, C)
        uncond = self.encode_prompt([negative]).expand(batch, -1, -1) if guidance > 1.0 else None
        return context, uncond

    def txt2img(
        self,
        prompt: str,
        negative_prompt: str = "",
        *,
        seed: int = 0,
        steps: int = 50,
        sampler: str = "ddim",
        guidance: float = 7.5,
        width: int | None = None,
        height: int | None = None,
        batch: int = 1,
        eta: float = 0.0,
        spacing: str | None = None,
        progress: bool = True,
    ) -> list[Image.Image]:
        """`spacing` overrides the checkpoint's timestep spacing (sd/samplers/spacing.py). Guidance <= 1 runs
        one conditional UNet pass per step, no classifier-free guidance (as diffusers; Turbo models want that)."""
        resolution = self.checkpoint.vae.config.resolution
        width, height = width or resolution, height or resolution
        check_size(width, height, self.checkpoint.vae.config.downsample_factor)
        schedule = self._sampler(sampler, steps, eta, spacing)
        context, uncond = self._contexts(prompt, negative_prompt, batch, guidance)
        generators = generators_for(seed, batch)
        shape = (batch, self.checkpoint.unet.config.in_channels, *self.latent_size(width, height))
        latents = randn_tensor(shape, generators, self.dtype, self.device) * schedule.init_noise_sigma
        latents = self.denoise(latents, context, uncond, schedule, schedule.timesteps, guidance, generators, progress)
        return tensor_to_images(self.decode_latents(latents))

    def img2img(
        self,
        prompt: str,
        init_image: Image.Image,
        negative_prompt: str = "",
        *,
        strength: float = 0.8,
        seed: int = 0,
        steps: int = 50,
        sampler: str = "ddim",
        guidance: float = 7.5,
        width: int | None = None,
        height: int | None = None,
        batch: int = 1,
        eta: float = 0.0,
        spacing: str | None = None,
        progress: bool = True,
    ) -> list[Image.Image]:
        """Start from the init image noised to the step `strength` of the way back, as diffusers does:
        only the last int(steps * strength) steps run; strength 1 ignores the image's content."""
        if not 0.0 <= strength <= 1.0:
            raise UserError(f"strength {strength} is outside [0, 1]")
        factor = self.checkpoint.vae.config.downsample_factor  # unset sides: the image's, down to a multiple
        size = (width or init_image.width // factor * factor, height or init_image.height // factor * factor)
        if width or height:
            check_size(*size, factor)
        image = image_to_tensor(init_image, *size)  # (1, 3, H, W)
        schedule = self._sampler(sampler, steps, eta, spacing)
        start = img2img_start(steps, strength)
        timesteps = schedule.timesteps[start * schedule.order :]
        schedule.set_begin_index(start * schedule.order)
        if len(timesteps) == 0:
            raise UserError(f"strength {strength} with {steps} steps runs no step; raise one of them")
        context, uncond = self._contexts(prompt, negative_prompt, batch, guidance)
        generators = generators_for(seed, batch)
        latents = self.encode_image(image, generators)  # (B, 4, h, w)
        noise = randn_tensor(latents.shape, generators, self.dtype, self.device)
        latents = schedule.add_noise(latents, noise, timesteps[:1].repeat(batch))
        latents = self.denoise(latents, context, uncond, schedule, timesteps, guidance, generators, progress)
        return tensor_to_images(self.decode_latents(latents))
