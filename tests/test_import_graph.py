"""The import graph of `bot/` has no cycle; `storage/` imports nothing from `bot/` or Telethon, nor tqdm.

The graph holds the imports a module runs when it is imported: module level, class bodies and
module-level `if`/`try` blocks count; function bodies (imports deferred to call time) and
`if TYPE_CHECKING:` blocks (never run) do not.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that the module `name` imports: `from pkg import mod` names `pkg.mod`
    when that is a module, else `pkg`. Importing `pkg.mod` also runs `pkg/__init__.py`, but that is
    not counted: a package that re-exports its submodules would otherwise always be a cycle."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known} - {name}


def _import_time_nodes(node: ast.AST) -> list[ast.AST]:
    """`node` and what it holds that runs at import time (not function bodies, not TYPE_CHECKING)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return []
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        return [n for child in node.orelse for n in _import_time_nodes(child)]
    return [node, *(n for child in ast.iter_child_nodes(node) for n in _import_time_nodes(child))]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


BOT = _modules("bot")


@pytest.mark.parametrize("name", sorted(BOT))
def test_every_bot_module_imports(name):
    importlib.import_module(name)


def test_the_import_graph_of_bot_has_no_cycle():
    known = set(BOT)
    graph = {name: _imports(name, path, known) for name, path in BOT.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_storage_imports_nothing_from_bot_or_telethon():
    for name, path in _modules("storage").items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for imported in names:
                assert imported.split(".")[0] not in ("bot", "telethon"), f"{name} imports {imported}"


def test_storage_draws_no_progress_bars():
    """Presentation stays out of storage: it reports through `storage.progress.Progress`."""
    for path in sorted((ROOT / "storage").rglob("*.py")):
        found = re.findall(r"^\s*(?:from|import)\s+tqdm\b.*$", path.read_text(encoding="utf-8"), re.M)
        assert not found, (path, found)
