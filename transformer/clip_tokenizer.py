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
import re
import unicodedata
from collections.abc import Collection, Iterable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `python -m sd tokenize --help` reads CONTEXT_LENGTH without torch
    import torch

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
OPEN_CLIP_PAD_TOKEN = "!"  # id 0: OpenCLIP pads with zeros, so SD 2.x does (its diffusers tokenizer says "!")
END_OF_WORD = "</w>"
NAMED_TOKENS = ("bos_token", "eos_token", "unk_token", "pad_token")  # the order they are registered in
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
        self.special_tokens = (bos_token, eos_token, unk_token, pad_token)  # in NAMED_TOKENS order
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

    @property
    def named_tokens(self) -> dict[str, str]:
        """{"bos_token": ..., "eos_token": ..., "unk_token": ..., "pad_token": ...}: the special tokens by the
        names transformers' tokenizer configs give them."""
        return dict(zip(NAMED_TOKENS, self.special_tokens, strict=True))

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_bpe_gz(cls, path: str | Path, pad_token: str = EOS_TOKEN) -> CLIPTokenizer:
        """Build CLIP's vocabulary from OpenAI's merges file (bpe_simple_vocab_16e6.txt.gz, shipped in data/:
        sd.paths.CLIP_BPE_PATH), exactly as OpenAI's `SimpleTokenizer`.

        Vocabulary order: the 256 byte symbols, the same with "</w>", one entry per merge (the
        joined pair), then <|startoftext|> (49406) and <|endoftext|> (49407). `OPEN_CLIP_PAD_TOKEN`
        pads as SD 2.x does. Files in transformers' and diffusers' layouts: sd/loading/tokenizer_files.py.
        """
        with gzip.open(path, "rt", encoding="utf-8") as file:
            lines = file.read().split("\n")
        merges = [tuple(line.split()) for line in lines[1 : NUM_CLIP_MERGES + 1]]  # line 0: version header
        symbols = list(bytes_to_unicode().values())
        vocab = [*symbols, *(s + END_OF_WORD for s in symbols), *("".join(m) for m in merges)]
        vocab += [BOS_TOKEN, EOS_TOKEN]
        return cls({token: i for i, token in enumerate(vocab)}, merges, pad_token=pad_token)

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
        import torch  # here, not above: tokenizing text alone (encode, decode) needs no torch

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
