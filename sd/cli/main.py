"""Entry point of `python -m sd`: builds the parser from the sub-command modules and runs one."""

from __future__ import annotations

import argparse
import sys

from sd.errors import UserError

# Each module has `register(subparsers)` that adds the parsers of the commands listed with it and sets
# `func(args) -> int`. `python -m sd COMMAND ...` imports COMMAND's module alone, so that a command whose module
# imports torch only when it runs answers --help and argument errors at once (tests/sd/test_cli_main.py checks
# that these names are the ones each module registers).
COMMANDS = {
    "sd.cli.demo": ("demo",), "sd.cli.generate": ("txt2img", "img2img"), "sd.cli.gif": ("gif",),
    "sd.cli.tokenize": ("tokenize",), "sd.cli.inspect": ("inspect",), "sd.cli.convert": ("convert",),
    "sd.cli.bench": ("bench",), "sd.cli.eval": ("eval",), "sd.cli.audio_keyframes": ("audio-keyframes",),
    "sd.cli.ui": ("ui",), "sd.cli.prune": ("prune",),
}  # fmt: skip


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints its usage block before an error; we print the error alone, on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; with a known `command`, only the parsers of the module that registers it."""
    import importlib

    modules = [name for name, commands in COMMANDS.items() if command in commands] or list(COMMANDS)
    parser = OneLineErrorParser(
        prog="python -m sd",
        description="Stable Diffusion from scratch: tokenize, generate, animate.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)  # the top level has no option but --help before COMMAND
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
