"""The package's layers: no module imports (lazily or not) from a layer above its own, and no code outside
radscreen/tasks/ compares a task's kind or loss name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "radscreen"
# lowest first; a module may import from its own layer and those below it (docs/ARCHITECTURE.md draws them)
LAYERS = [
    {"errors"}, {"utils"}, {"io"}, {"preprocess"}, {"manifests"}, {"metrics"}, {"tasks"}, {"data", "phantoms"},
    {"models"}, {"runs"}, {"training"}, {"evaluation", "interpret", "probes"}, {"inference", "export", "jobs"},
    {"cli"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def part_of(path: Path) -> str:
    """The subpackage (or top-level module) a source file belongs to."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    """Subpackages of radscreen that a file imports, anywhere in it (function-level imports included)."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        parts |= {n.split(".")[1] for n in names if n.startswith("radscreen.") and n.count(".") >= 1}
    return parts


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_part_has_a_layer():
    assert {part_of(p) for p in SOURCES} - set(LAYER_OF) == set()


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_against_the_layers(path):
    own = LAYER_OF[part_of(path)]
    above = {part for part in imported_parts(path) if LAYER_OF.get(part, -1) > own}
    assert not above, f"{path.relative_to(PACKAGE)} ({part_of(path)}) imports from higher layers: {sorted(above)}"


TASK_WORDS = {"regression", "binary", "multiclass", "mse", "gaussian_nll", "bce", "ce"}


def kind_comparisons(path: Path) -> list[int]:
    """Lines comparing something with a task kind or loss name ('binary', 'gaussian_nll', ...), or indexing a
    table by `<x>.kind`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            constants = {o.value for o in ast.walk(ast.Tuple(elts=operands)) if isinstance(o, ast.Constant)}
            if constants & TASK_WORDS:
                lines.append(node.lineno)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Attribute) and node.slice.attr == "kind":
            lines.append(node.lineno)
    return lines


def test_kinds_are_compared_only_inside_tasks():
    found = {str(p.relative_to(PACKAGE)): kind_comparisons(p) for p in SOURCES if part_of(p) != "tasks"}
    assert {k: v for k, v in found.items() if v} == {}
