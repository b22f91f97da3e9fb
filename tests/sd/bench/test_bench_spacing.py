"""`python -m sd bench spacing`: a row per --snap and --rounds over seeds, on the shipped student (2 LCM steps) and a
short GIF; the student's own spacing is what it runs unless a row sets another."""

import json

import pytest

from sd.bench.spacing import parse_spacing
from sd.cli.main import main
from sd.errors import UserError
from sd.paths import SHIPPED_MODELS


def test_each_row_renders_its_spacing_over_the_seeds(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "spacing", "--checkpoint", str(SHIPPED_MODELS["tiny-shapes-distilled"]), "--frames", "49",
                 "--seeds", "2", "--out", str(out), "--spacing", "0,2", "--spacing", "0.5,3"]) == 0  # fmt: skip
    record = json.loads((out / "spacing.json").read_text())
    plain, snapping = record["rows"]["snap 0, 2 rounds"], record["rows"]["snap 0.5, 3 rounds"]
    assert record["transitions"] == 2 and record["own"] == "snap 0.25, 3 rounds" and record["steps"] == 2
    for row in (plain, snapping):
        assert row["n"] == 4 and len(row["halves"]) == 2 and 1.0 <= row["median"] <= row["p90"] <= row["worst"]
        assert 0.0 <= row["above 5"] <= row["above 3"] <= 1.0
    # no snap: 3 keyframes x 2 steps, then 2 transitions x (12 probes + 23 in-betweens) x 1 step (branch 0.8 of 2)
    assert plain["steps mean"] == plain["steps max"] == 3 * 2 + 2 * (12 + 23)
    assert snapping["steps max"] < plain["steps mean"]  # probes shown instead of frames
    printed = capsys.readouterr().out
    assert (out / "spacing.md").read_text().strip() in printed and "| snap 0.5, 3 rounds | 4 |" in printed


BAD = [("0.25", "give SNAP,ROUNDS"), ("a,3", "give SNAP,ROUNDS"), ("0.7,2", "--snap 0.7 must be"),
       ("0,0", "--rounds 0 must be")]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_spacing_is_refused_in_one_line(text, message):
    with pytest.raises(UserError, match=message) as error:
        parse_spacing(text)
    assert len(str(error.value).splitlines()) == 1
