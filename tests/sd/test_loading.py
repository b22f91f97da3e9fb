"""Loading: formats, config inference, and one clear error for every kind of bad checkpoint."""

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.diffusers_folder import save_diffusers_folder
from sd.loading.infer_config import infer_text_config, infer_unet_config, infer_vae_config
from sd.loading.original import CONFIG_KEY, original_state_dict, save_original
from sd.loading.read import safetensors_metadata
from sd.paths import SHIPPED_MODELS
from sd.samplers.spacing import LEADING_SD15, SD15_TIMESTEPS, TimestepConfig
from tests.tiny_checkpoint import assert_same_weights, tiny_checkpoint, tiny_sd2_checkpoint
from transformer.clip_text import SD15_TEXT, SD21_TEXT, CLIPTextModel
from unet.config import SD15_UNET, SD21_UNET
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL
from vae.config import SD15_VAE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny():
    return tiny_checkpoint(seed=3)


@pytest.fixture(scope="module")
def tiny_sd2():
    return tiny_sd2_checkpoint(seed=4)


@pytest.fixture
def tiny_file(tiny, tmp_path) -> Path:
    return save_original(tiny, tmp_path / "tiny.safetensors")


def write(tmp_path: Path, state: dict, name: str = "model.safetensors", metadata: dict | None = None) -> Path:
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata=metadata)
    return path


