"""Entry point of `python -m sd`: builds the parser from the sub-command modules and runs one."""

from __future__ import annotations

import argparse
import sys

from sd.errors import UserError

# Each module has `register(subparsers)` that adds its parser and sets `func(args) -> int`.
COMMANDS = [
    "sd.cli.demo", "sd.cli.generate", "sd.cli.gif", "sd.cli.tokenize", "sd.cli.inspect", "sd.cli.convert",
    "sd.cli.bench", "sd.cli.eval", "sd.cli.audio_keyframes", "sd.cli.ui", "sd.cli.prune",
]  # fmt: skip


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints its usage block before an error; we print the error alone, on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = OneLineErrorParser(
        prog="python -m sd",
        description="Stable Diffusion from scratch: tokenize, generate, animate.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
