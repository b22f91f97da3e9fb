"""Our CLIP text encoder vs transformers' CLIPTextModel at SD 1.5's and SD 2.1's configurations (random
weights, fp32), and the SD 2.x single-file layout (OpenCLIP's names) against diffusers' converter."""

import gc
import json
from dataclasses import replace

import pytest
import torch
from transformers import CLIPTextConfig as HFConfig
from transformers import CLIPTextModel as HFModel

from sd.loading.checkpoint_types import SD2
from sd.loading.diffusers_text_encoder import text_config_from_diffusers, text_encoder_to_diffusers
from sd.loading.infer_config import infer_text_config
from sd.loading.open_clip_text import transformers_to_open_clip
from sd.loading.original import split_original
from tests.metrics import relative_error
from tests.open_clip_layout import open_clip_layout
from tests.random_weights import randomize_
from transformer.clip_text import SD15_TEXT, SD21_TEXT, CLIPTextModel

TOLERANCE = 1e-5  # max |ours - ref| / max |ref|


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    hf_config = HFConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
    )  # fmt: skip
    ref = randomize_(HFModel(hf_config), seed=1)
    ours = CLIPTextModel(SD15_TEXT).eval()
    # Files (SD single files, diffusers folders) store `text_model.*`, the names ours mirror;
    # transformers >= 5 drops that prefix in memory and adds it back when it reads a file.
    state = {
        (k if k.startswith("text_model.") else f"text_model.{k}"): v
        for k, v in ref.state_dict().items()
        if not k.endswith("position_ids")
    }
    ours.load_state_dict(state, strict=True)
    return ours, ref


# text_encoder/config.json of the published SD 2.1 diffusers folder (fields that matter), typed in by hand:
# OpenCLIP ViT-H/14's text tower without its unused last layer, 23 of 24.
SD21_DIFFUSERS_TEXT = {
    "architectures": ["CLIPTextModel"], "vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096,
    "num_hidden_layers": 23, "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu",
    "layer_norm_eps": 1e-05, "projection_dim": 512,
}  # fmt: skip


def token_batch(pad_id: int = 49407) -> torch.Tensor:
    """Realistic ids: start token, words, end token, then padding (SD 1.x: end tokens; SD 2.x: "!" = 0)."""
    gen = torch.Generator().manual_seed(2)
    ids = torch.full((3, 77), pad_id)
    for row, length in enumerate((5, 30, 77)):
        ids[row, 0] = 49406
        ids[row, 1 : length - 1] = torch.randint(0, 49406, (length - 2,), generator=gen)
        ids[row, length - 1] = 49407
    return ids


def test_last_hidden_state_and_pooled_match_transformers(models):
    ours, ref = models
    ids = token_batch()
    with torch.no_grad():
        hidden = ours(ids)
        expected = ref(ids)
        pooled = ours.pooled(ids, hidden)
    errors = {
        "last_hidden_state": relative_error(hidden, expected.last_hidden_state),
        "pooler_output": relative_error(pooled, expected.pooler_output),
    }
    print(errors)
    assert hidden.shape == (3, 77, 768)
    assert all(e <= TOLERANCE for e in errors.values()), errors


def test_clip_skip_matches_penultimate_layer_plus_final_norm(models):
    ours, ref = models
    ids = token_batch()
    with torch.no_grad():
        skipped = ours(ids, skip_last_layers=1)
        hidden_states = ref(ids, output_hidden_states=True).hidden_states
        expected = ref.final_layer_norm(hidden_states[-2])
    assert relative_error(skipped, expected) <= TOLERANCE
    assert relative_error(skipped, ours(ids)) > 1e-2  # really a different output


def test_parameter_count_is_sd15s():
    with torch.device("meta"):
        model = CLIPTextModel(SD15_TEXT)
    assert sum(p.numel() for p in model.parameters()) == 123_060_480


def test_original_names_via_diffusers_converter_load_in_transformers(tmp_path):
    """Our original-layout text keys, passed through diffusers' single-file converter and saved as a
    transformers folder, load in transformers' CLIPTextModel and give our outputs."""
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint
    from safetensors.torch import save_file

    from sd.loading.diffusers_text_encoder import text_config_to_diffusers
    from transformer.clip_text import TINY_TEXT

    ours = randomize_(CLIPTextModel(TINY_TEXT), seed=5)
    original = {f"cond_stage_model.transformer.{k}": v for k, v in ours.state_dict().items()}
    converted = convert_ldm_clip_checkpoint(original)
    assert converted.keys() == ours.state_dict().keys()
    save_file(converted, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(text_config_to_diffusers(TINY_TEXT)))
    ref = HFModel.from_pretrained(tmp_path).eval()
    ids = token_batch()
    with torch.no_grad():
        assert relative_error(ours(ids), ref(ids).last_hidden_state) <= TOLERANCE


