"""`python -m sd COMMAND` builds only COMMAND's parser: the table of which module registers it is right, and
the commands whose modules import torch lazily parse their arguments without it."""

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from sd.cli.main import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[2]


def test_each_module_registers_the_commands_the_table_gives_it():
    for module, commands in COMMANDS.items():
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(subparsers)
        assert tuple(subparsers.choices) == commands, module


def test_a_named_command_gets_the_same_parser_as_the_full_build():
    full = build_parser()._subparsers._group_actions[0].choices
    for commands in COMMANDS.values():
        for command in commands:
            alone = build_parser(command)._subparsers._group_actions[0].choices
            assert set(alone) == set(commands)
            assert alone[command].format_help() == full[command].format_help(), command


@pytest.mark.parametrize("command", ["gif", "eval", "prune", "ui", "audio-keyframes"])
def test_parsing_these_commands_imports_no_torch(command):
    """--help and argument errors answer at once: torch is imported only by a command that runs."""
    code = f"import sys; from sd.cli.main import build_parser; build_parser({command!r}); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "False"
