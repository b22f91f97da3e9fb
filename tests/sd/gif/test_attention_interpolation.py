"""Attention interpolation on real UNets: hooks off change nothing, weights 0 and 1 give the keyframes back, rows
batch independently, and the capture takes the memory the formula says."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sd.errors import UserError
from sd.gif.attention_interpolation import (
    AttentionInterpolation,
    KeyValueStore,
    capture_keyframes,
    capturing,
    conditional_rows,
    denoise_from,
    interpolating,
    new_store,
    render_inbetweens,
)
from sd.gif.attention_layers import (
    attention_shapes,
    capture_bytes,
    config_capture_bytes,
    config_shapes,
    select_layers,
)
from sd.gif.settings import GifSettings
from sd.gif.timeline import FrameSpec
from sd.pipeline import generators_for
from sd.samplers.noise import randn_tensor
from tests.random_weights import randomize_
from transformer.attention import CrossAttention
from unet.config import MOBILE_TINY_UNET, SD15_UNET, SD21_UNET, TINY_UNET
from unet.model import UNetModel

CONFIGS = {  # softmax SD 1.x, MobileDiffusion's switches (shared K/V, no self-attention at 8x8), ReLU attention
    "tiny": TINY_UNET, "mobile-tiny": MOBILE_TINY_UNET, "relu": replace(TINY_UNET, attention="relu"),
}  # fmt: skip
T = 500.0  # the timestep of the UNet-level tests


@pytest.fixture(scope="module", params=list(CONFIGS))
def unet(request) -> UNetModel:
    return randomize_(UNetModel(CONFIGS[request.param]), seed=3)


def inputs(unet: UNetModel, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (1, 4, 8, 8) and a text context (1, 77, C) of one keyframe."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 77, unet.config.context_dim, generator=gen)


def guided_call(unet: UNetModel, x: torch.Tensor, context: torch.Tensor, uncond: torch.Tensor | None) -> torch.Tensor:
    """One UNet call the way pipe.denoise makes it: [uncond; cond] rows when guided."""
    if uncond is None:
        return unet(x, T, context)
    return unet(torch.cat([x, x]), T, torch.cat([uncond.expand_as(context), context]))


def store_for(unet: UNetModel, keyframes: int = 2, timesteps=(T,)) -> KeyValueStore:
    layers = AttentionInterpolation().layers(unet, (8, 8), len(timesteps), keyframes)
    return KeyValueStore(layers, torch.tensor(timesteps))


# ---- hook off: bit-identical --------------------------------------------------------------------------------------
@torch.no_grad()
def test_hooks_leave_the_unet_bit_identical_when_they_do_not_interpolate(unet):
    (xa, ca), (xb, cb) = inputs(unet, 0), inputs(unet, 1)
    x, context = torch.cat([xa, xb]), torch.cat([ca, cb])  # (2, 4, 8, 8), (2, 77, C)
    before, elsewhere = unet(x, T, context), unet(x, 999.0, context)
    store = store_for(unet)
    with capturing(unet, store, [0, 1], guided=False):  # a capture returns each layer's own attention
        assert torch.equal(unet(x, T, context), before)
    with interpolating(unet, store, [FrameSpec(0, 1, 0.5)] * 2, guided=False):
        assert torch.equal(unet(x, 999.0, context), elsewhere)  # a step that is not interpolated
        assert not torch.equal(unet(x, T, context), before)  # a captured step is
    modules = [m for m in unet.modules() if isinstance(m, CrossAttention)]
    assert modules and all(m.hook is None for m in modules)  # every hook taken off again
    assert torch.equal(unet(x, T, context), before)


@torch.no_grad()
def test_a_hook_that_returns_the_plain_attention_changes_no_bit(unet):
    x, context = inputs(unet, 0)
    before = unet(x, T, context)
    modules = [m for m in unet.modules() if isinstance(m, CrossAttention)]
    try:
        for m in modules:
            m.hook = lambda module, q, k, v: module.attend(q, k, v)
        assert torch.equal(unet(x, T, context), before)
    finally:
        for m in modules:
            m.hook = None


# ---- weights 0 and 1 reproduce the keyframes ----------------------------------------------------------------------
@torch.no_grad()
@pytest.mark.parametrize("guided", [True, False])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("variant", ["outer", "inner"])
def test_weights_0_and_1_give_each_keyframe_its_own_output(unet, variant, fused, guided):
    """An in-between at weight 0 fed keyframe A's latents and text is keyframe A (its keys appear twice: the same
    softmax), and at weight 1 fed B's is B: equal to 1e-5 (measured: at most 1.4e-6, float32 rounding of the longer
    sums; outputs are about 1), where the other weight moves the output by 2e-2 to 9e-2. Unfused, the frame attends
    over K_A alone: its own attention exactly."""
    (xa, ca), (xb, cb) = inputs(unet, 0), inputs(unet, 1)
    uncond = torch.randn(1, 77, unet.config.context_dim, generator=torch.Generator().manual_seed(2)) if guided else None
    store, options = store_for(unet), AttentionInterpolation(variant, fused=fused)
    with capturing(unet, store, [0, 1], guided):
        both = guided_call(unet, torch.cat([xa, xb]), torch.cat([ca, cb]), uncond)  # (2 or 4, 4, 8, 8)
    own = {0: both[-2:-1], 1: both[-1:]}  # the conditional rows' outputs of A and B
    for weight, (x, context, keyframe) in ((0.0, (xa, ca, 0)), (1.0, (xb, cb, 1))):
        with interpolating(unet, store, [FrameSpec(0, 1, weight)], guided, options):
            out = guided_call(unet, x, context, uncond)[-1:]
        # fp32 round-off of a batch-of-one call against a batch-of-two one (measured up to 1.4e-6 unfused)
        assert (out - own[keyframe]).abs().max() < 1e-5, weight
        with interpolating(unet, store, [FrameSpec(0, 1, 1.0 - weight)], guided, options):
            other = guided_call(unet, x, context, uncond)[-1:]
        assert (other - own[keyframe]).abs().max() > 1e-3, weight


def test_a_whole_denoising_at_weight_0_ends_at_the_keyframe(tiny_pipe):
    """Six dpmpp_2m steps, guided, the first three interpolated: within 1e-4 of keyframe A's latents (about 1)."""
    contexts, uncond = tiny_pipe.encode_prompt(["a red circle", "a blue square"]), tiny_pipe.encode_prompt([""])
    noises = torch.cat([randn_tensor((1, 4, 8, 8), generators_for(seed, 1)) for seed in (1, 2)])  # (2, 4, 8, 8)
    settings = GifSettings(steps=6)  # dpmpp_2m, guidance 5
    store = new_store(tiny_pipe, settings, AttentionInterpolation(), (8, 8), inbetween_begin=0, keyframes=2)
    assert len(store.timesteps) == 3
    keyframes, _ = capture_keyframes(tiny_pipe, settings, store, [0, 1], noises, contexts, uncond)
    alone, _ = denoise_from(tiny_pipe, settings, noises[:1], contexts[:1], uncond, begin=0)
    assert torch.equal(keyframes[:1], alone)  # capturing left the keyframe as it is
    for options in (AttentionInterpolation("outer"), AttentionInterpolation("inner", fused=False)):
        start = FrameSpec(0, 1, 0.0)
        frame = render_inbetweens(tiny_pipe, settings, store, [start], noises[:1], contexts[:1], uncond, 0, options)
        assert (frame - keyframes[:1]).abs().max() < 1e-4
        half = FrameSpec(0, 1, 0.5)
        halfway = render_inbetweens(tiny_pipe, settings, store, [half], noises[:1], contexts[:1], uncond, 0, options)
        assert (halfway - keyframes[:1]).abs().max() > 1e-2


