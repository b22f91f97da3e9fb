"""The keyframe parser: every documented mistake gets its one-line error; arbitrary text never crashes it."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sd.errors import UserError
from sd.gif.keyframes import MAX_FRAME, Keyframe, parse_keyframes, spread_prompts

GOOD = "0: a red circle on a blue background\n24: a blue square: on yellow\n\n# a comment\n48 seed=7: a green star"


def error(text: str) -> str:
    with pytest.raises(UserError) as info:
        parse_keyframes(text, source="anim.txt")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_parses_frames_prompts_seeds_and_colons_in_prompts():
    assert parse_keyframes(GOOD) == [
        Keyframe(0, "a red circle on a blue background"),
        Keyframe(24, "a blue square: on yellow"),
        Keyframe(48, "a green star", seed=7),
    ]


def test_last_line_with_or_without_trailing_newline():
    # Giffusion drops the last prompt's final character when the file lacks the newline.
    assert parse_keyframes(GOOD) == parse_keyframes(GOOD + "\n") == parse_keyframes(GOOD + "\r\n")
    assert parse_keyframes("0: a red circle")[-1].prompt == "a red circle"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0 a red circle", "anim.txt, line 1: missing ':'"),
        ("0: a\nten: b", "anim.txt, line 2: frame 'ten' is not a non-negative integer"),
        ("0: a\n-5: b", "anim.txt, line 2: frame '-5' is not a non-negative integer"),
        ("0: a\n1.5: b", "anim.txt, line 2: frame '1.5' is not a non-negative integer"),
        ("0: a\n\n12: b\n12: c", "anim.txt, line 4: frame 12 does not come after frame 12 (line 3)"),
        ("0: a\n24: b\n12: c", "anim.txt, line 3: frame 12 does not come after frame 24 (line 2)"),
        ("0: a\n12:   ", "anim.txt, line 2: empty prompt after '12:'"),
        ("5: a", "anim.txt, line 1: the first keyframe must be at frame 0, not 5"),
        (f"0: a\n{MAX_FRAME + 1}: b", f"anim.txt, line 2: frame {MAX_FRAME + 1} is over the cap of {MAX_FRAME}"),
        ("0 seed=x: a", "anim.txt, line 1: seed 'x' is not a non-negative integer"),
        ("0 and then: a", "anim.txt, line 1: '0 and then' is not 'FRAME' or 'FRAME seed=SEED'"),
        ("\n# only a comment\n", "anim.txt: no keyframes"),
    ],
)
def test_each_mistake_names_the_line_and_the_problem(text, expected):
    assert expected in error(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_arbitrary_text_parses_or_raises_the_clear_error(text):
    try:
        keyframes = parse_keyframes(text)
    except UserError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert keyframes[0].frame == 0
    assert all(a.frame < b.frame <= MAX_FRAME for a, b in zip(keyframes, keyframes[1:], strict=False))
    assert all(k.prompt and k.prompt == k.prompt.strip() for k in keyframes)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(0, 500))
def test_spread_prompts_puts_first_at_0_last_at_the_end_strictly_increasing(count, extra):
    frames = count + extra
    keyframes = spread_prompts([f"prompt {i}" for i in range(count)], frames)
    assert keyframes[0].frame == 0 and len(keyframes) == count
    if count > 1:
        assert keyframes[-1].frame == frames - 1
    assert all(a.frame < b.frame for a, b in zip(keyframes, keyframes[1:], strict=False))


def test_spread_prompts_refuses_too_few_frames_and_empty_prompts():
    with pytest.raises(UserError, match="between 3"):
        spread_prompts(["a", "b", "c"], 2)
    with pytest.raises(UserError, match="non-empty"):
        spread_prompts(["a", " "], 10)
