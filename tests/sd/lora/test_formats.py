"""Reading LoRA files: every layout gives the same internal form, and a file that does not fit says why."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from sd.errors import UserError
from sd.lora.adapter import load_lora
from sd.lora.formats import METADATA_KEY, read_lora_file
from sd.lora.spec import parse_lora_spec
from tests.sd.lora.random_lora import random_lora, write_diffusers, write_kohya
from tests.tiny_checkpoint import tiny_checkpoint

# Attention, feed-forward, the spatial transformers' 1x1-conv projections and 3x3 ResBlock convolutions.
KINDS = ("to_q", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out", "in_layers.2",
         "q_proj", "out_proj", "fc1")  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint():
    return tiny_checkpoint()


@pytest.fixture(scope="module")
def layers(checkpoint):
    layers = random_lora(checkpoint, kinds=KINDS, alpha=2.0)
    layers["unet.input_blocks.1.1.proj_in"].alpha = 3.0  # one exception to the common alpha
    return layers


@pytest.mark.parametrize("layout", ["diffusers", "kohya", "kohya-original-names"])
def test_every_layout_loads_to_the_same_layers(checkpoint, layers, layout, tmp_path):
    path = tmp_path / "lora.safetensors"
    if layout == "diffusers":
        write_diffusers(checkpoint, layers, path)
    else:
        write_kohya(checkpoint, layers, path, "original" if layout.endswith("names") else "diffusers")
    lora = load_lora(path, checkpoint)
    assert read_lora_file(path).format == layout.split("-")[0]
    assert lora.layers.keys() == layers.keys()
    assert any(name.startswith("text_encoder.") for name in lora.layers)
    for name, layer in layers.items():
        assert torch.equal(lora.layers[name].down, layer.down), name
        assert torch.equal(lora.layers[name].up, layer.up), name
        assert lora.layers[name].alpha == layer.alpha, name


def test_diffusers_text_encoder_keys_with_text_model_prefix_load(checkpoint, layers, tmp_path):
    """Files written with transformers < 5 name the text encoder's layers `text_encoder.text_model...`."""
    path = write_diffusers(checkpoint, layers, tmp_path / "new.safetensors")
    tensors = {k.replace("text_encoder.", "text_encoder.text_model."): v for k, v in load_file(path).items()}
    save_file(tensors, tmp_path / "old.safetensors")
    lora = load_lora(tmp_path / "old.safetensors", checkpoint)
    assert lora.layers.keys() == layers.keys()
    assert lora.layers["text_encoder.text_model.encoder.layers.0.self_attn.q_proj"].alpha == 4  # no metadata: r


def test_older_diffusers_layouts_load(checkpoint, tmp_path):
    """diffusers < 0.24: attention processors (`attn1.processor.to_q_lora.down.weight`) and the text encoder's
    `q_proj.lora_linear_layer.down.weight`; no alpha stored, so alpha = r."""
    layers = random_lora(checkpoint, alpha=4.0)
    path = write_diffusers(checkpoint, layers, tmp_path / "new.safetensors")

    def old(key: str) -> str:
        key = key.replace(".lora_A.weight", ".down.weight").replace(".lora_B.weight", ".up.weight")
        if key.startswith("unet."):
            module, role = key.rsplit(".", 2)[0], key.rsplit(".", 2)[1]
            parent, name = module.rsplit(".", 1) if not module.endswith("to_out.0") else (module[:-9], "to_out")
            return f"{parent}.processor.{name}_lora.{role}.weight"
        return key.replace(".down.weight", ".lora_linear_layer.down.weight").replace(
            ".up.weight", ".lora_linear_layer.up.weight")

    save_file({old(k): v for k, v in load_file(path).items()}, tmp_path / "old.safetensors")
    assert any(".processor.to_out_lora.up.weight" in k for k in load_file(tmp_path / "old.safetensors"))
    lora = load_lora(tmp_path / "old.safetensors", checkpoint)
    assert lora.layers.keys() == layers.keys()
    assert all(torch.equal(lora.layers[n].up, layer.up) for n, layer in layers.items())


def test_alpha_from_diffusers_metadata(checkpoint, layers, tmp_path):
    path = write_diffusers(checkpoint, layers, tmp_path / "lora.safetensors")
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()[METADATA_KEY])
    assert config["unet.r"] == 4 and config["unet.lora_alpha"] == 2.0
    assert config["unet.alpha_pattern"] == {"down_blocks.0.attentions.0.proj_in": 3.0}


def test_a_lora_for_another_model_names_the_first_mismatching_key(checkpoint, tmp_path):
    path = tmp_path / "sdxl.safetensors"
    key = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"
    save_file({f"{key}.lora_down.weight": torch.zeros(4, 768), f"{key}.lora_up.weight": torch.zeros(768, 4)}, path)
    with pytest.raises(UserError) as error:
        load_lora(path, checkpoint)
    message = str(error.value)
    assert f"{key}.lora_down.weight" in message
    assert "SDXL" in message and "first mismatching key" in message and "\n" not in message


def test_a_lora_of_the_wrong_width_names_the_key_and_shapes(checkpoint, tmp_path):
    path = tmp_path / "wide.safetensors"
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file({f"{key}.lora_down.weight": torch.zeros(4, 320), f"{key}.lora_up.weight": torch.zeros(320, 4)}, path)
    with pytest.raises(UserError, match=rf"{key}.lora_down.weight has A \(4, 320\).*needs A \(4, 64\)"):
        load_lora(path, checkpoint)


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("lora_unet_x.hada_w1_a", "LoHa"),
        ("unet.x.lora_magnitude_vector", "DoRA"),
        ("model.diffusion_model.input_blocks.0.0.weight", "not a LoRA weight"),
    ],
)
def test_other_adapters_and_checkpoints_are_refused_by_name(tmp_path, key, match):
    path = tmp_path / "other.safetensors"
    save_file({key: torch.zeros(2, 2)}, path)
    with pytest.raises(UserError, match=match):
        read_lora_file(path)


def test_half_a_layer_is_an_incomplete_file(tmp_path):
    path = tmp_path / "half.safetensors"
    save_file({"lora_unet_a.lora_down.weight": torch.zeros(4, 8)}, path)
    with pytest.raises(UserError, match="lora_unet_a.lora_down.weight has no matching up weight"):
        read_lora_file(path)


def test_lora_spec(tmp_path):
    path = tmp_path / "style:v2.safetensors"
    path.write_bytes(b"")
    assert parse_lora_spec(f"{path}:0.5").scale == 0.5
    assert parse_lora_spec(str(path)) == parse_lora_spec(f"{path}:1")
    with pytest.raises(UserError, match="no such file"):
        parse_lora_spec("missing.safetensors:0.5")
