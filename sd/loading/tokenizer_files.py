"""CLIP's tokenizer from files and back: the shipped merges file, and transformers' tokenizer folders.

A diffusers model's `tokenizer/` folder comes in two layouts, and both load:

    tokenizer.json (+ tokenizer_config.json)                              transformers >= 5 writes only this
    vocab.json, merges.txt (+ special_tokens_map.json, tokenizer_config.json)   older folders (SD 1.5, SD 2.1)

When both are there, tokenizer.json is read, as transformers does. Only its BPE model's vocab and merges and
its added tokens' flags are used: the clean-up and word splitting are CLIP's (transformer/clip_tokenizer.py),
here as in transformers' CLIPTokenizer. SD 1.x pads with <|endoftext|>; SD 2.x and SDXL's second tokenizer
pad with "!" (id 0). What we write is the older layout, which transformers 5 still reads.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from sd.errors import UserError
from sd.json_file import read_json
from sd.paths import CLIP_BPE_PATH
from transformer.clip_tokenizer import BOS_TOKEN, CONTEXT_LENGTH, EOS_TOKEN, NAMED_TOKENS, CLIPTokenizer

FOLDER_NEEDS = "a tokenizer folder needs tokenizer.json, or vocab.json and merges.txt"


@functools.lru_cache(maxsize=2)
def default_tokenizer(pad_token: str = EOS_TOKEN) -> CLIPTokenizer:
    """The CLIP tokenizer built from the shipped merges file, loaded once per process (per pad token:
    SD 1.x pads with <|endoftext|>, SD 2.x with "!")."""
    try:
        return CLIPTokenizer.from_bpe_gz(CLIP_BPE_PATH, pad_token=pad_token)
    except OSError as error:
        raise UserError(f"cannot read the CLIP merges file {CLIP_BPE_PATH}: {error}") from error


def load_tokenizer_folder(folder: str | Path) -> CLIPTokenizer:
    """A diffusers/transformers tokenizer folder, in either layout (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"tokenizer folder not found: {folder} ({FOLDER_NEEDS})")
    if (folder / "tokenizer.json").is_file():
        vocab, merges, added = _read_tokenizer_json(folder / "tokenizer.json")
        vocab_file = merges_file = folder / "tokenizer.json"
    else:
        vocab, merges, added = _read_json(folder / "vocab.json", required=True), _read_merges(folder), []
        vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    config = _read_json(folder / "tokenizer_config.json", required=False)
    tokens, normalized = _special_tokens_from_configs(folder, config, added)
    for key, token in tokens.items():
        if token not in vocab:
            raise UserError(f"{vocab_file}: has no entry for the {key} {token!r}")
    bad = next((m for m in merges if "".join(m) not in vocab), None)
    if bad is not None:
        raise UserError(f"{merges_file}: merge {' '.join(bad)!r} is not a token of the vocabulary")
    max_length = config.get("model_max_length")  # 77 in diffusers folders
    if not isinstance(max_length, int) or max_length > 10**6:  # transformers' "no limit" is 1e30
        max_length = CONTEXT_LENGTH
    return CLIPTokenizer(vocab, merges, **tokens, normalized_tokens=normalized, max_length=max_length)


