"""CLIP's tokenizer: byte-level byte-pair encoding (BPE), written out by hand.

A prompt becomes the token ids that CLIP's text encoder reads in four steps:

1. **Clean-up** (normalization): Unicode NFC, every whitespace run becomes one space, lower-case.
2. **Pre-tokenization**: split the text into "words": runs of letters, single digits, runs of
   punctuation/symbols, and the contractions 's 't 're 've 'm 'll 'd. Whitespace is dropped.
3. **Byte-level BPE** on each word: the word's UTF-8 bytes are written with 256 printable stand-in
   characters (`bytes_to_unicode`), so any text, emoji included, can be spelled with the 256 base
   symbols and nothing is ever "unknown". The last symbol gets the suffix "</w>" (end of word).
   Then the learned merges are applied: repeatedly join the adjacent pair that was learned
   earliest (lowest rank), until no pair of the word is in the merges list.
4. Look the resulting tokens up in the vocabulary and wrap them in <|startoftext|> ... <|endoftext|>;
   the text encoder gets exactly 77 ids, padded with the pad token.

The clean-up follows transformers' `CLIPTokenizer` (NFC, whitespace collapse, lower-case), which is
the tokenizer diffusers' Stable Diffusion pipelines use. OpenAI's original CLIP tokenizer
additionally ran `ftfy.fix_text` and `html.unescape` (so "&amp;" became "&"); we do not, and
neither does transformers. Special-token strings ("<|endoftext|>", and the pad token) typed in a
prompt are matched in the raw text, before the clean-up, as transformers does.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import unicodedata
from collections.abc import Collection, Iterable
from itertools import pairwise
from pathlib import Path

import torch

from sd.errors import UserError
from sd.paths import CLIP_BPE_PATH

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
OPEN_CLIP_PAD_TOKEN = "!"  # id 0: OpenCLIP pads with zeros, so SD 2.x does (its diffusers tokenizer says "!")
END_OF_WORD = "</w>"
CONTEXT_LENGTH = 77  # CLIP's text encoder has 77 positions
# CLIP keeps the first 48894 merges of the file: 256 byte symbols, the same 256 with "</w>", one
# token per merge and the 2 special tokens make its 49408-entry vocabulary.
NUM_CLIP_MERGES = 49152 - 256 - 2

# Unicode's White_Space property: what transformers' regex `\s` means. Python's str.isspace() and
# re's `\s` also count the separators \x1c-\x1f as space, which CLIP keeps as symbols.
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_RUN = re.compile("[" + "".join(re.escape(c) for c in sorted(WHITESPACE)) + "]+")
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Map each byte 0..255 to a printable character, so BPE can work on strings of "bytes".

    Printable Latin-1 bytes stand for themselves; the others (control bytes, space, ...) are
    shifted to code points 256+ (the space byte 0x20 becomes "Ġ"). This is GPT-2's/CLIP's table.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table  # insertion order (printable bytes first) is the order of the vocabulary's first 256 ids


def normalize(text: str) -> str:
    """transformers' CLIP clean-up: NFC, collapse whitespace runs to one space, lower-case."""
    text = unicodedata.normalize("NFC", text)
    text = _WHITESPACE_RUN.sub(" ", text)
    # Lower-case character by character, as the reference does: Python's str.lower() alone would
    # turn a word-final capital sigma into "ς" (its one context-dependent rule); CLIP gets "σ".
    return text.replace("\u03a3", "\u03c3").lower()


@functools.lru_cache(maxsize=4096)
def _char_kind(ch: str) -> str:
    """'L' letter, 'N' number, ' ' whitespace, 'P' anything else (punctuation, symbols, marks, ...).

    Categories come from Python's `unicodedata` (Unicode 14 on Python 3.11); the reference's tables
    are newer, so a character assigned later (e.g. U+1C89, Unicode 16) can be split differently.
    """
    if ch in WHITESPACE:
        return " "
    major = unicodedata.category(ch)[0]
    return major if major in "LN" else "P"


def pre_tokenize(text: str) -> list[str]:
    """Split normalized text into words, like CLIP's regex scanned left to right.

    The regex (first alternative that matches at a position wins):
        <|startoftext|> | <|endoftext|> | 's|'t|'re|'ve|'m|'ll|'d | letters+ | one digit | other+
    Whitespace matches nothing and is dropped. A special-token string that reaches this point
    (e.g. "<|ENDOFTEXT|>" lower-cased) is split again by the byte-level step's GPT-2 regex into
    "<|", "endoftext", "|>", so it is emitted as those three words.
    """
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        kind = _char_kind(text[i])
        if kind == " ":
            i += 1
            continue
        special = next((s for s in (BOS_TOKEN, EOS_TOKEN) if text.startswith(s, i)), None)
        if special is not None:
            words += ["<|", special[2:-2], "|>"]
            i += len(special)
            continue
        contraction = next((c for c in CONTRACTIONS if text.startswith(c, i)), None)
        if contraction is not None:
            words.append(contraction)
            i += len(contraction)
            continue
        end = i + 1
        if kind != "N":  # digits are one word each; letters and "other" characters come in runs
            while end < n and _char_kind(text[end]) == kind:
                end += 1
        words.append(text[i:end])
        i = end
    return words


