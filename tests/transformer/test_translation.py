"""The translation Transformer: masks (no peeking, pads ignored), beam 1 = greedy, training lowers the loss,
the dates task's split, and the shipped weights' held-out score."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sd.train.model_file import load_model
from transformer.translation.dates import cardinal, held_out_years, ordinal, ordinal_suffix, sample_pairs, year_words
from transformer.translation.decoding import beam_search, greedy_decode
from transformer.translation.evaluate import score
from transformer.translation.model import Transformer, TranslationConfig
from transformer.translation.train import loss_fn
from transformer.translation.vocab import PAD, SOURCE, TARGET, UNK, encode_pairs

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "transformer-dates.safetensors"


@pytest.fixture
def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(TranslationConfig(len(SOURCE), len(TARGET), d_model=32, d_ff=64, heads=2)).eval()


def test_causal_mask_no_peeking(model: Transformer) -> None:
    """Changing target token 4 changes no decoder output before position 4."""
    src, tgt = encode_pairs(sample_pairs(3, 0, held_out=False))
    memory, src_mask = model.encode(src)
    out = model.decode(tgt, memory, src_mask)  # (3, T, V)
    changed = tgt.clone()
    changed[:, 4] = (changed[:, 4] + 1) % len(TARGET)
    out2 = model.decode(changed, memory, src_mask)
    torch.testing.assert_close(out2[:, :4], out[:, :4], atol=1e-6, rtol=0)
    assert (out2[:, 4:] - out[:, 4:]).abs().max() > 1e-3  # and the later ones do see it


def test_padding_is_ignored(model: Transformer) -> None:
    """Extra padding on the source changes neither the encoder's real positions nor the decoder's outputs."""
    src, tgt = encode_pairs(sample_pairs(3, 1, held_out=False))
    padded = torch.cat([src, torch.full((3, 5), PAD)], dim=1)
    memory, mask = model.encode(src)
    memory_p, mask_p = model.encode(padded)
    torch.testing.assert_close(memory_p[:, : src.shape[1]], memory, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        model.decode(tgt, memory_p, mask_p), model.decode(tgt, memory, mask), atol=1e-5, rtol=1e-5
    )


def test_beam_of_one_is_greedy(model: Transformer) -> None:
    src, _ = encode_pairs(sample_pairs(6, 2, held_out=True))
    greedy = greedy_decode(model, src)
    for i in range(len(src)):
        one = src[i : i + 1, : int((src[i] != PAD).sum())]
        assert TARGET.decode(beam_search(model, one, beam=1)) == TARGET.decode(greedy[i].tolist())


def test_few_steps_lower_the_loss(model: Transformer) -> None:
    model.train()
    src, tgt = encode_pairs(sample_pairs(32, 3, held_out=False))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(15):
        loss = loss_fn(model, src, tgt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0], losses


def test_generator_words_split_and_variety() -> None:
    assert (cardinal(42), ordinal(21), ordinal(30), ordinal_suffix(12), ordinal_suffix(22)) == (
        "forty-two", "twenty-first", "thirtieth", "12th", "22nd")  # fmt: skip
    rng = __import__("random").Random(0)
    assert year_words(1987, rng) == "nineteen eighty-seven" and year_words(1905, rng) == "nineteen oh five"
    train, test = sample_pairs(3000, 0, held_out=False), sample_pairs(300, 1, held_out=True)
    years = held_out_years()
    assert len(years) == 20 and not {int(t[:4]) for _, t in train} & years and {int(t[:4]) for _, t in test} <= years
    assert len({s for s, _ in train}) > 2900  # hardly any repeats
    src, _ = encode_pairs(train + test)
    assert not (src == UNK).any()


@pytest.mark.skipif(not WEIGHTS.exists(), reason="weights/transformer-dates.safetensors not shipped")
def test_shipped_weights_reach_their_claims() -> None:
    model = load_model(Transformer, TranslationConfig, WEIGHTS)
    pairs = sample_pairs(200, 12345, held_out=True)  # fresh held-out-year sentences, not the training script's
    greedy = score(model, pairs)
    # docs/educational-models.md: 99.7% and 99.9 on 300
    assert greedy["exact_match"] >= 0.97 and greedy["bleu"] >= 99, greedy
    beam = score(model, pairs[:40], beam=4)
    assert beam["exact_match"] >= 0.95, beam
