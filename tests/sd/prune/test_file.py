"""A pruned checkpoint saves to safetensors, loads back strictly, and runs in the pipeline and CLI."""

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from sd.cli.main import main
from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.diffusers_folder import save_diffusers_folder
from sd.loading.original import PLAN_KEY, save_original
from sd.loading.read import safetensors_metadata
from sd.prune.surgery import param_count, prune_unet
from tests.sd.prune.conftest import EVERY_KIND


@pytest.fixture(scope="module")
def pruned_file(checkpoint, tmp_path_factory):
    pruned = replace(checkpoint, unet=prune_unet(checkpoint.unet, EVERY_KIND))
    return pruned, save_original(pruned, tmp_path_factory.mktemp("pruned") / "pruned.safetensors")


def test_round_trip_is_strict_and_exact(pruned_file):
    pruned, path = pruned_file
    assert PLAN_KEY in safetensors_metadata(path)
    loaded = load_checkpoint(path)
    assert loaded.unet.prune_plan == EVERY_KIND.normalized()
    assert param_count(loaded.unet) == param_count(pruned.unet)
    a, b = pruned.unet.state_dict(), loaded.unet.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The weights are the same bits; the outputs need not be: the loaded weights are memory-mapped at the file's
    # offsets (4-byte aligned, not 64), and oneDNN may pick another kernel for them, which sums in another order.
    # That moved one value in the last digit (2.2672e-01 vs 2.2673e-01) in one full-suite run; fp32 round-off bound:
    x, context = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 64)
    with torch.no_grad():
        expected, got = pruned.unet(x, 300, context), loaded.unet(x, 300, context)
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_a_tampered_pruned_file_is_refused(pruned_file, tmp_path):
    _, path = pruned_file
    tensors, metadata = load_file(path), safetensors_metadata(path)
    key = next(k for k in tensors if k.endswith("middle_block.0.in_layers.2.weight"))
    tensors[key] = tensors[key][:-1]  # one hidden channel short of what the plan says
    save_file(tensors, tmp_path / "bad.safetensors", metadata=metadata)
    with pytest.raises(UserError, match="shape mismatch"):
        load_checkpoint(tmp_path / "bad.safetensors")


@pytest.mark.parametrize(
    "plan, message",
    [("{not json", "not a prune plan"), ('{"drop": ["input_blocks.0.0"], "remove": {}}', "is not a prunable layer")],
)
def test_a_file_whose_plan_does_not_fit_is_a_user_error(pruned_file, tmp_path, plan, message):
    _, path = pruned_file
    save_file(load_file(path), tmp_path / "bad.safetensors", metadata={**safetensors_metadata(path), PLAN_KEY: plan})
    with pytest.raises(UserError, match=message) as error:
        load_checkpoint(tmp_path / "bad.safetensors")
    assert str(error.value).startswith(str(tmp_path / "bad.safetensors"))


def test_no_diffusers_layout_for_pruned_unets(pruned_file, tmp_path):
    with pytest.raises(UserError, match="no diffusers layout"):
        save_diffusers_folder(pruned_file[0], tmp_path / "folder")


def test_txt2img_cli_runs_a_pruned_file(pruned_file, tmp_path):
    out = tmp_path / "image.png"
    args = ["txt2img", "a red circle", "--checkpoint", str(pruned_file[1]), "--steps", "2", "--out", str(out)]
    assert main(args) == 0
    assert out.stat().st_size > 100