def split_on_tokens(text: str, tokens: Collection[str]) -> list[tuple[str, bool]]:
    """Cut `text` at every occurrence of one of `tokens` (leftmost, then longest, match first).

    Returns [(piece, is_token)], in order; pieces between matches are kept, empty ones dropped.
    """
    pieces: list[tuple[str, bool]] = []
    start = 0
    while tokens:
        found = [(text.find(t, start), -len(t), t) for t in tokens]
        found = [f for f in found if f[0] >= 0]
        if not found:
            break
        at, _, token = min(found)
        if at > start:
            pieces.append((text[start:at], False))
        pieces.append((token, True))
        start = at + len(token)
    if start < len(text):
        pieces.append((text[start:], False))
    return pieces


class CLIPTokenizer:
    """Text -> CLIP token ids, identical to transformers' `CLIPTokenizer` (see the module docstring).

    vocab: token string -> id (49408 entries for CLIP); merges: pairs in rank order (earliest first).
    The four named special tokens are matched verbatim in raw prompts; those listed in
    `normalized_tokens` are matched in the cleaned-up text instead (some diffusers folders mark
    <|startoftext|> "normalized", so "<|StartOfText|>" in a prompt becomes that token).
    """

    def __init__(
        self,
        vocab: dict[str, int],
        merges: Iterable[tuple[str, str]],
        *,
        bos_token: str = BOS_TOKEN,
        eos_token: str = EOS_TOKEN,
        unk_token: str = EOS_TOKEN,
        pad_token: str = EOS_TOKEN,
        normalized_tokens: Collection[str] = (),
        max_length: int = CONTEXT_LENGTH,
    ) -> None:
        self.encoder = dict(vocab)
        self.decoder = {i: t for t, i in self.encoder.items()}
        self.merges = [tuple(m) for m in merges]
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.bos_token, self.eos_token = bos_token, eos_token
        self.unk_token, self.pad_token = unk_token, pad_token
        self.special_tokens = (bos_token, eos_token, unk_token, pad_token)  # in _NAMED_TOKENS order
        for token in self.special_tokens:
            if token not in self.encoder:
                raise ValueError(f"special token {token!r} is not in the vocabulary")
        self.normalized_tokens = frozenset(t for t in normalized_tokens if t in self.special_tokens)
        self._raw_tokens = frozenset(self.special_tokens) - self.normalized_tokens
        self.special_ids = frozenset(self.encoder[t] for t in self.special_tokens)
        self.bos_id, self.eos_id = self.encoder[bos_token], self.encoder[eos_token]
        self.pad_id = self.encoder[pad_token]
        self.max_length = max_length
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self._cache: dict[str, list[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_bpe_gz(cls, path: str | Path = CLIP_BPE_PATH, pad_token: str = EOS_TOKEN) -> CLIPTokenizer:
        """Build CLIP's vocabulary from OpenAI's merges file, exactly as OpenAI's `SimpleTokenizer`.

        Vocabulary order: the 256 byte symbols, the same with "</w>", one entry per merge (the
        joined pair), then <|startoftext|> (49406) and <|endoftext|> (49407). `OPEN_CLIP_PAD_TOKEN`
        pads as SD 2.x does.
        """
        try:
            with gzip.open(path, "rt", encoding="utf-8") as file:
                lines = file.read().split("\n")
        except OSError as error:
            raise UserError(f"cannot read the CLIP merges file {path}: {error}") from error
        merges = [tuple(line.split()) for line in lines[1 : NUM_CLIP_MERGES + 1]]  # line 0: version header
        symbols = list(bytes_to_unicode().values())
        vocab = [*symbols, *(s + END_OF_WORD for s in symbols), *("".join(m) for m in merges)]
        vocab += [BOS_TOKEN, EOS_TOKEN]
        return cls({token: i for i, token in enumerate(vocab)}, merges, pad_token=pad_token)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> CLIPTokenizer:
        """Load a diffusers/transformers tokenizer folder, in either layout:

            tokenizer.json (+ tokenizer_config.json)        transformers >= 5 writes only this
            vocab.json, merges.txt (+ the two configs)      older folders (SD 1.5's, SD 2.1's)

        When both are there, tokenizer.json is read, as transformers does. Only its BPE model's vocab and
        merges and its added tokens' flags are used: the clean-up and word splitting are CLIP's, here as
        in transformers' CLIPTokenizer. SD 1.x pads with <|endoftext|>; SD 2.x and SDXL's second tokenizer
        pad with "!" (id 0).
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"tokenizer folder not found: {folder} ({_FOLDER_NEEDS})")
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
        return cls(vocab, merges, **tokens, normalized_tokens=normalized, max_length=max_length)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write a tokenizer folder that both `from_pretrained` here and transformers load identically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocab = dict(sorted(self.encoder.items(), key=lambda item: item[1]))
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        merges = "".join(f"{a} {b}\n" for a, b in self.merges)
        (folder / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")
        named = {key: self._added_token_json(token) for key, token in self._named_tokens().items()}
        (folder / "special_tokens_map.json").write_text(json.dumps(named, indent=2), encoding="utf-8")
        config = {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": self.max_length,
            "clean_up_tokenization_spaces": False,  # decode() here does no clean-up either
            **{key: {"__type": "AddedToken", **value} for key, value in named.items()},
        }
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    def _named_tokens(self) -> dict[str, str]:
        return dict(zip(_NAMED_TOKENS, self.special_tokens, strict=True))

    def _added_token_json(self, token: str) -> dict[str, object]:
        flag = token in self.normalized_tokens
        return {"content": token, "lstrip": False, "normalized": flag, "rstrip": False, "single_word": False}

    # ---------------------------------------------------------------------------------- encoding
    def bpe(self, word: str) -> list[str]:
        """Byte-level BPE of one pre-tokenized word (a str), e.g. "riding" -> ["riding</w>"]."""
        if word in self._cache:
            return self._cache[word]
        symbols = [self.byte_encoder[b] for b in word.encode("utf-8")]
        symbols[-1] += END_OF_WORD
        while len(symbols) > 1:
            # The adjacent pair learned earliest; stop when no adjacent pair is a known merge.
            pair = min(pairwise(symbols), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(symbols):  # join every occurrence of the pair, left to right
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        self._cache[word] = symbols
        return symbols

    def tokenize(self, text: str) -> list[str]:
        """BPE tokens of `text`, without <|startoftext|>/<|endoftext|> around it (not truncated)."""
        tokens: list[str] = []
        for raw, is_token in split_on_tokens(text, self._raw_tokens):
            if is_token:
                tokens.append(raw)
                continue
            for piece, is_token in split_on_tokens(normalize(raw), self.normalized_tokens):
                if is_token:
                    tokens.append(piece)
                    continue
                for word in pre_tokenize(piece):
                    tokens += self.bpe(word)
        return tokens

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """[bos, ids..., eos], the ids truncated so the whole list has at most `max_length` entries."""
        max_length = self.max_length if max_length is None else max_length
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 (bos and eos), got {max_length}")
        ids = [self.encoder[t] for t in self.tokenize(text)][: max_length - 2]
        return [self.bos_id, *ids, self.eos_id]

    def __call__(self, texts: str | list[str], max_length: int | None = None) -> torch.Tensor:
        """Prompts -> (B, max_length) int64 ids padded with the pad id: the text encoder's input."""
        max_length = self.max_length if max_length is None else max_length
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = torch.full((len(texts), max_length), self.pad_id, dtype=torch.long)  # (B, 77)
        for row, text in enumerate(texts):
            ids = self.encode(text, max_length)
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Ids -> text: join the tokens' bytes, each "</w>" becomes a space (text comes back lower-cased)."""
        ids = [int(i) for i in ids]
        tokens = [self.decoder[i] for i in ids if not (skip_special_tokens and i in self.special_ids)]
        data = bytearray()
        for token in tokens:
            if all(c in self.byte_decoder for c in token):
                data += bytes(self.byte_decoder[c] for c in token)
            else:  # e.g. an added token spelled with characters outside the byte table
                data += token.encode("utf-8")
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ").strip()


_NAMED_TOKENS = ("bos_token", "eos_token", "unk_token", "pad_token")
_FOLDER_NEEDS = "a tokenizer folder needs tokenizer.json, or vocab.json and merges.txt"


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
        named = {key: config.get(key) for key in _NAMED_TOKENS}
        from_map = dict.fromkeys(_NAMED_TOKENS, False)
    else:
        flags = {e["content"]: _normalized_flag(e, False) for e in added}
        special_map = _read_json(folder / "special_tokens_map.json", required=False)
        named = {key: special_map.get(key, config.get(key)) for key in _NAMED_TOKENS}
        from_map = {key: key in special_map for key in _NAMED_TOKENS}
    tokens = {key: BOS_TOKEN if key == "bos_token" else EOS_TOKEN for key in _NAMED_TOKENS}  # defaults
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
            raise UserError(f"tokenizer file not found: {path} ({_FOLDER_NEEDS})")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read tokenizer file {path}: {error}".replace("\n", " ")) from error
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
        raise UserError(f"tokenizer file not found: {path} ({_FOLDER_NEEDS})")
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


@functools.lru_cache(maxsize=2)
def default_tokenizer(pad_token: str = EOS_TOKEN) -> CLIPTokenizer:
    """The CLIP tokenizer built from the shipped merges file, loaded once per process (per pad token:
    SD 1.x pads with <|endoftext|>, SD 2.x with "!")."""
    return CLIPTokenizer.from_bpe_gz(pad_token=pad_token)
