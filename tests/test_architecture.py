"""The shape of the code: no import circles, and data flowing one way.

Every ``import`` in edge/ counts, top-level or inside a function, since a late import
still ties two modules together. The tests read the source (nothing is imported), so
they fail the moment a new circle or a backward dependency is written.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EDGE = Path(__file__).resolve().parent.parent / "edge"


def _modules() -> dict[str, Path]:
    found = {}
    for path in EDGE.rglob("*.py"):
        parts = list(path.relative_to(EDGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module a dotted name lives in (``edge.store.Store`` → ``edge.store``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for name in names:
            owner = _owner(name) if name.startswith("edge") else None
            if owner is not None and owner != module:
                yield owner


GRAPH = {module: set(_imported(module, path)) for module, path in MODULES.items()}


def _circles() -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _textual_screens(component: set[str]) -> bool:
    """The clerk UI's app and its screens: a screen pushes the next one through the app
    and the app installs the screens, as Textual's own example apps do. Tolerated there
    and nowhere else."""
    return all(m == "edge.tui.app" or m.startswith("edge.tui.screens.") for m in component)


def test_the_import_graph_sees_the_modules_it_should() -> None:
    """A parser that found no imports would pass every test below."""
    assert "edge.store" in GRAPH["edge.records"]
    assert "edge.capture.readers" in GRAPH["edge.capture.pipeline"]
    assert len(GRAPH) > 100


def test_no_import_circles() -> None:
    circles = [sorted(c) for c in _circles() if not _textual_screens(c)]
    assert circles == [], f"modules importing each other: {circles}"


def test_a_circle_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself, on a made-up graph: two modules that import each other."""
    fake = {"edge.a": {"edge.b"}, "edge.b": {"edge.c"}, "edge.c": {"edge.a"}, "edge.d": set()}
    monkeypatch.setattr(sys.modules[__name__], "GRAPH", fake)
    assert _circles() == [{"edge.a", "edge.b", "edge.c"}]


def _within(module: str, area: str) -> bool:
    return module == area or module.startswith(area + ".")


FORBIDDEN = {
    "edge.vault": ("edge",),
    "edge.store": (
        "edge.capture",
        "edge.desk",
        "edge.records",
        "edge.sync",
        "edge.tui",
        "edge.update",
        "edge.vault",
    ),
    "edge.capture": ("edge.desk", "edge.tui", "edge.sync", "edge.update", "edge.daemon"),
    "edge.records": ("edge.capture", "edge.desk", "edge.tui", "edge.sync", "edge.update"),
    "edge.desk": ("edge.capture", "edge.tui", "edge.sync", "edge.update", "edge.daemon"),
    "edge.daemon": ("edge.tui", "edge.update", "edge.desk"),
    "edge.sync": ("edge.tui", "edge.capture", "edge.desk"),
}
"""Data flows scanner → capture → vault → store → sync/UI: what each layer must never
import. Keys and ciphertext live in edge.vault, which imports nothing of the box."""


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_data_flows_one_way(layer: str) -> None:
    backward = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _within(module, layer)
        for target in targets
        if not _within(target, layer) and any(_within(target, f) for f in FORBIDDEN[layer])
    )
    assert backward == []
