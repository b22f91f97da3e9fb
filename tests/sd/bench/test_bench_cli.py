"""`python -m sd bench MODE`: each mode parses only its own options, and `bench` alone is `bench all`."""

from __future__ import annotations

import pytest

import sd.cli.bench
from sd.cli.main import build_parser, main


def test_bench_alone_runs_all_with_its_defaults(monkeypatch):
    seen = []
    monkeypatch.setattr(sd.cli.bench, "run_reference", lambda args: seen.append(args) or 0)
    assert main(["bench"]) == 0 and main(["bench", "all"]) == 0
    alone, named = (vars(args) | {"func": None, "command": None} for args in seen)
    assert alone == named and alone["mode"] == "all"
    assert (alone["repeats"], alone["steps"], alone["size"], alone["threads"]) == (3, 4, 512, None)


def test_each_mode_takes_its_own_options_only(capsys):
    bench = build_parser("bench")
    args = bench.parse_args(["bench", "prune", "--pruned", "p.safetensors", "--out", "o"])
    assert (args.mode, args.scale, args.samples, args.threads) == ("prune", "tiny", 100, None)
    assert bench.parse_args(["bench", "mobile"]).scale == "both"
    with pytest.raises(SystemExit) as caught:
        bench.parse_args(["bench", "prune", "--pruned", "p.safetensors", "--frames", "3"])  # a gif option
    assert caught.value.code == 2 and "--frames" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["bench", "prune"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m sd bench prune" in err and "--pruned" in err
