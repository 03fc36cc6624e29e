"""The package's imports follow one layer order (DESIGN.md): no circle, nothing imports upward.

The order is declared once, in ``LAYERS``: a module may import modules of its own layer or
of a lower one (earlier in the list). Modules inside one layer must not form a circle.
Function-level imports count too, and each needs a comment saying why it is deferred.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "oscar_elyra"

#: lowest first; a name is a module or a sub-package (everything under it)
LAYERS: list[set[str]] = [
    {"oscar_elyra", "errors", "redact", "discovery", "_paths", "progress"},
    {"config"},
    {"auth"},
    {"fdl"},
    {"client"},
    {"storage"},
    {"session"},
    {"invoke", "artifacts", "local"},
    {"deepaas", "hub"},
    {"nodes", "examples"},
    {"palette", "components", "elyra"},
    {"pipeline"},
    {"commands", "cli", "demo"},
]

#: optional or heavy dependencies that may be imported inside functions (jsonschema: about
#: 1 s of CPU to import where rfc3987-syntax is installed, which most commands never need)
HEAVY = {
    "elyra",
    "papermill",
    "kfp",
    "pandas",
    "sklearn",
    "matplotlib",
    "nbclient",
    "nbformat",
    "IPython",
    "PIL",
    "numpy",
    "jupyter_client",
    "tornado",
    "playwright",
    "entrypoints",
    "jsonschema",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str:
    """The LAYERS name a module belongs to (``oscar_elyra.invoke.jobs`` -> ``invoke``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "oscar_elyra"


def _layer_of(unit: str) -> int:
    for i, names in enumerate(LAYERS):
        if unit in names:
            return i
    raise AssertionError(f"oscar_elyra.{unit} is in no layer: add it to LAYERS in {__file__}")


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported oscar_elyra module, line, at function level) for each import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((alias.name, child.lineno, nested))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                if name == "oscar_elyra" or (child.level and not child.module):
                    for alias in child.names:  # ``from oscar_elyra import invoke``
                        sub = f"{name}.{alias.name}"
                        mod_path = PKG.parent / Path(*sub.split("."))
                        is_mod = mod_path.with_suffix(".py").exists() or mod_path.is_dir()
                        found.append((sub if is_mod else name, child.lineno, nested))
                else:
                    found.append((name, child.lineno, nested))
            visit(child, inner)

    visit(tree, False)
    return found


def _files() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in _files():
        _layer_of(_unit(_module_name(path)))


def test_no_import_runs_upward():
    bad = []
    for path in _files():
        here = _unit(_module_name(path))
        for name, line, _nested in _imports(path):
            if not name.startswith("oscar_elyra"):
                continue
            there = _unit(name)
            if _layer_of(there) > _layer_of(here):
                bad.append(f"{path.relative_to(PKG.parent)}:{line} ({here}) imports {name}")
    assert not bad, "imports running up the layers:\n" + "\n".join(bad)


def test_no_circle():
    graph: dict[str, set[str]] = {}
    for path in _files():
        mod = _module_name(path)
        deps = graph.setdefault(mod, set())
        for name, _line, _nested in _imports(path):
            if name.startswith("oscar_elyra") and name != mod:
                deps.add(name)
    known = set(graph)

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name or None

    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            target = resolve(dep)
            if target is None or target == node:
                continue
            # a package's __init__ re-exporting its own modules is not a circle
            if (
                target.startswith(node + ".")
                or node.startswith(target + ".")
                and (PKG.parent / Path(*target.split(".")) / "__init__.py").exists()
            ):
                continue
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if state.get(target) is None:
                dfs(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)


def test_project_imports_at_the_top():
    """A function-level import is only for an optional heavy dependency, with a comment."""
    bad = []
    for path in _files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for name, line, nested in _imports(path):
            if not nested:
                continue
            root = name.split(".")[0]
            text = lines[line - 1]
            first = line - 1  # the comment may head a block of imports
            while first > 0 and lines[first - 1].strip().startswith(("import ", "from ")):
                first -= 1
            head = lines[first - 1] if first > 0 else ""
            commented = "#" in text or "#" in head
            if root == "oscar_elyra" or root not in HEAVY or not commented:
                bad.append(f"{path.relative_to(PKG.parent)}:{line}: {text.strip()}")
    assert not bad, "function-level imports (move them to the top):\n" + "\n".join(bad)
