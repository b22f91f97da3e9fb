"""bf16 weights computing in fp32: fp32 arithmetic on bf16-rounded weights, bf16 memory, LoRA-safe, auto mode."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import sd.bf16_compute as bf16_compute
from sd.bf16_compute import bf16_compute_of, compute_dtype, resolve_mode, set_bf16_compute
from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.checkpoint_types import Checkpoint
from sd.loading.original import save_original
from sd.loading.strict_load import strict_load
from sd.lora.adapter import Lora
from sd.lora.stack import LoraStack
from sd.pipeline import StableDiffusionPipeline
from tests.sd.lora.random_lora import random_lora
from tests.sd.lora.test_formats import KINDS
from tests.tiny_checkpoint import tiny_checkpoint

REPO = Path(__file__).resolve().parents[2]


def in_dtype(checkpoint: Checkpoint, dtype: torch.dtype, round_to_bf16: bool = False) -> Checkpoint:
    """A copy of `checkpoint` in `dtype`; `round_to_bf16` keeps fp32 but with bf16-rounded values."""
    def convert(module):
        state = module.state_dict()
        if round_to_bf16:
            state = {k: v.to(torch.bfloat16).float() if v.is_floating_point() else v for k, v in state.items()}
        return strict_load(lambda: type(module)(module.config), state, "test", dtype)

    parts = {p: convert(getattr(checkpoint, p)) for p in ("text_encoder", "vae", "unet")}
    return Checkpoint(checkpoint.tokenizer, **parts, schedule=checkpoint.schedule, name=checkpoint.name,
                      family=checkpoint.family)  # fmt: skip


@pytest.fixture(scope="module")
def fp32():
    return tiny_checkpoint()


def unet_output(unet, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 16, generator=gen)  # (B, 4, h, w)
    context = torch.randn(2, 77, unet.config.context_dim, generator=gen)  # (B, 77, C)
    with torch.no_grad():
        return unet(x.to(dtype), 500, context.to(dtype)).float()  # (B, 4, h, w)


def test_fp32_compute_is_fp32_on_rounded_weights_and_beats_native(fp32):
    native = in_dtype(fp32, torch.bfloat16).unet
    upcast = in_dtype(fp32, torch.bfloat16).unet
    assert set_bf16_compute(upcast, "fp32") == "fp32"
    reference, rounded = unet_output(fp32.unet), unet_output(in_dtype(fp32, torch.float32, True).unet)
    ours = unet_output(upcast)
    assert ours.dtype == torch.float32
    scale = reference.abs().max()
    assert (ours - rounded).abs().max() <= 1e-6 * scale  # the same arithmetic (0 here; 1e-6 allows threads)
    ours_error = (ours - reference).abs().max()
    native_error = (unet_output(native, torch.bfloat16) - reference).abs().max()
    assert ours_error < 0.6 * native_error  # measured 0.42x: native also rounds every activation to bf16


def test_pipeline_txt2img_matches_fp32_on_rounded_weights(fp32):
    options = dict(seed=3, steps=2, width=32, height=32, progress=False)
    rounded = StableDiffusionPipeline(in_dtype(fp32, torch.float32, True))
    pipe = StableDiffusionPipeline(in_dtype(fp32, torch.bfloat16), bf16_compute="fp32")
    assert (pipe.bf16_compute, pipe.dtype, rounded.bf16_compute) == ("fp32", torch.float32, None)
    image = torch.tensor(list(pipe.txt2img("a red circle", **options)[0].getdata()))
    expected = torch.tensor(list(rounded.txt2img("a red circle", **options)[0].getdata()))
    assert (image - expected).abs().max() <= 1  # text encoder, UNet and VAE all compute in fp32


def test_parameters_stay_bf16_and_state_dict_unchanged(fp32):
    unet = in_dtype(fp32, torch.bfloat16).unet
    before = {k: (v.data_ptr(), v.dtype) for k, v in unet.state_dict().items()}
    set_bf16_compute(unet, "fp32")
    unet_output(unet)
    assert {k: (v.data_ptr(), v.dtype) for k, v in unet.state_dict().items()} == before  # same tensors, bf16
    bytes_bf16 = sum(p.numel() * p.element_size() for p in unet.parameters())
    assert 2 * bytes_bf16 == sum(p.numel() * p.element_size() for p in fp32.unet.parameters())
    assert list(unet.state_dict()) == list(fp32.unet.state_dict())


def test_lora_merge_and_unmerge_under_fp32_compute(fp32):
    checkpoint = in_dtype(fp32, torch.bfloat16)
    StableDiffusionPipeline(checkpoint, bf16_compute="fp32")  # installs the hooks on every component
    state = {k: v.clone() for k, v in checkpoint.unet.state_dict().items()}
    base = unet_output(checkpoint.unet)
    stack = LoraStack(checkpoint)
    stack.add(Lora("a", random_lora(checkpoint, seed=1, kinds=KINDS)), 0.7)
    runtime = unet_output(checkpoint.unet)
    assert (runtime - base).abs().max() > 1e-2 * base.abs().max()  # the LoRA acts
    stack.merge()
    assert all(v.dtype == torch.bfloat16 for v in checkpoint.unet.state_dict().values())
    merged = unet_output(checkpoint.unet)
    assert (merged - runtime).abs().max() <= 2e-2 * runtime.abs().max()  # merged weights are rounded to bf16
    stack.unmerge()
    assert all(torch.equal(v, state[k]) for k, v in checkpoint.unet.state_dict().items())  # bit for bit
    assert torch.equal(unet_output(checkpoint.unet), runtime)
    stack.clear()
    assert torch.equal(unet_output(checkpoint.unet), base)
    assert bf16_compute_of(checkpoint.unet) == "fp32"


def test_mode_selection(fp32, monkeypatch):
    monkeypatch.setattr(bf16_compute, "cpu_has_bf16_matmul", lambda: False)
    assert resolve_mode("auto", "cpu") == "fp32"
    assert resolve_mode("auto", "cuda") == "native"
    assert resolve_mode("native", "cpu") == "native"
    monkeypatch.setattr(bf16_compute, "cpu_has_bf16_matmul", lambda: True)
    assert resolve_mode("auto", "cpu") == "native"
    assert resolve_mode("fp32", "cpu") == "fp32"
    with pytest.raises(UserError, match="unknown bf16 compute mode 'fast'"):
        resolve_mode("fast")

    monkeypatch.setattr(bf16_compute, "cpu_has_bf16_matmul", lambda: False)
    unet = in_dtype(fp32, torch.bfloat16).unet
    assert set_bf16_compute(unet, "auto") == "fp32" == bf16_compute_of(unet)
    assert compute_dtype(unet) == torch.float32
    assert set_bf16_compute(unet, "native") == "native" == bf16_compute_of(unet)  # forced: the hooks come off
    assert not any(m._forward_pre_hooks for m in unet.modules())
    assert compute_dtype(unet) == torch.bfloat16
    assert unet_output(unet, torch.bfloat16).isfinite().all()
    assert set_bf16_compute(fp32.unet, "fp32") is None  # nothing in bf16: nothing to do
    assert not any(m._forward_pre_hooks for m in fp32.unet.modules())


def test_bf16_file_stays_mapped_and_the_cli_records_the_mode(fp32, tmp_path):
    path = save_original(in_dtype(fp32, torch.bfloat16), tmp_path / "tiny-bf16.safetensors")
    checkpoint = load_checkpoint(path, "bf16")
    pipe = StableDiffusionPipeline(checkpoint, bf16_compute="fp32")
    pipe.txt2img("a red circle", steps=1, width=32, height=32, progress=False)
    weight = checkpoint.unet.input_blocks[0][0].weight
    assert weight.dtype == torch.bfloat16 and not weight.untyped_storage().resizable()  # still the file's mmap
    out = tmp_path / "x.png"
    options = ["--dtype", "bf16", "--bf16-compute", "fp32", "--steps", "1", "--width", "32", "--height", "32"]
    command = [sys.executable, "-m", "sd", "txt2img", "a red circle", "--checkpoint", str(path), "--out", str(out)]
    result = subprocess.run(command + options, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert Image.open(out).text["bf16_compute"] == "fp32" and Image.open(out).text["dtype"] == "bf16"


def test_training_reaches_the_bf16_weights():
    """With autograd on, each upcast is a fresh differentiable copy (the shared workspace is inference only)."""
    layer = torch.nn.Linear(4, 3).to(torch.bfloat16)
    set_bf16_compute(layer, "fp32")
    x = torch.randn(2, 4)
    y = layer(x)  # (2, 4) -> (2, 3), in fp32
    y.sum().backward()
    assert y.dtype == torch.float32 and layer.weight.grad.dtype == torch.bfloat16
    expected = x.sum(0).expand(3, 4).to(torch.bfloat16)  # d sum(W x + b) / dW = sum over the batch of x
    assert torch.equal(layer.weight.grad, expected)
