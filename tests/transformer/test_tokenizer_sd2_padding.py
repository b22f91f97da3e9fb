"""SD 2.x pads prompts with "!" (id 0), as OpenCLIP's tokenizer pads with zeros; SD 1.x with <|endoftext|>."""

import torch
from transformers import CLIPTokenizer as HFTokenizer

from sd.loading.tokenizer_files import default_tokenizer, load_tokenizer_folder, save_tokenizer_folder
from transformer.clip_tokenizer import OPEN_CLIP_PAD_TOKEN

PROMPTS = ["a red circle", "", "an astronaut riding a horse, 4k photo", "word " * 100]


def test_sd2_padding_matches_transformers_configured_as_sd21(tmp_path):
    save_tokenizer_folder(default_tokenizer(), tmp_path)
    # SD 2.1's diffusers tokenizer folder: CLIP's vocabulary and merges, pad_token "!".
    ref = HFTokenizer.from_pretrained(tmp_path, pad_token="!")
    expected = ref(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    ours = default_tokenizer(OPEN_CLIP_PAD_TOKEN)
    assert torch.equal(ours(PROMPTS), expected)
    assert ours.pad_id == 0 and expected[0, 5:].eq(0).all() and expected[0, 4] == 49407
    # Only the padding differs from SD 1.x's ("!" appears in none of these prompts).
    assert torch.equal(torch.where(expected == 0, 49407, expected), default_tokenizer()(PROMPTS))


def test_sd2_tokenizer_folder_round_trip(tmp_path):
    save_tokenizer_folder(default_tokenizer(OPEN_CLIP_PAD_TOKEN), tmp_path)
    assert load_tokenizer_folder(tmp_path).pad_id == 0
    assert HFTokenizer.from_pretrained(tmp_path).pad_token_id == 0
