"""`python -m sd bench mobile`: the counts behind docs/mobile.md's claims, and a latency table whose base row
is the standard UNet's own median (1.00x), not that UNet timed against itself."""

from __future__ import annotations

from sd.bench.mobile import measure, sd_scale_rows
from sd.cli.main import main


def ratios(rows) -> dict[str, tuple[float, float]]:
    base = rows[0]
    return {r.name: (round(r.params / base.params, 2), round(r.flops / base.flops, 2)) for r in rows}


def test_sd_scale_counts_meet_the_goals():
    rows = measure(sd_scale_rows(), batch=2, size=64, repeats=0, calls=1, latency=False)  # meta device: no compute
    assert round(rows[0].params / 1e6, 1) == 859.5 and round(rows[0].flops / 1e9) == 1606
    r = ratios(rows)
    assert r["mobile-sd (preset: all but ReLU)"] == (0.31, 0.32)  # goals: <= 0.45x params, <= 0.35x FLOPs
    assert r["separable convs below the top level"] == (0.51, 0.76)
    assert r["shared K/V in self-attention"][0] < 1.0 and r["SwiGLU gate instead of GEGLU"] == (1.0, 1.0)
    assert r["cross-attention only at 64x64"][1] == 0.85


def test_cli_tiny_scale_table(tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "mobile", "--scale", "tiny", "--repeats", "1", "--ablation-repeats", "0", "--out", str(out)]
    assert main(args) == 0
    lines = (out / "mobile.md").read_text().splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in lines if line.startswith("| ")}
    base, preset = rows["standard tiny UNet"], rows["mobile-tiny (preset: all but ReLU)"]
    assert base[2] == base[4] == base[6].rstrip(" |") == "1.00x"
    assert (preset[2], preset[4]) == ("0.58x", "0.69x") and preset[6].rstrip(" |").endswith("x")
    assert rows["shared K/V in self-attention"][5:] == ["-", "- |"]  # --ablation-repeats 0: not timed
    assert (out / "mobile.png").stat().st_size > 10_000
