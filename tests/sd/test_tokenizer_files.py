"""Tokenizer folders as diffusers and transformers write them, read and written by sd/loading/tokenizer_files.py,
against transformers' CLIPTokenizer reading the same folder. The vocabulary comes from the gz file following
OpenAI's construction (tests/transformer/test_tokenizer.py), independently of our code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sd.errors import UserError
from sd.loading.tokenizer_files import default_tokenizer, load_tokenizer_folder, save_tokenizer_folder
from tests.transformer.test_tokenizer import PADDED, PROMPTS, _first_difference, openai_vocab_and_merges
from transformer.clip_tokenizer import CLIPTokenizer

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    return openai_vocab_and_merges()


@pytest.fixture(scope="module")
def ours() -> CLIPTokenizer:
    return default_tokenizer()


def test_save_and_load_round_trip(ours, tmp_path):
    save_tokenizer_folder(ours, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json",
    }
    again = load_tokenizer_folder(tmp_path)
    theirs = transformers.CLIPTokenizer.from_pretrained(tmp_path)
    prompts = PROMPTS[:300]
    expected = ours(prompts)
    assert torch.equal(again(prompts), expected)
    padded = theirs(prompts, **PADDED, return_tensors="pt")
    assert torch.equal(padded["input_ids"], expected)
    assert again.encoder == ours.encoder and again.merges == ours.merges and again.max_length == 77


def _write_sd_folder(
    folder: Path, vocab: dict[str, int], merges: list, tokens_map: dict | None, config: dict
) -> Path:
    """A tokenizer folder laid out like a diffusers model's `tokenizer/` (written without our code)."""
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")
    if tokens_map is not None:
        (folder / "special_tokens_map.json").write_text(json.dumps(tokens_map), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _added(content: str, normalized: bool, **extra) -> dict:
    flags = {"lstrip": False, "normalized": normalized, "rstrip": False, "single_word": False}
    return {"content": content, **flags, **extra}


# The layouts of real diffusers tokenizer folders: SD 1.x (special_tokens_map.json with
# normalized=True entries and a plain pad string), SD 2.x (pad "!"), and a newer transformers
# format with an `added_tokens_decoder` table (as in SDXL's tokenizer_2).
SD_FOLDERS = {
    "sd1": (
        {"bos_token": _added("<|startoftext|>", True), "eos_token": _added("<|endoftext|>", True),
         "pad_token": "<|endoftext|>", "unk_token": _added("<|endoftext|>", True)},
        {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "do_lower_case": True,
         "pad_token": "<|endoftext|>",
         "bos_token": {"__type": "AddedToken", **_added("<|startoftext|>", True)}},
        49407,
    ),
    "sd2": (
        {"bos_token": _added("<|startoftext|>", True), "eos_token": _added("<|endoftext|>", True),
         "pad_token": "!", "unk_token": _added("<|endoftext|>", True)},
        {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "pad_token": "<|endoftext|>"},
        0,
    ),
    "added_tokens_decoder": (
        {"pad_token": "<|endoftext|>"},  # ignored by transformers when the table below exists
        {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "bos_token": "<|startoftext|>",
         "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "!",
         "added_tokens_decoder": {
             "0": _added("!", False, special=True), "49406": _added("<|startoftext|>", True, special=True),
             "49407": _added("<|endoftext|>", False, special=True)}},
        0,
    ),
    "no_configs": (None, {}, 49407),
}


@pytest.mark.parametrize("layout", list(SD_FOLDERS))
def test_diffusers_folder_layouts_match_reference(layout, vocab_and_merges, tmp_path):
    tokens_map, config, pad_id = SD_FOLDERS[layout]
    vocab, merges = vocab_and_merges
    folder = _write_sd_folder(tmp_path / layout, vocab, merges, tokens_map, config)
    mine = load_tokenizer_folder(folder)
    theirs = transformers.CLIPTokenizer.from_pretrained(folder)
    assert mine.pad_id == theirs.pad_token_id == pad_id
    prompts = [
        "hello! wow!!", "<|StartOfText|> <|ENDOFTEXT|> <|endoftext|>", "<|startoftext|>!", "a\u00a0b!c",
        *PROMPTS[:200],
    ]
    expected = theirs(prompts, **PADDED)["input_ids"]
    assert mine(prompts).tolist() == expected, _first_difference(prompts, mine(prompts).tolist(), expected)
    # and what we save from it loads the same again, in transformers too
    save_tokenizer_folder(mine, tmp_path / "saved")
    resaved = transformers.CLIPTokenizer.from_pretrained(tmp_path / "saved")
    assert resaved(prompts, **PADDED)["input_ids"] == expected


def _write_tokenizer_json(folder: Path, vocab: dict[str, int], merges: list, added: list[dict], config: dict,
                          string_merges: bool = False) -> Path:
    """A `tokenizers` file (tokenizer.json) holding a BPE model, as transformers >= 5 saves a CLIP tokenizer
    (merges as "a b" strings: as tokenizers < 0.20 wrote them); written without our code."""
    folder.mkdir(exist_ok=True)
    model = {"type": "BPE", "dropout": None, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
             "end_of_word_suffix": "</w>", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
             "vocab": vocab, "merges": [f"{a} {b}" if string_merges else [a, b] for a, b in merges]}  # fmt: skip
    data = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": None, "post_processor": None, "decoder": None, "model": model}  # fmt: skip
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _written_by_transformers(folder: Path, vocab_and_merges) -> Path:
    """The folder transformers 5 writes for SD 1.5's tokenizer: tokenizer.json and tokenizer_config.json only."""
    vocab, merges = vocab_and_merges
    old = _write_sd_folder(folder.with_name("old"), vocab, merges, *SD_FOLDERS["sd1"][:2])
    transformers.CLIPTokenizer.from_pretrained(old).save_pretrained(folder)
    assert {p.name for p in folder.iterdir()} == {"tokenizer.json", "tokenizer_config.json"}
    return folder


def _by_hand(folder: Path, vocab_and_merges) -> Path:
    """SD 2.x's tokenizer in the new layout, merges as strings; the added tokens' flags decide: <|startoftext|>
    is matched after the clean-up (so "<|StartOfText|>" in a prompt is that token), "!" pads."""
    vocab, merges = vocab_and_merges
    added = [{"id": 0, **_added("!", False, special=True)},
             {"id": 49406, **_added("<|startoftext|>", True, special=True)},
             {"id": 49407, **_added("<|endoftext|>", False, special=True)}]  # fmt: skip
    config = {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "pad_token": "!",
              "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}  # fmt: skip
    return _write_tokenizer_json(folder, vocab, merges, added, config, string_merges=True)


SPECIAL_IDS = {"<|startoftext|>": 49406, "<|endoftext|>": 49407}


def _both_layouts(folder: Path, vocab_and_merges) -> Path:
    """tokenizer.json next to vocab.json and a merges.txt cut to half its merges: tokenizer.json is the one read."""
    vocab, merges = vocab_and_merges
    _write_sd_folder(folder, vocab, merges[: len(merges) // 2], *SD_FOLDERS["sd1"][:2])
    added = [{"id": i, **_added(t, False, special=True)} for t, i in SPECIAL_IDS.items()]
    config = json.loads((folder / "tokenizer_config.json").read_text())
    return _write_tokenizer_json(folder, vocab, merges, added, config)


TOKENIZER_JSON_FOLDERS = {"transformers5": _written_by_transformers, "by_hand_sd2": _by_hand, "both": _both_layouts}


@pytest.mark.parametrize("layout", list(TOKENIZER_JSON_FOLDERS))
def test_tokenizer_json_folders_match_reference(layout, vocab_and_merges, tmp_path):
    folder = TOKENIZER_JSON_FOLDERS[layout](tmp_path / layout, vocab_and_merges)
    mine = load_tokenizer_folder(folder)
    theirs = transformers.CLIPTokenizer.from_pretrained(folder)
    assert mine.pad_id == theirs.pad_token_id == (0 if layout == "by_hand_sd2" else 49407)
    assert mine.encoder == vocab_and_merges[0] and mine.merges == vocab_and_merges[1]
    prompts = ["hello! wow!!", "<|StartOfText|> <|ENDOFTEXT|> <|endoftext|>", "<|startoftext|>!", *PROMPTS[:200]]
    expected = theirs(prompts, **PADDED)["input_ids"]
    assert mine(prompts).tolist() == expected, _first_difference(prompts, mine(prompts).tolist(), expected)
    if layout == "by_hand_sd2":  # the normalized flag is read: a differently cased <|startoftext|> is the token
        assert expected[1][1] == 49406
    save_tokenizer_folder(mine, tmp_path / "saved")  # what we save from it loads the same again, in transformers too
    resaved = transformers.CLIPTokenizer.from_pretrained(tmp_path / "saved")
    assert resaved(prompts, **PADDED)["input_ids"] == expected


@pytest.mark.parametrize(
    "change, message",
    [({"model": {"type": "WordPiece", "vocab": {}}}, "holds a WordPiece model"),
     ({"model": {"type": "BPE", "vocab": {}, "merges": ["a b c"]}}, "is not a pair of tokens"),
     ({"added_tokens": ["<|endoftext|>"]}, "added_tokens should be objects")],
)  # fmt: skip
def test_a_tokenizer_json_that_is_not_clip_bpe_is_a_user_error(vocab_and_merges, tmp_path, change, message):
    folder = _written_by_transformers(tmp_path / "new", vocab_and_merges)
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    (folder / "tokenizer.json").write_text(json.dumps({**data, **change}), encoding="utf-8")
    with pytest.raises(UserError, match=message) as info:
        load_tokenizer_folder(folder)
    assert "tokenizer.json" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("missing", ["vocab.json", "merges.txt"])
def test_missing_tokenizer_file_is_a_user_error(ours, tmp_path, missing):
    save_tokenizer_folder(ours, tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(UserError, match=missing) as info:
        load_tokenizer_folder(tmp_path)
    assert "tokenizer.json, or vocab.json and merges.txt" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_tokenizer_file_is_a_user_error(ours, tmp_path):
    save_tokenizer_folder(ours, tmp_path)
    (tmp_path / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="vocab.json") as info:
        load_tokenizer_folder(tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="nowhere"):
        load_tokenizer_folder(tmp_path / "nowhere")


def test_default_tokenizer_is_loaded_once():
    assert default_tokenizer() is default_tokenizer()
