"""The import rules of docs/ARCHITECTURE.md, read from the source: layers, no circles, argparse only in CLIs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO_ROOT

PACKAGES = ("edge", "train", "export", "calibration")

# edge's parts from the bottom up: a part may import its own layer's parts and those below, never above.
EDGE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("edge.errors", "edge.taxonomy", "edge.privacy", "edge.config", "edge.sidecar", "edge.steps"),
    ("edge.runtime", "edge.features", "edge.service", "edge.demo"),
    ("edge.detectors", "edge.fusion", "edge.capture", "edge.events"),
    ("edge.pipeline", "edge.models"),
    ("edge.offline",),
    ("edge.app",),
)
CLI_MODULES = ("edge.app.cli", "edge.app.cli_support", "train.cli", "export.cli")


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(path: Path) -> set[str]:
    """Absolute names imported by the module at ``path`` (all of them, at any depth: lazy ones too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def part_of(name: str) -> str | None:
    """The edge part (``edge.<sub>``) a module belongs to."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "edge" and len(parts) > 1 else None


def layer_of(part: str) -> int:
    return next(i for i, layer in enumerate(EDGE_LAYERS) if part in layer)


def test_every_edge_part_has_a_layer() -> None:
    parts = {part_of(name) for name, _ in modules() if part_of(name)}
    assert parts == {p for layer in EDGE_LAYERS for p in layer}, "add new edge/ parts to EDGE_LAYERS (and the doc)"


def test_edge_parts_import_only_their_layer_and_below() -> None:
    wrong = []
    for name, path in modules():
        mine = part_of(name)
        if mine is None:
            continue
        for target in imports(path):
            theirs = part_of(target)
            if theirs and theirs in {p for layer in EDGE_LAYERS for p in layer} and layer_of(theirs) > layer_of(mine):
                wrong.append(f"{name} imports {target} (layer {layer_of(theirs)} above {layer_of(mine)})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_import_circles_between_modules() -> None:
    known = dict(modules())
    graph = {name: {t for t in imports(path) if t in known and t != name} for name, path in known.items()}
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append(trail[trail.index(target):] + [target] if target in trail else [node, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_device_never_imports_the_training_side() -> None:
    leaks = [f"{name} imports {target}" for name, path in modules() if name.startswith("edge")
             for target in imports(path) if target.split(".")[0] in ("torch", "train", "export", "calibration")]
    assert not leaks, leaks


def test_argparse_only_in_command_line_modules() -> None:
    offenders = [name for name, path in modules() if "argparse" in imports(path)
                 and not any(name == cli or name.startswith(cli + ".") for cli in CLI_MODULES)]
    assert not offenders, f"argparse outside the CLI modules: {offenders}"