def error_of(path) -> str:
    with pytest.raises(UserError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def test_configs_are_inferred_from_sd15_shapes():
    """Third-party SD 1.5 files carry no config: shapes alone must give SD 1.5's (meta tensors, no memory)."""
    with torch.device("meta"):
        assert infer_unet_config(UNetModel(SD15_UNET).state_dict()) == SD15_UNET
        assert infer_vae_config(AutoencoderKL(SD15_VAE).state_dict()) == SD15_VAE
        assert infer_text_config(CLIPTextModel(SD15_TEXT).state_dict()) == SD15_TEXT


def test_safetensors_load_is_memory_mapped_without_copies(tiny_file):
    checkpoint = load_checkpoint(tiny_file)
    weight = checkpoint.unet.input_blocks[0][0].weight
    # A tensor backed by the file's mmap is not resizable (torch cannot grow a mapped buffer).
    assert not weight.untyped_storage().resizable()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dtype_at_load_time(tiny_file, dtype):
    checkpoint = load_checkpoint(tiny_file, dtype=dtype)
    for module in (checkpoint.unet, checkpoint.vae, checkpoint.text_encoder):
        assert {p.dtype for p in module.parameters()} == {dtype}


def test_text_encoder_keys_without_text_model_prefix_and_ignored_buffers(tiny, tiny_file, tmp_path):
    """Old files store `cond_stage_model.transformer.embeddings...`; ldm files add schedule buffers."""
    from sd.loading.read import safetensors_metadata

    state = original_state_dict(tiny)
    old = {k.replace("transformer.text_model.", "transformer."): v for k, v in state.items()}
    old["cond_stage_model.transformer.embeddings.position_ids"] = torch.arange(77)[None]
    old["alphas_cumprod"] = tiny.schedule.alphas_cumprod
    old["model_ema.decay"] = torch.tensor(0.9999)
    loaded = load_checkpoint(write(tmp_path, old, metadata=safetensors_metadata(tiny_file)))
    assert_same_weights(loaded, tiny)


def test_missing_path():
    assert "no such file or folder" in error_of("/nonexistent/model.safetensors")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("just some text, not weights\n")
    assert "not a checkpoint" in error_of(path)


def test_truncated_safetensors(tiny_file):
    data = tiny_file.read_bytes()
    tiny_file.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in error_of(tiny_file)


def test_corrupt_safetensors_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((20).to_bytes(8, "little") + b"{not json at all...." + b"\0" * 64)
    assert "corrupt" in error_of(path)


def test_truncated_ckpt(tiny, tmp_path):
    path = save_original(tiny, tmp_path / "model.ckpt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in error_of(path)


def test_pickle_that_needs_arbitrary_objects_is_refused(tiny, tmp_path):
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": original_state_dict(tiny), "hparams": argparse.Namespace(lr=1e-4)}, path)
    message = error_of(path)
    assert "refused" in message and "arbitrary" in message and "safetensors" in message


def test_sdxl(tiny, tmp_path):
    state = original_state_dict(tiny)
    state["conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"] = torch.ones(4)
    assert "SDXL" in error_of(write(tmp_path, state))


def test_sd2_by_context_width(tmp_path):
    """A 1024-wide UNet context is SD 2.x even without OpenCLIP keys; this one then lacks its VAE."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in UNetModel(SD21_UNET).state_dict().items()}
    state = {f"model.diffusion_model.{k}": torch.empty(0) for k in shapes}
    for key in ("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", "input_blocks.0.0.weight"):
        state[f"model.diffusion_model.{key}"] = torch.zeros(shapes[key])
    assert "a full SD 2.x checkpoint has them" in error_of(write(tmp_path, state))


def test_sd2_single_file_round_trip(tiny_sd2, tmp_path):
    path = save_original(tiny_sd2, tmp_path / "sd2.safetensors")
    loaded = load_checkpoint(path)
    assert_same_weights(loaded, tiny_sd2)
    assert loaded.family == "SD 2.x" and loaded.prediction_type == "v_prediction"
    assert loaded.tokenizer.pad_token == "!" and loaded.tokenizer.pad_id == 0
    assert load_checkpoint(path, prediction_type="epsilon").prediction_type == "epsilon"  # the flag wins


@pytest.mark.parametrize("layout", ["single file", "diffusers folder"])
def test_the_loader_stores_the_family(tiny, tiny_sd2, tmp_path, layout):
    save = save_original if layout == "single file" else save_diffusers_folder
    suffix = ".safetensors" if layout == "single file" else ""
    families = {c.family: load_checkpoint(save(c, tmp_path / f"{c.name}{suffix}")).family for c in (tiny, tiny_sd2)}
    assert families == {"SD 1.x": "SD 1.x", "SD 2.x": "SD 2.x"}
    with pytest.raises(ValueError, match="family 'SD 3' is not one of"):
        replace(tiny, family="SD 3")


def test_sd2_file_without_configs_is_read_off_its_shapes(tiny_sd2, tmp_path):
    """A third-party SD 2.x file: OpenCLIP keys (fused in_proj, unused text_projection and logit_scale),
    no stored configs, no stored prediction type: v by default (SD 2.x 768), epsilon by flag (2.x-base 512)."""
    state = original_state_dict(tiny_sd2)
    assert "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight" in state
    state["cond_stage_model.model.text_projection"] = torch.zeros(128, 64)
    state["cond_stage_model.model.logit_scale"] = torch.tensor(4.6)
    path = write(tmp_path, state)
    loaded = load_checkpoint(path)
    assert loaded.unet.config == tiny_sd2.unet.config and loaded.text_encoder.config == tiny_sd2.text_encoder.config
    assert loaded.prediction_type == "v_prediction" and loaded.vae.config.resolution == 768
    base = load_checkpoint(path, prediction_type="epsilon")
    assert base.prediction_type == "epsilon" and base.vae.config.resolution == 512
    ids = tiny_sd2.tokenizer(["a red circle"])
    assert torch.equal(loaded.text_encoder(ids), tiny_sd2.text_encoder(ids))


@pytest.mark.parametrize("global_step, expected", [(875000, "epsilon"), (110000, "v_prediction")])
def test_sd2_ckpt_global_step_tells_base_from_v(tiny_sd2, tmp_path, global_step, expected):
    """diffusers' rule: SD 2.x-base's .ckpt stopped at step 875000; every other SD 2.x file is taken as v."""
    path = tmp_path / "sd2.ckpt"
    torch.save({"state_dict": original_state_dict(tiny_sd2), "global_step": global_step}, path)
    assert load_checkpoint(path).prediction_type == expected


def test_sd21_configs_are_inferred_from_shapes():
    """SD 2.1's original layout on the meta device: 24 OpenCLIP layers, the last one skipped; a file
    written from a diffusers folder (23 layers) skips none."""
    from sd.loading.open_clip_text import open_clip_to_transformers, transformers_to_open_clip

    with torch.device("meta"):
        assert infer_unet_config(UNetModel(SD21_UNET).state_dict(), "SD 2.x") == SD21_UNET
        open_clip = transformers_to_open_clip(CLIPTextModel(SD21_TEXT).state_dict())
        assert open_clip["transformer.resblocks.23.attn.in_proj_weight"].shape == (3072, 1024)
        assert infer_text_config(open_clip_to_transformers(open_clip), "SD 2.x") == SD21_TEXT
        diffusers_layers = CLIPTextModel(replace(SD21_TEXT, num_hidden_layers=23, skip_last_layers=0))
        inferred = infer_text_config(diffusers_layers.state_dict(), "SD 2.x")
        assert inferred.num_hidden_layers == 23 and inferred.skip_last_layers == 0


def test_inpainting(tiny, tmp_path):
    state = original_state_dict(tiny)
    w = state["model.diffusion_model.input_blocks.0.0.weight"]
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(w.shape[0], 9, 3, 3)
    assert "inpainting" in error_of(write(tmp_path, state))


def test_sd2_inpainting(tiny_sd2, tmp_path):
    state = original_state_dict(tiny_sd2)
    w = state["model.diffusion_model.input_blocks.0.0.weight"]
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(w.shape[0], 9, 3, 3)
    assert "an SD 2.x inpainting" in error_of(write(tmp_path, state))


def test_lora_and_standalone_vae(tiny, tmp_path):
    lora = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 4)}
    assert "LoRA" in error_of(write(tmp_path, lora, "lora.safetensors"))
    vae = {
        k.removeprefix("first_stage_model."): v
        for k, v in original_state_dict(tiny).items()
        if "first_stage" in k
    }
    assert "standalone VAE" in error_of(write(tmp_path, vae, "vae.safetensors"))


def test_missing_unexpected_and_misshapen_keys_are_named(tiny, tiny_file, tmp_path):
    from safetensors.torch import load_file

    from sd.loading.read import safetensors_metadata

    metadata = safetensors_metadata(tiny_file)  # keep the stored configs so only the keys are wrong
    base = dict(load_file(tiny_file))
    missing = dict(base)
    del missing["model.diffusion_model.out.2.bias"]
    unexpected = {**base, "model.diffusion_model.extra_layer.weight": torch.zeros(1)}
    misshapen = {**base, "first_stage_model.quant_conv.weight": torch.zeros(3, 3, 1, 1)}
    for name, state, expected in [
        ("missing", missing, "missing 1 keys: out.2.bias"),
        ("unexpected", unexpected, "1 unexpected keys: extra_layer.weight"),
        ("misshapen", misshapen, "shape mismatches (checkpoint != model): quant_conv.weight (3, 3, 1, 1)"),
    ]:
        path = tmp_path / f"{name}.safetensors"
        save_file(state, path, metadata=metadata)
        assert expected in error_of(path), name


def test_other_noise_schedule_is_refused(tiny, tmp_path):
    state = original_state_dict(tiny)
    state["alphas_cumprod"] = torch.linspace(0.999, 0.01, 1000)
    assert "noise schedule" in error_of(write(tmp_path, state))


def test_diffusers_folder_errors(tiny, tmp_path):
    folder = save_diffusers_folder(tiny, tmp_path / "pipe")
    assert load_checkpoint(folder).unet.config == tiny.unet.config

    def edit(relative: str, **changes) -> Path:
        copy = tmp_path / f"edited_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(folder, copy)
        path = copy / relative
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
        return copy

    assert "SDXL" in error_of(edit("model_index.json", _class_name="StableDiffusionXLPipeline"))
    assert "inpainting" in error_of(edit("unet/config.json", in_channels=9))
    assert "prediction_type 'sample' is not supported" in error_of(
        edit("scheduler/scheduler_config.json", prediction_type="sample")
    )
    v_folder = edit("scheduler/scheduler_config.json", prediction_type="v_prediction")
    assert load_checkpoint(v_folder).prediction_type == "v_prediction"
    assert load_checkpoint(v_folder, prediction_type="epsilon").prediction_type == "epsilon"
    (tmp_path / "empty").mkdir()
    assert "no model_index.json" in error_of(tmp_path / "empty")
    no_weights = edit("model_index.json")
    (no_weights / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    assert "no weights found" in error_of(no_weights)


@pytest.mark.parametrize("layout", ["text_model.", "without text_model. (transformers >= 5)"])
def test_diffusers_folder_text_encoder_keys_in_both_layouts(tiny, tmp_path, layout):
    """transformers >= 5 saves CLIPTextModel as `encoder.layers...`; older versions as `text_model.encoder...`,
    some with a `position_ids` buffer."""
    from safetensors.torch import load_file

    folder = save_diffusers_folder(tiny, tmp_path / "pipe")
    weights = folder / "text_encoder" / "model.safetensors"
    state = load_file(weights)
    assert all(k.startswith("text_model.") for k in state)
    if layout == "text_model.":
        state["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    else:
        state = {k.removeprefix("text_model."): v for k, v in state.items()}
    save_file(state, weights)
    assert_same_weights(load_checkpoint(folder), tiny)


def test_timestep_facts_of_each_kind_of_file(tiny, tiny_sd2, tmp_path):
    """A plain file samples like SD 1.5's published folder (no spacing named); our exports keep what they were
    made with: leading for a file from before the spacing was recorded (the shipped models), else what it says."""
    assert load_checkpoint(write(tmp_path, original_state_dict(tiny_sd2))).timestep_config == SD15_TIMESTEPS
    for name, path in SHIPPED_MODELS.items():
        if name.endswith("-distilled"):
            continue  # UNet-only students: they sample as their metadata says (sd/loading/student.py)
        assert CONFIG_KEY in safetensors_metadata(path), name
        assert load_checkpoint(path).timestep_config == LEADING_SD15, name
    trailing = replace(tiny, timestep_config=TimestepConfig("trailing", steps_offset=0, set_alpha_to_one=True))
    single_file = save_original(trailing, tmp_path / "trailing.safetensors")
    assert load_checkpoint(single_file).timestep_config == trailing.timestep_config
    stored = json.loads(safetensors_metadata(single_file)[CONFIG_KEY])
    del stored["timesteps"]  # as our exports were written before the spacing was recorded
    old = write(tmp_path, original_state_dict(tiny), "old.safetensors", {CONFIG_KEY: json.dumps(stored)})
    assert load_checkpoint(old).timestep_config == LEADING_SD15


def test_timestep_facts_of_a_diffusers_folder(tiny, tmp_path):
    """Read from scheduler_config.json, a missing key taking diffusers' default; written back the same way."""
    folder = save_diffusers_folder(tiny, tmp_path / "sd15")
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert "timestep_spacing" not in config and config["steps_offset"] == 1 and not config["set_alpha_to_one"]
    assert load_checkpoint(folder).timestep_config == SD15_TIMESTEPS == tiny.timestep_config
    trailing = replace(tiny, timestep_config=TimestepConfig("trailing", steps_offset=1, set_alpha_to_one=False))
    assert load_checkpoint(save_diffusers_folder(trailing, tmp_path / "t")).timestep_config == trailing.timestep_config
    path = tmp_path / "t" / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({"_class_name": "DDIMScheduler", "timestep_spacing": "linspace"}))
    assert load_checkpoint(tmp_path / "t").timestep_config == TimestepConfig("linspace", 0, True)
    path.write_text(json.dumps({"timestep_spacing": "karras"}))
    assert f"{path}: timestep spacing 'karras' is not supported" in error_of(tmp_path / "t")


def test_diffusers_folder_with_bin_weights(tiny, tmp_path):
    """Older folders ship pickled `.bin` files: read with weights_only=True."""
    from safetensors.torch import load_file

    folder = save_diffusers_folder(tiny, tmp_path / "pipe")
    for weights in folder.glob("*/*.safetensors"):
        stem = "pytorch_model" if weights.parent.name == "text_encoder" else weights.stem
        torch.save(load_file(weights), weights.with_name(f"{stem}.bin"))
        weights.unlink()
    loaded = load_checkpoint(folder)
    assert torch.equal(loaded.unet.out[2].weight, tiny.unet.out[2].weight)


def test_cli_prints_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"PK\x03\x04 this zip is cut short")
    for target, expected in [
        (tmp_path / "missing.safetensors", "no such file"),
        (bad, "truncated or corrupt"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "sd", "inspect", str(target)], capture_output=True, text=True, cwd=REPO
        )
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and expected in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_cli_inspect_and_convert(tiny, tiny_file, tmp_path):
    folder = tmp_path / "converted"
    run = [sys.executable, "-m", "sd"]
    result = subprocess.run(
        [*run, "convert", str(tiny_file), str(folder)], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    result = subprocess.run([*run, "inspect", str(folder)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    unet_params = sum(p.numel() for p in tiny.unet.parameters()) / 1e6
    assert "unet" in result.stdout and f"{unet_params:.2f}M params" in result.stdout
    assert "SD 1.x, predicts epsilon" in result.stdout


def test_cli_inspect_names_sd2_and_takes_the_flag(tiny_sd2, tmp_path):
    """(Without the flag this file is taken as v: test_sd2_file_without_configs_is_read_off_its_shapes.)"""
    from sd.loading.read import safetensors_metadata

    exported = save_original(tiny_sd2, tmp_path / "export.safetensors")
    state = {k: v for k, v in original_state_dict(tiny_sd2).items()}
    path = write(tmp_path, state, "sd2.safetensors")  # no stored configs or prediction type
    assert safetensors_metadata(path) == {} and safetensors_metadata(exported)
    command = [sys.executable, "-m", "sd", "inspect", str(path), "--prediction-type", "epsilon"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "sd2.safetensors: SD 2.x, predicts epsilon" in result.stdout and "pad id 0" in result.stdout
    assert "hidden_act=gelu" in result.stdout and "skip_last_layers=1" in result.stdout
