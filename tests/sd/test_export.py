"""Our checkpoints written in both layouts load back identically, and diffusers loads our folders."""

import pytest
import torch
from diffusers import AutoencoderKL as DiffusersVAE
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel as HFTextModel
from transformers import CLIPTokenizer as HFTokenizer

from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.diffusers_folder import save_diffusers_folder
from sd.loading.original import save_original
from tests.metrics import relative_error
from tests.tiny_checkpoint import assert_same_weights, tiny_checkpoint

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def checkpoint():
    return tiny_checkpoint(seed=7)


@pytest.mark.parametrize("name", ["model.safetensors", "model.ckpt", "diffusers_folder"])
def test_round_trip(checkpoint, tmp_path, name):
    path = tmp_path / name
    if name == "diffusers_folder":
        save_diffusers_folder(checkpoint, path)
    else:
        save_original(checkpoint, path)
    assert_same_weights(checkpoint, load_checkpoint(path))


def test_diffusers_and_transformers_load_the_exported_folder(checkpoint, tmp_path):
    folder = save_diffusers_folder(checkpoint, tmp_path / "export")
    unet = UNet2DConditionModel.from_pretrained(folder / "unet").eval()
    vae = DiffusersVAE.from_pretrained(folder / "vae").eval()
    text = HFTextModel.from_pretrained(folder / "text_encoder").eval()
    tokenizer = HFTokenizer.from_pretrained(folder / "tokenizer")

    prompt = "a large red circle in the top left on a blue background"
    ids = checkpoint.tokenizer([prompt])
    assert ids.tolist()[0] == tokenizer(prompt, padding="max_length", max_length=77)["input_ids"]
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=gen)
    image = torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1
    with torch.no_grad():
        context = checkpoint.text_encoder(ids)
        errors = {
            "text_encoder": relative_error(context, text(ids).last_hidden_state),
            "unet": relative_error(
                checkpoint.unet(latents, 500, context.expand(2, -1, -1)),
                unet(latents, 500, context.expand(2, -1, -1)).sample,
            ),
            "vae.decode": relative_error(checkpoint.vae.decode(latents), vae.decode(latents).sample),
            "vae.encode": relative_error(
                checkpoint.vae.encode(image).mean, vae.encode(image).latent_dist.mean
            ),
        }
    print(errors)
    assert all(e <= TOLERANCE for e in errors.values()), errors
    assert vae.config.scaling_factor == checkpoint.vae.config.scaling_factor


def test_stable_diffusion_pipeline_loads_the_exported_folder(checkpoint, tmp_path):
    folder = save_diffusers_folder(checkpoint, tmp_path / "export")
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None)
    assert isinstance(pipe.unet, UNet2DConditionModel)
    assert pipe.scheduler.config.steps_offset == 1
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"


def test_existing_output_is_not_overwritten(checkpoint, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"keep me")
    with pytest.raises(UserError, match="already exists"):
        save_original(checkpoint, path)
    assert path.read_bytes() == b"keep me"
    save_original(checkpoint, path, overwrite=True)
    assert_same_weights(checkpoint, load_checkpoint(path))


def test_failed_export_leaves_nothing_behind(checkpoint, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("sd.loading.diffusers_folder.save_file", broken)
    with pytest.raises(OSError):
        save_diffusers_folder(checkpoint, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []
