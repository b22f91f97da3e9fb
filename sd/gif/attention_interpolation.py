"""Attention interpolation for in-betweens (AID, He et al. 2024): capture the keyframes' K/V, then attend to both.

Two passes, each a `with` block around the pipeline's ordinary denoising, set `CrossAttention.hook` on the chosen
UNet layers (attention_layers.py) and take it off again:
1. `capturing`: while keyframes are denoised, each chosen layer stores the keyframes' K and V: self-attention at the
   steps that will be interpolated, cross-attention once (its keys are the text's). Outputs are left as they are.
2. `interpolating`: an in-between at weight a between keyframes A and B, at those steps, attends over its own K/V
   and the stored K_A/V_A and K_B/V_B (transformer/interpolated_attention.py):
       outer: (1 - a) Attn(Q, [K; K_A], [V; V_A]) + a Attn(Q, [K; K_B], [V; V_B])
       inner: Attn(Q, [K; (1 - a) K_A + a K_B], [V; (1 - a) V_A + a V_B])
   Several in-betweens batch into one UNet call, each row with its own keyframes and weight.
As in AID, only the conditional pass changes: the unconditional half of a guided batch keeps plain attention, and
the keyframes' K/V are those of their conditional rows.

Which steps: the first `fraction` of the steps a frame runs, int(fraction * (steps - begin)) of them from its first
step `begin` (AID: int(0.5 * steps) from step 0). With trajectory sharing an in-between starts at the branch step,
so it is interpolated over the first part of what it runs (and the keyframes, denoised in full, are captured at
those steps): the steps before the branch are the keyframes' own, and nothing of the in-between runs there.

Steps are told apart by the UNet's timestep argument (a forward pre-hook reads it), so the hooks need nothing from
the sampler loop; GIFs use deterministic one-evaluation-per-step samplers (ddim, euler, dpmpp_2m).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from sd.bf16_compute import compute_dtype
from sd.errors import UserError
from sd.gif.attention_layers import KINDS, AttentionShape, attention_shapes, select_layers, unet_modules
from sd.gif.settings import AID_FRACTION, GifSettings
from sd.gif.timeline import FrameSpec
from sd.pipeline import StableDiffusionPipeline, generators_for
from transformer.attention import AttentionHook, CrossAttention
from transformer.interpolated_attention import VARIANTS, interpolated_attention

MIB = 2**20

@dataclass(frozen=True)
class AttentionInterpolation:
    """What is interpolated: the formula, for how much of a frame's steps, at which layers, within what memory."""

    variant: str = "outer"  # or "inner"
    fused: bool = True  # the frame's own K/V beside the keyframes' (AID's default); False: the keyframes' alone
    fraction: float = AID_FRACTION  # of the steps a frame runs, from its first
    kinds: tuple[str, ...] = KINDS  # "self" and/or "cross" attention
    factors: tuple[int, ...] | None = None  # the latent's downsampling factors (1, 2, 4, 8) to use; None: all
    max_bytes: int | None = None  # cap on the capture: the cheapest layers that fit (attention_layers.py)

    @classmethod
    def from_settings(cls, settings: GifSettings) -> AttentionInterpolation:
        """The options a GIF's --attention, --attention-fraction and --attention-budget-mb choose."""
        budget = settings.attention_budget_mb
        return cls(settings.attention, fraction=settings.attention_fraction,
                   max_bytes=None if budget is None else int(budget * MIB))  # fmt: skip

    def validate(self) -> None:
        checks = [
            (self.variant in VARIANTS, f"attention interpolation {self.variant!r}: choose {' or '.join(VARIANTS)}"),
            (0.0 <= self.fraction <= 1.0, f"attention interpolation fraction {self.fraction} must be in [0, 1]"),
            (bool(self.kinds) and set(self.kinds) <= set(KINDS), f"attention kinds {self.kinds}: use self, cross"),
            (self.max_bytes is None or self.max_bytes > 0, f"attention capture budget {self.max_bytes} must be > 0"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def window(self, begin: int, steps: int) -> range:
        """The steps interpolated for a frame that runs steps `begin` .. `steps` - 1."""
        return range(begin, begin + int(self.fraction * (steps - begin) + 1e-9))

    def layers(self, unet: torch.nn.Module, latent_size: tuple[int, int], steps: int, keyframes: int) -> list:
        """The layers to capture for `keyframes` keyframes over `steps` interpolated steps."""
        shapes = attention_shapes(unet, *latent_size)
        element_bytes = compute_dtype(unet).itemsize  # the activations' dtype, which K and V are in
        return select_layers(shapes, self.kinds, self.factors, self.max_bytes, steps, keyframes, element_bytes)


class KeyValueStore:
    """Keyframes' K and V (1, M, H*D) by (keyframe, layer, timestep); cross-attention's under timestep None."""

    def __init__(self, layers: list[AttentionShape], timesteps: torch.Tensor) -> None:
        self.layers = {shape.name: shape for shape in layers}
        self.timesteps = frozenset(float(t) for t in timesteps)  # the interpolated steps' timesteps
        self.kv: dict[tuple[int, str, float | None], tuple[torch.Tensor, torch.Tensor]] = {}

    def put(self, keyframe: int, layer: str, t: float | None, k: torch.Tensor, v: torch.Tensor) -> None:
        if (keyframe, layer, t) not in self.kv:  # clones: a view would keep the whole batch's tensor alive
            k_copy = k.clone()
            self.kv[keyframe, layer, t] = (k_copy, k_copy if v is k else v.clone())

    def ends(self, specs: list[FrameSpec], layer: str, t: float | None) -> tuple[torch.Tensor, ...]:
        """K_A, V_A, K_B, V_B (R, M, H*D) for rows blending keyframes spec.left (A) and spec.right (B)."""
        try:
            a = [self.kv[s.left, layer, t] for s in specs]
            b = [self.kv[s.right, layer, t] for s in specs]
        except KeyError as missing:
            raise KeyError(f"no captured K/V for (keyframe, layer, timestep) {missing}: capture that keyframe "
                           "over the same steps first") from None  # fmt: skip
        return tuple(torch.cat([pair[i] for pair in ends]) for ends in (a, b) for i in (0, 1))

    @property
    def keyframes(self) -> set[int]:
        return {keyframe for keyframe, _, _ in self.kv}

    def drop(self, keyframe: int) -> None:
        """Free one keyframe's capture (when its transitions are rendered)."""
        self.kv = {key: kv for key, kv in self.kv.items() if key[0] != keyframe}

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + (0 if v is k else v.nbytes) for k, v in self.kv.values())


def conditional_rows(batch: int, frames: int, guided: bool) -> tuple[slice, list[int]]:
    """The UNet rows that carry the frames' own text, and the frame of each. A guided batch is [uncond (n); cond (n)]
    (pipe.denoise); an unguided one is the n frames, repeated if one frame runs as two (the renderer's batch of one)."""
    if guided and batch == 2 * frames:
        return slice(frames, batch), list(range(frames))
    if not guided and batch % frames == 0:
        return slice(0, batch), [row % frames for row in range(batch)]
    raise ValueError(f"a UNet batch of {batch} rows does not hold {frames} {'guided ' if guided else ''}frames")


@contextmanager
def _hooked(unet: torch.nn.Module, layers: set[str], make_hook: Callable[[str, dict], AttentionHook]) -> Iterator[None]:
    """Set `make_hook(name, clock)` on each named layer; clock["t"] is the timestep of the UNet call under way.
    No layers (nothing to interpolate): no hook at all."""
    clock: dict[str, float] = {}

    def read_timestep(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        t = args[1] if len(args) > 1 else kwargs["timesteps"]
        clock["t"] = float(torch.as_tensor(t).reshape(-1)[0])  # one timestep shared by the batch

    modules = unet_modules(unet, layers)
    if not modules:
        yield
        return
    if any(module.hook is not None for _, module in modules):
        raise RuntimeError("an attention hook is already set on this UNet: one capture or interpolation at a time")
    handle = unet.register_forward_pre_hook(read_timestep, with_kwargs=True)
    try:
        for name, module in modules:
            module.hook = make_hook(name, clock)
        yield
    finally:
        handle.remove()
        for _, module in modules:
            module.hook = None


@contextmanager
def capturing(unet: torch.nn.Module, store: KeyValueStore, keyframes: list[int], guided: bool) -> Iterator[None]:
    """Store the K/V of `keyframes` (keyframe index per frame of the batch) while they are denoised."""

    def make_hook(name: str, clock: dict) -> AttentionHook:
        def hook(module: CrossAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            t = None if module.is_cross else clock["t"]
            if t is None or t in store.timesteps:
                rows, frames = conditional_rows(q.shape[0], len(keyframes), guided)
                for row, frame in zip(range(rows.start, rows.stop), frames, strict=True):
                    k_row = k[row : row + 1]  # (1, M, H*D)
                    store.put(keyframes[frame], name, t, k_row, k_row if v is k else v[row : row + 1])
            return module.attend(q, k, v)  # the keyframe's own attention, unchanged

        return hook

    with _hooked(unet, set(store.layers) if store.timesteps else set(), make_hook):
        yield


@contextmanager
def interpolating(
    unet: torch.nn.Module,
    store: KeyValueStore,
    specs: list[FrameSpec],
    guided: bool,
    options: AttentionInterpolation = AttentionInterpolation(),
) -> Iterator[None]:
    """Denoise the in-betweens `specs` (one per frame of the batch) with interpolated attention at the stored steps."""

    def make_hook(name: str, clock: dict) -> AttentionHook:
        def hook(module: CrossAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            if clock["t"] not in store.timesteps:
                return module.attend(q, k, v)
            rows, frames = conditional_rows(q.shape[0], len(specs), guided)
            row_specs = [specs[frame] for frame in frames]
            ends = store.ends(row_specs, name, None if module.is_cross else clock["t"])  # 4 x (R, M', H*D)
            weight = torch.tensor([s.weight for s in row_specs], device=q.device)  # (R,)
            mixed = interpolated_attention(
                q[rows], k[rows], v[rows], ends, weight, module.heads, options.variant, module.kind, options.fused
            )  # (R, N, H*D)
            if rows.start == 0:
                return mixed
            plain = module.attend(q[: rows.start], k[: rows.start], v[: rows.start])  # unconditional rows
            return torch.cat([plain, mixed])  # (B, N, H*D)

        return hook

    with _hooked(unet, set(store.layers) if store.timesteps else set(), make_hook):
        yield


def denoise_from(
    pipe: StableDiffusionPipeline,
    settings: GifSettings,
    latents: torch.Tensor,
    contexts: torch.Tensor,
    uncond: torch.Tensor | None,
    begin: int,
    keep: int | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents (n, 4, h, w) at step `begin` denoised to the end with `contexts` (n, 77, C) and `uncond` (1, 77, C)
    or None, by the settings' sampler, steps and guidance; also the latents before step `keep`, if given."""
    schedule = pipe.new_sampler(settings.sampler, settings.steps, begin, spacing=settings.spacing)
    uncond = None if uncond is None else uncond.expand(latents.shape[0], -1, -1)  # (n, 77, C)
    kept: list[torch.Tensor] = []

    def on_step(i: int, x: torch.Tensor) -> None:
        if keep is not None and begin + i == keep:
            kept.append(x.clone())

    out = pipe.denoise(
        latents, contexts, uncond, schedule, schedule.timesteps[begin:], settings.guidance,
        generators_for(0, latents.shape[0]), progress=progress, on_step=on_step,
    )  # fmt: skip
    return out, (kept[0] if kept else None)


def new_store(
    pipe: StableDiffusionPipeline,
    settings: GifSettings,
    options: AttentionInterpolation,
    latent_size: tuple[int, int],
    inbetween_begin: int,
    keyframes: int,
) -> KeyValueStore:
    """An empty store for `keyframes` keyframes whose in-betweens start at step `inbetween_begin` (0: from noise;
    with trajectory sharing, the branch step), holding the layers `options` choose at (h, w) `latent_size`."""
    options.validate()
    window = options.window(inbetween_begin, settings.steps)
    layers = options.layers(pipe.checkpoint.unet, latent_size, len(window), keyframes)
    timesteps = pipe.new_sampler(settings.sampler, settings.steps, spacing=settings.spacing).timesteps
    timesteps = timesteps[window.start : window.stop]
    return KeyValueStore(layers, timesteps)


def capture_keyframes(
    pipe: StableDiffusionPipeline,
    settings: GifSettings,
    store: KeyValueStore,
    keyframes: list[int],
    noises: torch.Tensor,
    contexts: torch.Tensor,
    uncond: torch.Tensor | None,
    keep: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Denoise `keyframes` (their indices) from `noises` (K, 4, h, w), already scaled by the sampler's initial
    sigma, with `contexts` (K, 77, C), into `store`. Returns the final latents (K, 4, h, w) and those before step
    `keep` (the branch step of trajectory sharing), if given."""
    with capturing(pipe.checkpoint.unet, store, keyframes, guided=uncond is not None):
        return denoise_from(pipe, settings, noises, contexts, uncond, 0, keep)


def render_inbetweens(
    pipe: StableDiffusionPipeline,
    settings: GifSettings,
    store: KeyValueStore,
    specs: list[FrameSpec],
    latents: torch.Tensor,
    contexts: torch.Tensor,
    uncond: torch.Tensor | None,
    begin: int,
    options: AttentionInterpolation = AttentionInterpolation(),
) -> torch.Tensor:
    """Denoise in-betweens `specs` from `latents` (n, 4, h, w) at step `begin` (0: scaled noise; the branch step:
    slerped branch latents) with `contexts` (n, 77, C), interpolating attention over the steps `store` holds."""
    with interpolating(pipe.checkpoint.unet, store, specs, uncond is not None, options):
        return denoise_from(pipe, settings, latents, contexts, uncond, begin)[0]


class AttentionDenoising:
    """The GIF renderer's denoise context (renderer.py) for --attention: keyframes are captured while they are
    denoised, in-betweens attend to them. One store for the run; K/V of every keyframe stay until it ends (the
    renderer denoises all keyframes before any in-between), within --attention-budget-mb."""

    captures_keyframes = True

    def __init__(
        self, pipe: StableDiffusionPipeline, settings: GifSettings, latent_size: tuple[int, int],
        inbetween_begin: int, keyframes: int, guided: bool,
    ) -> None:  # fmt: skip
        """`latent_size`: (h, w); `inbetween_begin`: the step in-betweens start from (the branch step with
        trajectory sharing, else 0); `keyframes`: how many the animation has; `guided`: whether UNet batches
        carry an unconditional half."""
        self.unet, self.guided = pipe.checkpoint.unet, guided
        self.options = AttentionInterpolation.from_settings(settings)
        self.store = new_store(pipe, settings, self.options, latent_size, inbetween_begin, keyframes)

    def keyframes(self, indices: list[int]):
        return capturing(self.unet, self.store, indices, self.guided)

    def in_betweens(self, specs: list[FrameSpec]):
        return interpolating(self.unet, self.store, specs, self.guided, self.options)