# ---- batching ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("guidance", [5.0, 1.0])
def test_in_betweens_batched_equal_each_rendered_alone(tiny_pipe, guidance):
    """Three in-betweens of two different transitions in one UNet batch, each with its own weight."""
    prompts = ["a red circle", "a blue square", "a green star"]
    contexts = tiny_pipe.encode_prompt(prompts)  # (3, 77, C)
    uncond = tiny_pipe.encode_prompt([""]) if guidance > 1 else None
    noises = torch.cat([randn_tensor((1, 4, 8, 8), generators_for(seed, 1)) for seed in (1, 2, 3)])
    settings = GifSettings(steps=6, guidance=guidance)
    store = new_store(tiny_pipe, settings, AttentionInterpolation(), (8, 8), inbetween_begin=2, keyframes=3)
    assert store.timesteps == {float(t) for t in tiny_pipe._sampler("dpmpp_2m", 6, 0.0).timesteps[2:4]}
    _, branch = capture_keyframes(tiny_pipe, settings, store, [0, 1, 2], noises, contexts, uncond, keep=2)
    specs = [FrameSpec(0, 1, 0.25), FrameSpec(1, 2, 0.5), FrameSpec(0, 1, 0.75)]
    starts = torch.cat([torch.lerp(branch[s.left], branch[s.right], s.weight)[None] for s in specs])
    texts = torch.cat([torch.lerp(contexts[s.left], contexts[s.right], s.weight)[None] for s in specs])
    batched = render_inbetweens(tiny_pipe, settings, store, specs, starts, texts, uncond, begin=2)
    for i, spec in enumerate(specs):
        x, c = starts[i : i + 1], texts[i : i + 1]
        if uncond is None:  # an unguided batch of one rounds differently on CPU: run it as two, as the renderer does
            x, c = x.repeat(2, 1, 1, 1), c.repeat(2, 1, 1)
        alone = render_inbetweens(tiny_pipe, settings, store, [spec], x, c, uncond, begin=2)[:1]
        assert torch.equal(batched[i : i + 1], alone), spec  # bit for bit