def save_tokenizer_folder(tokenizer: CLIPTokenizer, folder: str | Path) -> None:
    """Write a tokenizer folder (vocab.json and merges.txt) that `load_tokenizer_folder` and transformers load
    identically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = dict(sorted(tokenizer.encoder.items(), key=lambda item: item[1]))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = "".join(f"{a} {b}\n" for a, b in tokenizer.merges)
    (folder / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")
    named = {
        key: {"content": token, "lstrip": False, "normalized": token in tokenizer.normalized_tokens,
              "rstrip": False, "single_word": False}
        for key, token in tokenizer.named_tokens.items()
    }  # fmt: skip
    (folder / "special_tokens_map.json").write_text(json.dumps(named, indent=2), encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": tokenizer.max_length,
        "clean_up_tokenization_spaces": False,  # decode() here does no clean-up either
        **{key: {"__type": "AddedToken", **value} for key, value in named.items()},
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def _special_tokens_from_configs(
    folder: Path, config: dict, added: list[dict]
) -> tuple[dict[str, str], set[str]]:
    """The named special tokens {"bos_token": ..., ...} and those matched after normalization.

    Resolved like transformers 5: special_tokens_map.json overrides tokenizer_config.json, unless
    the config has an `added_tokens_decoder` table (transformers 4.3x folders), which is then the
    only source of the "normalized" flags. Otherwise tokenizer.json's `added_tokens` (`added`), where
    they list a token, override its flag. Tokens are registered bos, eos, unk, pad: for a string used
    twice (eos = unk = pad), the last flag wins.
    """
    table = config.get("added_tokens_decoder")
    if isinstance(table, dict):  # special_tokens_map.json and tokenizer.json's added tokens are ignored
        flags = {e["content"]: _normalized_flag(e, False) for e in table.values() if isinstance(e, dict)}
        named = {key: config.get(key) for key in NAMED_TOKENS}
        from_map = dict.fromkeys(NAMED_TOKENS, False)
    else:
        flags = {e["content"]: _normalized_flag(e, False) for e in added}
        special_map = _read_json(folder / "special_tokens_map.json", required=False)
        named = {key: special_map.get(key, config.get(key)) for key in NAMED_TOKENS}
        from_map = {key: key in special_map for key in NAMED_TOKENS}
    tokens = {key: BOS_TOKEN if key == "bos_token" else EOS_TOKEN for key in NAMED_TOKENS}  # defaults
    normalized: dict[str, bool] = {}
    for key, value in named.items():
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            tokens[key] = value["content"]
            # special_tokens_map.json entries are read as special (default normalized=False)
            normalized[tokens[key]] = flags.get(tokens[key], _normalized_flag(value, from_map[key]))
        else:
            tokens[key] = value if isinstance(value, str) else tokens[key]
            normalized[tokens[key]] = flags.get(tokens[key], False)  # a plain string: matched verbatim
    return tokens, {token for token, flag in normalized.items() if flag}


def _normalized_flag(entry: dict, special: bool) -> bool:
    """An added-token entry's "normalized" flag; when absent, transformers uses `not special`."""
    return bool(entry.get("normalized", not entry.get("special", special)))


def _read_json(path: Path, required: bool) -> dict:
    """Read a JSON object; a missing optional file is {}; any problem is a one-line UserError."""
    if not path.is_file():
        if required:
            raise UserError(f"tokenizer file not found: {path} ({FOLDER_NEEDS})")
        return {}
    data = read_json(path, "no such file")
    if not isinstance(data, dict):
        raise UserError(f"tokenizer file {path} should hold a JSON object")
    return data


def _read_tokenizer_json(path: Path) -> tuple[dict[str, int], list[tuple[str, str]], list[dict]]:
    """(vocab, merges, added tokens) of a `tokenizers` file holding a BPE model.

    Merges are "left right" strings (tokenizers < 0.20) or [left, right] pairs (newer), in rank order.
    """
    data = _read_json(path, required=True)
    model = data.get("model")
    kind = model.get("type") if isinstance(model, dict) else None
    if kind != "BPE":
        raise UserError(f"{path}: holds a {kind or 'untyped'} model, not the BPE model a CLIP tokenizer needs")
    vocab, merges, added = model.get("vocab"), model.get("merges"), data.get("added_tokens") or []
    if not isinstance(vocab, dict) or not isinstance(merges, list):
        raise UserError(f"{path}: its BPE model has no vocab object or merges list")
    pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    bad = next((m for m in pairs if len(m) != 2), None)
    if bad is not None:
        raise UserError(f"{path}: merge {bad!r} is not a pair of tokens")
    if not all(isinstance(e, dict) and isinstance(e.get("content"), str) for e in added):
        raise UserError(f"{path}: added_tokens should be objects with a content string")
    return vocab, pairs, added


def _read_merges(folder: Path) -> list[tuple[str, str]]:
    """merges.txt: an optional "#version" header, then one "left right" pair per line, in rank order."""
    path = folder / "merges.txt"
    if not path.is_file():
        raise UserError(f"tokenizer file not found: {path} ({FOLDER_NEEDS})")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read tokenizer file {path}: {error}") from error
    merges = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line or line.startswith("#version"):
            continue
        pair = line.split(" ")
        if len(pair) != 2:
            raise UserError(f"{path}, line {number}: expected two tokens and one space, got {line!r}")
        merges.append((pair[0], pair[1]))
    return merges
