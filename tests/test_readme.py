"""The README's promises that a test can keep true."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The shell commands in the README's 'Two commands' section, in order."""
    section = REPO.joinpath("README.md").read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands_with_pinned_torch():
    commands = readme_commands()
    assert len(commands) == 2
    assert all("torch==2.13.0" in c for c in commands)
    assert "python -m sd demo" in commands[0]
    assert "pytest" in commands[1]


def test_readme_is_a_short_entry_with_the_reading_order_on_its_first_screen():
    """Everything else lives in docs/ (tests/test_docs.py checks that the README links there)."""
    lines = REPO.joinpath("README.md").read_text().splitlines()
    assert len(lines) <= 250
    first_screen = "\n".join(lines[:30])
    assert "tokenizer -> text encoder ->" in first_screen and "GIF driver" in first_screen


def test_ci_runs_the_readmes_test_command():
    ci = REPO.joinpath(".ci/run").read_text().splitlines()
    assert readme_commands()[1] in ci