def test_the_rows_a_hook_interpolates():
    assert conditional_rows(6, 3, guided=True) == (slice(3, 6), [0, 1, 2])  # [uncond; cond]: only cond
    assert conditional_rows(2, 1, guided=False) == (slice(0, 2), [0, 0])  # one frame run as two rows
    with pytest.raises(ValueError, match="does not hold"):
        conditional_rows(5, 3, guided=True)


# ---- steps, layers, memory -----------------------------------------------------------------------------------------
def test_the_window_is_the_first_fraction_of_the_steps_a_frame_runs():
    aid = AttentionInterpolation()
    assert aid.window(0, 20) == range(0, 10)  # AID: int(0.5 * steps) from the start
    assert aid.window(16, 20) == range(16, 18)  # trajectory sharing from step 16: half of the 4 it runs
    assert AttentionInterpolation(fraction=0.6).window(0, 20) == range(0, 12)  # DiffMorpher's 60%
    assert AttentionInterpolation(fraction=0.0).window(0, 20) == range(0, 0)


def test_sd15_capture_memory_at_512_in_fp16():
    """64x64 latents: per keyframe and step, K and V of 5 self-attention layers at 64x64 (4096 x 320), 5 at 32x32
    (1024 x 640), 5 at 16x16 (256 x 1280) and the middle one at 8x8 (64 x 1280), 2 bytes each; text keys once."""
    shapes = config_shapes(SD15_UNET, 64, 64)
    assert len(shapes) == 32 and sum(s.cross for s in shapes) == 16
    per_step = 2 * 2 * (5 * 4096 * 320 + 5 * 1024 * 640 + 5 * 256 * 1280 + 64 * 1280)
    text = 2 * 2 * 77 * (5 * 320 + 5 * 640 + 6 * 1280)
    assert per_step == 46_202_880 and text == 3_843_840  # 44.1 MiB and 3.7 MiB
    assert capture_bytes(shapes, 1, 1, 2) == per_step + text
    default = config_capture_bytes(SD15_UNET, 64, 64, steps=10, keyframes=2)  # 20 steps at fraction 0.5
    assert default == 2 * (10 * per_step + text) == 931_745_280  # 0.87 GiB for a pair of keyframes
    # bounds: without the 64x64 level, self-attention only, a byte budget
    no_top = select_layers(shapes, factors=(2, 4, 8))
    assert capture_bytes(no_top, 1, 1, 2) == per_step + text - 2 * 2 * 5 * (4096 * 320 + 77 * 320)
    assert all(not s.cross for s in select_layers(shapes, kinds=("self",)))
    budget = 300 * 2**20
    kept = select_layers(shapes, max_bytes=budget, steps=10, keyframes=2)
    assert capture_bytes(kept, 10, 2, 2) <= budget
    assert {s.factor for s in kept if not s.cross} == {2, 4, 8}  # the costly 64x64 layers go first
    with pytest.raises(UserError, match="holds no layer"):
        select_layers(shapes, max_bytes=1000, steps=10)
    with pytest.raises(UserError, match="no self-attention layer"):
        select_layers(shapes, kinds=("self",), factors=(16,))


