"""Our hand-written CLIP tokenizer against transformers' CLIPTokenizer (the reference).

The reference is built from the same merges file, with the vocabulary constructed here from the
gz file following OpenAI's `simple_tokenizer.py`, independently of `transformer.clip_tokenizer`.
"""

from __future__ import annotations

import gzip
import random
import time
import unicodedata

import pytest
import torch

from sd.loading.tokenizer_files import default_tokenizer
from sd.paths import CLIP_BPE_PATH
from transformer.clip_tokenizer import CLIPTokenizer

transformers = pytest.importorskip("transformers")

MAX_LENGTH = 77
PADDED = {"padding": "max_length", "max_length": MAX_LENGTH, "truncation": True}  # what SD pipelines ask for
NUM_RANDOM_PROMPTS = 1200

# ------------------------------------------------------------------------------ the reference


def openai_bytes_to_unicode() -> dict[int, str]:
    """OpenAI CLIP's table, copied in its original form (not our implementation)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def openai_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """OpenAI's `SimpleTokenizer.__init__`: vocab and merges from bpe_simple_vocab_16e6.txt.gz."""
    with gzip.open(CLIP_BPE_PATH) as file:
        merges_text = file.read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in merges_text[1 : 49152 - 256 - 2 + 1]]
    vocab = list(openai_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return dict(zip(vocab, range(len(vocab)), strict=True)), merges


@pytest.fixture(scope="module")
def vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    return openai_vocab_and_merges()


@pytest.fixture(scope="module")
def reference(vocab_and_merges):
    vocab, merges = vocab_and_merges
    return transformers.CLIPTokenizer(vocab=vocab, merges=merges)


@pytest.fixture(scope="module")
def ours() -> CLIPTokenizer:
    return default_tokenizer()


# -------------------------------------------------------------------------------- the prompts

PROMPT_WORDS = """
    a photo of an astronaut riding horse on mars cat dog portrait painting by greg rutkowski
    trending artstation highly detailed octane render unreal engine cinematic lighting bokeh
    sunset castle dragon forest misty mountains cyberpunk city neon rain anime girl watercolor
    oil canvas hyperrealistic volumetric fog ultra wide angle lens caterpillar smoking hookah
"""
WORDS = PROMPT_WORDS.split()
UNICODE_WORDS = [
    "café", "naïve", "façade", "Ångström", "straße", "STRASSE", "Ελληνικά", "ΣΟΦΙΑ", "ΟΔΟΣ", "Москва",
    "Ёлка", "日本語", "東京タワー", "中文字符", "한국어", "العربية", "עברית", "हिन्दी", "ไทย", "Ǆemal", "ǅ",
    "İstanbul", "ﬁne", "Ａｎｉｍｅ", "１２３", "½", "²", "٣٤", "Ⅻ", "ℌ", "µ", "Ωmega", "ĳ", "Ŋ",
]
COMBINING = ["e\u0301", "a\u0308\u0304", "Z\u0334\u0321a\u0336l\u0337g\u0338o", "n\u0303", "\u0301x"]
EMOJI = [
    "😀", "👍", "👍🏽", "👩\u200d💻", "👩\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇯🇵", "🇺🇸🇫🇷",
    "❤️", "✨", "🔥🔥", "🧑🏿\u200d🚀", "☕", "🐱‍👤",
]
PUNCT = list(",.!?;:-()[]{}<>/\\\"'*#@%&+=~`^|_$") + ["...", "—", "–", "«»", "“quoted”", "’", "¿¡", "…", "()"]
NUMBERS = ["0", "7", "42", "1920x1080", "8k", "4K", "50mm", "f/1.8", "3.14159", "1,000,000", "v1.5"]
HTML = ["&amp;", "&lt;b&gt;", "&#39;", "&quot;hi&quot;", "&nbsp;", "&#x27;", "<b>bold</b>", "</w>"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "\x0b", "\x0c", "\x85", "\u2028"]
ODD = ["\x1c", "\x1f", "\u200b", "\ufeff", "\u180e", "\x00", "\x7f", "\ue000"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re", "n't", "''s", "’s", "'x"]
SPECIALS = [
    "<|endoftext|>", "<|startoftext|>", "<|ENDOFTEXT|>", "<|EndOfText|>", "<|endoftext|",
    "<|startoftext|><|endoftext|>", "!<|ENDOFTEXT|>!", "<<|endoftext|>>",
]
FIXED_PROMPTS = [
    "", " ", "\n\t ", "a", "A", "!", "'", "'s", "1", "a photograph of an astronaut riding a horse",
    "IT'S A CAT'S LIFE", "don't stop", "Café au lait", unicodedata.normalize("NFD", "Café Ñandú"),
    "ΣΑΣ", "οδός ΟΔΟΣ", "İİİ", "i\u0307", "a\x1cb\x1dc\x1ed\x1fe", "tab\there", "nbsp\u00a0here",
    "ideographic\u3000space", "<|endoftext|>", "<|startoftext|>", "x<|endoftext|>y", "<|ENDOFTEXT|>",
    "hello!!!", "&amp; &lt;b&gt; &#39;", "👩\u200d👩\u200d👧\u200d👦 family", "🇫🇷🇩🇪", "word " * 100, "9" * 90,
    "supercalifragilisticexpialidocious" * 4,
]


def _random_bmp_char(rng: random.Random) -> str:
    """A random assigned, non-private, non-surrogate BMP character."""
    while True:
        ch = chr(rng.randrange(0x20, 0xFFFE))
        if unicodedata.category(ch) not in ("Cn", "Cs", "Co"):
            return ch


def _fragment(rng: random.Random) -> str:
    pool = rng.choices(
        [WORDS, UNICODE_WORDS, COMBINING, EMOJI, PUNCT, NUMBERS, HTML, ODD, CONTRACTIONS, SPECIALS, None],
        weights=[40, 8, 3, 4, 10, 6, 3, 2, 5, 2, 3],
    )[0]
    if pool is None:
        return "".join(_random_bmp_char(rng) for _ in range(rng.randint(1, 4)))
    word = rng.choice(pool)
    style = rng.random()
    if style < 0.1:
        word = word.upper()
    elif style < 0.2:
        word = word.capitalize()
    elif style < 0.25:
        word = unicodedata.normalize("NFD", word)
    return word


def make_prompts(n: int = NUM_RANDOM_PROMPTS, seed: int = 0) -> list[str]:
    """Deterministic, varied prompts; about one in ten is longer than 77 tokens."""
    rng = random.Random(seed)
    prompts = list(FIXED_PROMPTS)
    while len(prompts) < n:
        count = rng.randint(60, 150) if rng.random() < 0.1 else rng.randint(1, 25)
        parts = []
        for _ in range(count):
            parts.append(_fragment(rng))
            parts.append(rng.choice(SPACES) if rng.random() < 0.2 else (" " if rng.random() < 0.8 else ""))
        prompts.append("".join(parts))
    return prompts


PROMPTS = make_prompts()


def _first_difference(prompts: list[str], ours: list, theirs: list) -> str:
    for prompt, a, b in zip(prompts, ours, theirs, strict=True):
        if a != b:
            return f"{prompt!r}:\n ours   {a}\n theirs {b}"
    return ""


# ------------------------------------------------------------------------------------- tests


def test_prompt_set_is_varied():
    assert len(PROMPTS) >= 1000
    long_ones = sum(len(default_tokenizer().tokenize(p)) > MAX_LENGTH for p in PROMPTS)
    assert long_ones >= 50
    assert any("<|endoftext|>" in p for p in PROMPTS) and any("\u3000" in p for p in PROMPTS)


def test_vocabulary_matches_openai_construction(ours, vocab_and_merges):
    vocab, merges = vocab_and_merges
    assert ours.encoder == vocab
    assert ours.merges == merges
    assert ours.vocab_size == len(vocab) == 49408
    assert (ours.bos_id, ours.eos_id, ours.pad_id, ours.max_length) == (49406, 49407, 49407, 77)


def test_padded_ids_match_reference(ours, reference):
    theirs = reference(PROMPTS, **PADDED, return_tensors="pt")
    mine = ours(PROMPTS)
    assert mine.shape == (len(PROMPTS), MAX_LENGTH) and mine.dtype == torch.long
    assert torch.equal(mine, theirs["input_ids"]), _first_difference(
        PROMPTS, mine.tolist(), theirs["input_ids"].tolist()
    )


def test_unpadded_encode_matches_reference(ours, reference):
    theirs = reference(PROMPTS, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    mine = [ours.encode(p) for p in PROMPTS]
    assert mine == theirs, _first_difference(PROMPTS, mine, theirs)
    assert all(ids[0] == 49406 and ids[-1] == 49407 and len(ids) <= MAX_LENGTH for ids in mine)
    assert max(len(ids) for ids in mine) == MAX_LENGTH


def test_tokens_match_reference(ours, reference):
    mine = [ours.tokenize(p) for p in PROMPTS]
    theirs = [reference.tokenize(p) for p in PROMPTS]
    assert mine == theirs, _first_difference(PROMPTS, mine, theirs)


def test_every_whitespace_and_control_character_matches_reference(ours, reference):
    """Whitespace is Unicode's White_Space (not str.isspace: \\x1c-\\x1f are kept as symbols).

    Unassigned code points (Cn) are left out: the reference's Unicode tables are newer than
    Python 3.11's (14.0), so a letter added later (e.g. U+1C89, Unicode 16) is "other" here.
    """
    categories = ("Cc", "Cf", "Co", "Zs", "Zl", "Zp")
    chars = [chr(c) for c in range(0x3400) if chr(c).isspace() or unicodedata.category(chr(c)) in categories]
    chars += ["\u3000", "\ufeff", "\U000e0001"]
    prompts = [f"a{c}b {c}c" for c in chars]
    mine = [ours.tokenize(p) for p in prompts]
    theirs = [reference.tokenize(p) for p in prompts]
    assert mine == theirs, _first_difference(prompts, mine, theirs)
    assert ours.tokenize("a\x1cb") == ["a</w>", "Ĝ</w>", "b</w>"]  # \x1c is byte 0x1c


GOLDEN = {
    "a photograph of an astronaut riding a horse": [
        49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407,
    ],
    "a caterpillar smoking a hookah": [49406, 320, 27111, 9038, 320, 34214, 49407],
    "An Astronaut's HORSE, 1920x1080 -- café!": [
        49406, 550, 18376, 568, 4558, 267, 272, 280, 273, 271, 343, 272, 271, 279, 271, 2432, 15304, 256,
        49407,
    ],
    "ΣΑΣ 👍🏽 <|endoftext|> &amp;": [
        49406, 139, 225, 138, 109, 139, 481, 43722, 49407, 261, 6259, 282, 49407,
    ],
    "Don't\tstop\n\nbelieving": [49406, 847, 713, 1691, 19551, 49407],
}


@pytest.mark.parametrize("prompt", list(GOLDEN))
def test_golden_ids(ours, prompt):
    """Pinned ids (taken once from transformers 5.23), independent of the installed reference."""
    assert ours.encode(prompt) == GOLDEN[prompt]
    padded = ours(prompt)
    assert padded.shape == (1, MAX_LENGTH)
    assert padded[0, : len(GOLDEN[prompt])].tolist() == GOLDEN[prompt]
    assert (padded[0, len(GOLDEN[prompt]) :] == 49407).all()


def test_golden_tokens(ours):
    assert ours.tokenize("a caterpillar smoking a hookah") == [
        "a</w>", "caterpillar</w>", "smoking</w>", "a</w>", "hookah</w>",
    ]
    # A special-token string in other case is not the special token: it is split like punctuation.
    assert ours.tokenize("<|ENDOFTEXT|>") == ["<", "|</w>", "endof", "text</w>", "|", "></w>"]
    assert ours.tokenize("x<|endoftext|>") == ["x</w>", "<|endoftext|>"]


def test_truncation_keeps_bos_and_eos(ours):
    ids = ours.encode("cat " * 200)
    assert len(ids) == MAX_LENGTH and ids[0] == 49406 and ids[-1] == 49407 and set(ids[1:-1]) == {2368}
    assert ours.encode("cat " * 200, max_length=5) == [49406, 2368, 2368, 2368, 49407]
    batch = ours(["cat " * 200, ""], max_length=10)
    assert batch.tolist() == [[49406, *[2368] * 8, 49407], [49406, *[49407] * 9]]


def test_decode_round_trip_on_plain_text(ours):
    text = "a photograph of an astronaut riding a horse, 4k; trending on artstation!"
    ids = ours.encode(text)
    expected = "a photograph of an astronaut riding a horse , 4 k ; trending on artstation !"
    assert ours.decode(ids, skip_special_tokens=True) == expected
    assert ours.decode(ids) == f"<|startoftext|>{expected} <|endoftext|>"
    words = "the quick brown fox jumps over the lazy dog"
    assert ours.decode(ours.encode(words), skip_special_tokens=True) == words


def test_decode_matches_reference(ours, reference):
    batch = [ours.encode(p) for p in PROMPTS[:300]]
    rng = random.Random(1)
    # random ids: byte pieces that are not valid UTF-8 become U+FFFD, as in the reference
    batch += [[rng.randrange(49408) for _ in range(rng.randint(1, 20))] for _ in range(200)]
    for skip in (False, True):
        mine = [ours.decode(ids, skip_special_tokens=skip) for ids in batch]
        theirs = [reference.decode(ids, skip_special_tokens=skip) for ids in batch]
        assert mine == theirs, _first_difference([str(b) for b in batch], mine, theirs)


def test_sd2_pad_token_is_configurable(vocab_and_merges):
    vocab, merges = vocab_and_merges
    sd2 = CLIPTokenizer(vocab, merges, pad_token="!")
    assert sd2.pad_id == 0
    assert sd2("a cat", max_length=6).tolist() == [[49406, 320, 2368, 49407, 0, 0]]


def test_a_thousand_prompts_are_fast(vocab_and_merges):
    vocab, merges = vocab_and_merges
    fresh = CLIPTokenizer(vocab, merges)  # empty BPE cache
    start = time.perf_counter()
    fresh(PROMPTS[:1000])
    assert time.perf_counter() - start < 5.0  # typically well under a second
