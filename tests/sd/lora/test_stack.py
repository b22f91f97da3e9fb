"""Applying LoRAs: runtime and merged agree, scales and stacking add up, unmerging restores every bit."""

import pytest
import torch

from sd.errors import UserError
from sd.lora.adapter import Lora
from sd.lora.stack import LoraStack, applied_loras
from tests.sd.lora.random_lora import random_lora
from tests.sd.lora.test_formats import KINDS
from tests.tiny_checkpoint import tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint():
    return tiny_checkpoint()


def outputs(checkpoint) -> tuple[torch.Tensor, torch.Tensor]:
    """(text encoder hidden states, UNet prediction) for fixed inputs."""
    gen = torch.Generator().manual_seed(0)
    ids = checkpoint.tokenizer(["a red circle on a blue background"])  # (1, 77)
    with torch.no_grad():
        context = checkpoint.text_encoder(ids)  # (1, 77, 64)
        eps = checkpoint.unet(torch.randn(1, 4, 8, 8, generator=gen), 500, context)  # (1, 4, 8, 8)
    return context, eps


def close(a, b, rtol=1e-5):
    return all((x - y).abs().max() <= rtol * y.abs().max() for x, y in zip(a, b, strict=True))


def state(checkpoint) -> dict[str, torch.Tensor]:
    parts = ("text_encoder", "unet")
    return {f"{p}.{k}": v.clone() for p in parts for k, v in getattr(checkpoint, p).state_dict().items()}


def test_runtime_merged_and_unmerged(checkpoint):
    base_state, base = state(checkpoint), outputs(checkpoint)
    lora = Lora("a", random_lora(checkpoint, seed=1, kinds=KINDS))
    stack = LoraStack(checkpoint)
    stack.add(lora, 0.7)
    runtime = outputs(checkpoint)
    assert not close(runtime, base, rtol=1e-2)  # it acts on both the text encoder and the UNet
    assert all(torch.equal(v, base_state[k]) for k, v in state(checkpoint).items())  # runtime: no weight changes
    stack.merge()
    merged = outputs(checkpoint)
    assert close(merged, runtime)
    stack.unmerge()
    after = state(checkpoint)
    assert all(torch.equal(v, base_state[k]) for k, v in after.items())  # bit for bit
    assert all(torch.equal(x, y) for x, y in zip(outputs(checkpoint), runtime, strict=True))  # back to runtime
    stack.clear()
    assert all(torch.equal(x, y) for x, y in zip(outputs(checkpoint), base, strict=True))
    assert not any(module._forward_hooks for module in stack.modules.values())


def test_scales_and_stacking_add_up(checkpoint):
    base = outputs(checkpoint)
    a = Lora("a", random_lora(checkpoint, seed=1, kinds=KINDS))
    b = Lora("b", random_lora(checkpoint, seed=2, rank=2, alpha=8.0))
    stack = LoraStack(checkpoint)
    stack.add(a, 0.0)
    assert all(torch.equal(x, y) for x, y in zip(outputs(checkpoint), base, strict=True))  # scale 0 is no LoRA
    stack.set_scale("a", 0.5)
    stack.add(b, -1.0)
    both = outputs(checkpoint)
    stack.merge()
    # merged: W + 0.5 * (2/4) B_a A_a - 1.0 * (8/2) B_b A_b on every layer both adapt
    name = "unet.input_blocks.1.1.transformer_blocks.0.attn1.to_q"
    expected = stack._originals[name] + 0.5 * 0.5 * a.layers[name].delta_weight() - 4.0 * b.layers[name].delta_weight()
    assert torch.allclose(stack.modules[name].weight, expected, atol=1e-6)
    assert close(outputs(checkpoint), both)
    with pytest.raises(UserError, match="unmerge"):
        stack.set_scale("a", 1.0)
    stack.unmerge()
    stack.remove("b")
    stack.set_scale("a", 1.0)
    runtime_a = outputs(checkpoint)
    stack.clear()
    with applied_loras(checkpoint, [(a, 1.0)]) as merged_a:  # the context manager merges, then restores
        assert merged_a.merged
        assert close(outputs(checkpoint), runtime_a)
    assert all(torch.equal(x, y) for x, y in zip(outputs(checkpoint), base, strict=True))


def test_unknown_name_and_double_add(checkpoint):
    stack = LoraStack(checkpoint)
    lora = Lora("a", random_lora(checkpoint))
    stack.add(lora)
    with pytest.raises(UserError, match="already applied"):
        stack.add(lora)
    with pytest.raises(UserError, match="no LoRA named 'x'"):
        stack.remove("x")
    stack.clear()
