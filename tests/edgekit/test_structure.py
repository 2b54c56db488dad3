"""The package's layering, checked by reading the source (no imports run).

- No import circle between edgekit modules (counting every import, lazy ones inside
  functions included, except those under ``if TYPE_CHECKING:``).
- No module imports another module's ``_private`` name.
- The core does not import the device layer, and only ``edgekit.cli`` imports typer/rich.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = {
    "edgekit": ROOT / "edgekit",
    "edgekit.exporters": ROOT / "exporters",
    "edgekit.device": ROOT / "device",
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg, folder in TREES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if pkg == "edgekit" and parts and parts[0] in ("exporters", "device"):
                continue
            out[".".join([pkg, *parts])] = path
    return out


MODULES = _modules()


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                for inner in ast.walk(sub):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def _imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every runtime import of module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
    return found


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod in MODULES:
        for target, names, _ in _imports(mod):
            for name in names or [""]:
                full = f"{target}.{name}" if name else target
                dest = full if full in MODULES else target
                if dest in MODULES and dest != mod:
                    edges[mod].add(dest)
    return edges


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge of a depth-first walk, as the circle it closes."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [])
    return cycles


def private_names(source: str) -> list[str]:
    """``_private`` names a module's source imports from edgekit modules."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgekit"):
            out += [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def test_no_import_circle() -> None:
    edges = _edges()
    # a package __init__ that re-exports its own submodules is not a circle
    for mod in list(edges):
        if MODULES[mod].name == "__init__.py":
            edges[mod] = {d for d in edges[mod] if not d.startswith(mod + ".")}
    cycles = find_cycles(edges)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_cross_module_private_import() -> None:
    bad = []
    for mod in MODULES:
        for target, names, line in _imports(mod):
            if not target.startswith("edgekit"):
                continue
            private = private_names(f"from {target} import {', '.join(names)}") if names else []
            if private and target != mod:
                bad.append(
                    f"{MODULES[mod].relative_to(ROOT)}:{line} imports {', '.join(private)} from {target}"
                )
    assert not bad, "\n".join(bad)


def test_core_does_not_import_the_device_layer_and_only_the_cli_imports_typer() -> None:
    bad = []
    for mod in MODULES:
        # the CLI and the Python API are the top layer: they compose the core and the device layer
        if mod.startswith(("edgekit.device", "edgekit.cli", "edgekit.api")):
            continue
        for target, _, line in _imports(mod):
            if target.startswith("edgekit.device") or target.split(".")[0] in ("typer", "rich"):
                bad.append(f"{MODULES[mod].relative_to(ROOT)}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_the_checkers_can_fail() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    assert private_names("from edgekit.export import _probe_output, export\n") == ["_probe_output"]
    assert private_names("from os import _exit\n") == []
