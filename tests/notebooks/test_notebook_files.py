"""What a committed notebook must be: outputs stripped, the project's code imported (not copied), plots shown,
short explanations, and a last cell inviting the reader to change something."""

import importlib.util
import re

import nbformat
import pytest

from tests.notebooks.paths import NOTEBOOK_DIR, NOTEBOOKS

PROJECT_IMPORT = re.compile(r"^\s*(from|import)\s+(sd|transformer|unet|vae)\b", re.M)
MAX_MARKDOWN_LINES = 20  # "short markdown cells": a paragraph or a small table, not a chapter


def load_strip_tool():
    spec = importlib.util.spec_from_file_location("strip_outputs", NOTEBOOK_DIR / "strip_outputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_of(notebook) -> str:
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def test_the_notebooks_are_there():
    names = {path.name for path in NOTEBOOKS}
    for name in ("01_tokenizer_and_clip", "05_schedules_and_samplers", "06_text_to_image_pipeline",
                 "07_gif_interpolation"):  # fmt: skip
        assert f"{name}.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs"
    tool = load_strip_tool()
    assert tool.stripped_text(path) == path.read_text(encoding="utf-8"), (
        f"run: python notebooks/strip_outputs.py {path.relative_to(NOTEBOOK_DIR.parent)}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_teaches_with_the_projects_code(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    assert PROJECT_IMPORT.search(code_of(notebook)), "import the project's modules (sd, transformer, unet, vae)"
    assert "plt." in code_of(notebook), "show at least one plot or image with matplotlib"
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            lines = [line for line in cell.source.splitlines() if line.strip()]
            assert len(lines) <= MAX_MARKDOWN_LINES, f"markdown cell {i} has {len(lines)} lines; split it"
    last = notebook.cells[-1]
    assert last.cell_type == "markdown" and re.match(r"#+\s*try changing this", last.source, re.I), (
        "the last cell is a markdown cell headed 'Try changing this'"
    )


def test_strip_tool_removes_outputs_and_check_reports_them(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("1 + 1", execution_count=3, outputs=[
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)])]  # fmt: skip
    notebook.cells[0].metadata = {"execution": {"iopub.status.busy": "2026-01-01"}}
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    tool = load_strip_tool()
    assert tool.main([str(path), "--check"]) == 1
    assert tool.main([str(path)]) == 0
    stripped = nbformat.read(path, as_version=4)
    assert stripped.cells[0].outputs == [] and stripped.cells[0].execution_count is None
    assert stripped.cells[0].metadata == {} and stripped.cells[0].source == "1 + 1"
    assert tool.main([str(path), "--check"]) == 0
