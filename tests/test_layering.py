"""Data flows one way: the model packages know nothing of the app, and sd/loading has no import cycle.

Imports are read with `ast` (nothing is imported), those inside functions included: a cycle hidden in a
function is still a cycle.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_PACKAGES = ("unet", "vae", "transformer")
# The educational side projects' trainers (not the models) reuse the app's plotting, run records and shapes
# data; they are the only files of the model packages allowed to import sd.
TRAINERS = {"unet/segmentation/data.py", "unet/segmentation/train.py", "vae/plain/train.py",
            "transformer/translation/train.py"}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports anywhere in it; `from a.b import c` counts as a.b.c when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports."""
    files = {module_name(p): p for p in (REPO / package).rglob("*.py")}
    return {name: imported_modules(path) & files.keys() - {name} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(graph[node]):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_model_packages_import_nothing_from_sd():
    offenders = {
        f"{path.relative_to(REPO)}: {name}"
        for package in MODEL_PACKAGES
        for path in (REPO / package).rglob("*.py")
        if str(path.relative_to(REPO)) not in TRAINERS
        for name in imported_modules(path)
        if name == "sd" or name.startswith("sd.")
    }
    assert not offenders, sorted(offenders)


def test_sd_loading_imports_only_what_lies_below_it():
    """Features (pruning, LoRA, the pipeline, GIFs, training, the CLI) build on loading, not the reverse: a pruned
    file's UNet is rebuilt by unet/pruned.py, not by sd/prune."""
    below = ("sd.loading.", "sd.errors", "sd.paths", "sd.atomic_output", "sd.file_hash", "sd.json_file", "sd.schedule",
             "sd.samplers")  # fmt: skip
    offenders = {
        f"{path.relative_to(REPO)}: {name}"
        for path in (REPO / "sd" / "loading").rglob("*.py")
        for name in imported_modules(path)
        if name.startswith("sd.") and not name.startswith(below)
    }
    assert not offenders, sorted(offenders)


def test_sd_loading_has_no_import_cycle():
    graph = import_graph("sd/loading")
    assert "sd.loading.original" in graph and graph["sd.loading.original"]  # the graph is read
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