def test_sd21_text_config_from_diffusers_folder():
    """diffusers' folder: 23 layers, nothing skipped; the single file's config: 24 layers, the last skipped."""
    expected = replace(SD21_TEXT, num_hidden_layers=23, skip_last_layers=0)
    assert text_config_from_diffusers(SD21_DIFFUSERS_TEXT) == expected


def test_open_clip_layout_helper_is_what_diffusers_converter_reads():
    """The test helper's OpenCLIP keys, through diffusers' `convert_open_clip_checkpoint`, are the
    transformers model's keys and tensors again (tiny tower, 3 layers + none unused)."""
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint

    config = HFConfig(**{**SD21_DIFFUSERS_TEXT, "hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 3,
                         "num_attention_heads": 2})  # fmt: skip
    ref = randomize_(HFModel(config), seed=4)
    layout = {f"cond_stage_model.model.{k}": v for k, v in open_clip_layout(ref.state_dict()).items()}
    converted = convert_open_clip_checkpoint(ref, layout)
    expected = {f"text_model.{k.removeprefix('text_model.')}": v for k, v in ref.state_dict().items()}
    expected = {k: v for k, v in expected.items() if not k.endswith("position_ids")}
    assert converted.keys() == expected.keys()
    assert all(torch.equal(converted[k], expected[k]) for k in expected)


@pytest.mark.slow
def test_sd21_text_encoder_single_file_and_folder_match_transformers():
    """SD 2.1 at full size: transformers' 23-layer model (diffusers' folder) is the reference. The single
    file holds 24 OpenCLIP layers; ours loads all of them by our rename, skips the last, and must give
    transformers' last hidden state. Our export writes exactly the file's keys, and the folder export
    exactly transformers' tensors."""
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint

    torch.manual_seed(0)
    ref = randomize_(HFModel(HFConfig(**SD21_DIFFUSERS_TEXT)), seed=6)
    layout = open_clip_layout(ref.state_dict(), unused_layer_seed=7)  # 24 layers, as ldm's files
    single_file = {f"cond_stage_model.model.{k}": v for k, v in layout.items()}
    # diffusers reads this file into the reference's own tensors (it drops layer 23 by name).
    converted = convert_open_clip_checkpoint(ref, single_file)
    assert all(torch.equal(converted[f"text_model.{k.removeprefix('text_model.')}"], v)
               for k, v in ref.state_dict().items() if not k.endswith("position_ids"))  # fmt: skip
    del converted

    state = split_original(single_file, SD2)["text_encoder"]
    config = infer_text_config(state, SD2)
    assert config == SD21_TEXT
    ours = CLIPTextModel(config).eval()
    ours.load_state_dict(state, strict=True, assign=True)
    ids = token_batch(pad_id=0)
    with torch.no_grad():
        error = relative_error(ours(ids), ref(ids).last_hidden_state)
    print(f"SD 2.1 text encoder (24 stored layers, last skipped) max relative error: {error:.2e}")
    assert error <= TOLERANCE

    exported = transformers_to_open_clip(ours.state_dict())
    assert exported.keys() == layout.keys() - {"text_projection", "logit_scale"}
    assert all(torch.equal(exported[k], layout[k]) for k in exported)
    folder_config, folder_state = text_encoder_to_diffusers(ours)
    assert folder_config == text_config_from_diffusers(SD21_DIFFUSERS_TEXT)
    assert all(torch.equal(folder_state[f"text_model.{k.removeprefix('text_model.')}"], v)
               for k, v in ref.state_dict().items() if not k.endswith("position_ids"))  # fmt: skip
    del ref, ours, layout, single_file, state, exported, folder_state
    gc.collect()


def test_sd21_parameter_count():
    """OpenCLIP ViT-H/14's text tower without its projection: transformers' 23 layers plus the unused 24th."""
    with torch.device("meta"):
        ours = sum(p.numel() for p in CLIPTextModel(SD21_TEXT).parameters())
        ref = sum(p.numel() for p in HFModel(HFConfig(**SD21_DIFFUSERS_TEXT)).parameters())
    one_layer = 4 * (1024 * 1024 + 1024) + 2 * 1024 * 4096 + 4096 + 1024 + 4 * 1024
    assert ours == ref + one_layer == 352_984_064