def test_a_half_precision_unet_traces_and_counts_two_bytes():
    with torch.device("meta"):
        unet = UNetModel(TINY_UNET).half()
    shapes = config_shapes(TINY_UNET, 8, 8)
    assert attention_shapes(unet, 8, 8) == shapes
    options = AttentionInterpolation(max_bytes=capture_bytes(shapes, 1, 2, 2))  # exactly everything, in fp16
    assert options.layers(unet, (8, 8), steps=1, keyframes=2) == shapes


def test_sd21_traces_too():
    shapes = config_shapes(SD21_UNET, 96, 96)  # 768x768: 64-wide heads, linear projections, 1024-wide text
    assert {s.factor for s in shapes} == {1, 2, 4, 8} and shapes[0].keys == 96 * 96 and shapes[1].keys == 77


@torch.no_grad()
def test_the_store_holds_what_the_formula_counts(unet):
    """Measured on the real capture: K and V per self-attention layer and step (one tensor with shared K/V), text
    keys once, for the conditional rows only."""
    shapes = attention_shapes(unet, 8, 8)
    assert [s.name for s in shapes] == [n for n, m in unet.named_modules() if isinstance(m, CrossAttention)]
    store = store_for(unet, keyframes=2, timesteps=(T, 400.0))
    uncond = torch.zeros(1, 77, unet.config.context_dim)
    (xa, ca), (xb, cb) = inputs(unet, 0), inputs(unet, 1)
    with capturing(unet, store, [0, 1], guided=True):
        for t in (T, 400.0, 300.0):  # the third step is not interpolated: nothing stored for it
            unet(torch.cat([xa, xb, xa, xb]), t, torch.cat([uncond, uncond, ca, cb]))
    assert store.nbytes == capture_bytes(shapes, steps=2, keyframes=2, element_bytes=4)
    assert store.keyframes == {0, 1}
    store.drop(0)
    assert store.keyframes == {1} and store.nbytes == capture_bytes(shapes, steps=2, keyframes=1, element_bytes=4)


def test_settings_mistakes_are_user_errors():
    for bad in (dict(variant="middle"), dict(fraction=1.5), dict(kinds=("pixels",)), dict(max_bytes=0)):
        with pytest.raises(UserError):
            AttentionInterpolation(**bad).validate()


@torch.no_grad()
def test_an_in_between_without_its_keyframes_captured_says_so(unet):
    x, context = inputs(unet, 0)
    store = store_for(unet)
    with interpolating(unet, store, [FrameSpec(0, 1, 0.5)], guided=False), pytest.raises(KeyError, match="capture"):
        unet(x, T, context)
    with capturing(unet, store, [0], guided=False), pytest.raises(RuntimeError, match="already set"):  # noqa: SIM117
        with capturing(unet, store, [0], guided=False):
            pass
