"""`python -m sd COMMAND` builds only COMMAND's parser: the table of which module registers it is right, and
`python -m sd --help` and every command parse their arguments without importing torch."""

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


@pytest.mark.parametrize("command", [None, *(c for commands in COMMANDS.values() for c in commands)])
def test_parsing_imports_no_torch(command):
    """--help and argument errors answer at once: torch is imported only by a command that runs. None: the
    top-level `python -m sd --help`, which builds every command's parser."""
    code = f"import sys; from sd.cli.main import build_parser; build_parser({command!r}); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("argv", "status"), [(["--help"], 0), (["txt2img", "--bogus"], 2)])
def test_python_m_sd_answers_help_and_argument_errors_without_torch(argv, status):
    """The real entry point, end to end: -X importtime lists every module the process imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sd", *argv], capture_output=True, text=True,
                          cwd=REPO)  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert done.returncode == status, done.stderr[-2000:]
    assert "sd.cli.main" in imported and "torch" not in imported
