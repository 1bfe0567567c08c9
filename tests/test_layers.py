"""The packages point downward and no module needs an import hidden in a function to load.

Layers: `intents` (pure) and `daraja_sim` (the stand-in for M-Pesa) import none of ours; `ledger` imports only
`intents`; `voice_server` sits on top. Read from the source with `ast`: every import counts, at the top of a
module or inside a function, except those under `if TYPE_CHECKING:` (never run)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED: dict[str, frozenset[str]] = {
    "intents": frozenset(),
    "daraja_sim": frozenset(),
    "ledger": frozenset({"intents"}),
    "voice_server": frozenset({"intents", "ledger", "daraja_sim"}),
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _run_time_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run (those under `if TYPE_CHECKING:` cannot)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _run_time_imports_of(child))
            continue
        yield from _run_time_imports_of(node)


def _run_time_imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _run_time_imports(node)


def _ours(name: str) -> str | None:
    """The module of ours a dotted name lands in (a name imported from a package lands in the package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out: set[str] = set()
    for node in _run_time_imports(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = _ours(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = {module: _imports_of(module) for module in MODULES}


def test_each_package_imports_only_the_layers_below_it() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0]
        and target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    )
    assert upward == []


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in GRAPH:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(GRAPH[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
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
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_two_modules_import_each_other_even_inside_a_function() -> None:
    assert _cycles() == []


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    """The two checks above fail on the shapes they look for (a check that cannot fail proves nothing)."""
    GRAPH["intents.tokens"].add("ledger.models")
    GRAPH["ledger.models"].add("intents.tokens")
    try:
        assert ["intents.tokens", "ledger.models"] in _cycles()
        with pytest.raises(AssertionError):
            test_each_package_imports_only_the_layers_below_it()
    finally:
        GRAPH["intents.tokens"].discard("ledger.models")
        GRAPH["ledger.models"].discard("intents.tokens")


# Each of these was one end of a cycle hidden by an import inside a function: imported first, in a fresh
# interpreter, it loads.
FIRST_IMPORTS = [
    "intents.banks",
    "intents.billers",
    "intents.vocabulary",
    "voice_server.tools.routes",
    "voice_server.session_routes",
    "voice_server.app_api.plans_openapi",
    "voice_server.app_api.openapi",
    "voice_server.runtime",
]


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_a_module_loads_when_imported_first(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
