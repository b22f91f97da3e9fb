"""`python -m sd tokenize`, run as a user would (a subprocess from the repository root)."""

from __future__ import annotations

import json
import subprocess
import sys

from sd.loading.tokenizer_files import default_tokenizer, save_tokenizer_folder
from sd.paths import REPO_ROOT

PROMPT = "a caterpillar smoking a hookah"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sd", "tokenize", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_json_output_is_one_object_with_start_and_end_and_no_padding():
    result = run_cli(PROMPT, "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == {"ids", "tokens"}
    ids, tokens = data["ids"], data["tokens"]
    assert ids == [49406, 320, 27111, 9038, 320, 34214, 49407]
    assert ids == default_tokenizer().encode(PROMPT)
    assert len(ids) == len(tokens)
    assert tokens[0] == "<|startoftext|>" and tokens[-1] == "<|endoftext|>"
    assert tokens[1:-1] == default_tokenizer().tokenize(PROMPT)
    assert 49407 not in ids[:-1]  # no padding


def test_json_prints_one_line_per_prompt_and_respects_max_length():
    result = run_cli("--json", "--max-length", "4", "a cat", "one two three four five")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [row["ids"] for row in rows] == [[49406, 320, 2368, 49407], [49406, 637, 1237, 49407]]


def test_plain_output_lists_tokens_and_ids():
    result = run_cli(PROMPT)
    assert result.returncode == 0, result.stderr
    for token, token_id in [("caterpillar</w>", 27111), ("hookah</w>", 34214), ("<|startoftext|>", 49406)]:
        assert token in result.stdout and str(token_id) in result.stdout
    assert "<|endoftext|>" in result.stdout


def test_help_documents_the_options():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--json", "--tokenizer", "--max-length", "PROMPT"):
        assert option in result.stdout


def test_missing_tokenizer_folder_is_a_one_line_error(tmp_path):
    result = run_cli("--tokenizer", str(tmp_path / "missing"), PROMPT)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing" in lines[0]
    assert "Traceback" not in result.stderr


def test_tokenizer_folder_is_used_and_a_missing_file_is_a_one_line_error(tmp_path):
    save_tokenizer_folder(default_tokenizer(), tmp_path)
    result = run_cli("--json", "--tokenizer", str(tmp_path), PROMPT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ids"] == default_tokenizer().encode(PROMPT)
    (tmp_path / "merges.txt").unlink()
    result = run_cli("--tokenizer", str(tmp_path), PROMPT)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:")
    assert "merges.txt" in result.stderr and "Traceback" not in result.stderr
