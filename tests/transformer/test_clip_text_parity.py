"""Our CLIP text encoder vs transformers' CLIPTextModel at SD 1.5's configuration (random weights, fp32)."""

import json

import pytest
import torch
from transformers import CLIPTextConfig as HFConfig
from transformers import CLIPTextModel as HFModel

from tests.metrics import relative_error
from tests.random_weights import randomize_
from transformer.clip_text import SD15_TEXT, CLIPTextModel

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


def token_batch() -> torch.Tensor:
    """Realistic ids: start token, words, end token, then end-token padding, at varied lengths."""
    gen = torch.Generator().manual_seed(2)
    ids = torch.full((3, 77), 49407)
    for row, length in enumerate((5, 30, 77)):
        ids[row, 0] = 49406
        ids[row, 1 : length - 1] = torch.randint(0, 49406, (length - 2,), generator=gen)
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
