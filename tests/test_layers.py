"""Layering that a grep can hold: SQL lives in `storage/` only, so every table has its owner there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A statement as SQL text starts (in a string literal of code outside storage/).
SQL = re.compile(r"\b(SELECT\b[\s\S]+\bFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|"
                 r"CREATE\s+(TABLE|INDEX|TRIGGER|VIRTUAL)|PRAGMA\s+\w+)")  # SQL is written in capitals here
EXECUTE = {"execute", "executemany", "executescript"}


def _with_parents(tree: ast.AST) -> ast.AST:
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent  # type: ignore[attr-defined]
    return tree


def test_no_sql_stands_outside_storage():
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        tree = _with_parents(ast.parse(path.read_text(encoding="utf-8")))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in EXECUTE:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.func.attr}(...)")
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
                  and not isinstance(getattr(node, "parent", None), ast.Expr)):  # docstrings may talk SQL
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == [], "SQL belongs in storage/ (the table's owner module):\n" + "\n".join(offenders)


def test_the_sql_check_would_see_a_statement_and_an_execute():
    sample = ast.parse('conn.execute("SELECT count(*) FROM posts")\nq = "UPDATE channels SET x = 1"\n')
    calls = [n for n in ast.walk(sample) if isinstance(n, ast.Call) and n.func.attr in EXECUTE]
    strings = [n.value for n in ast.walk(sample) if isinstance(n, ast.Constant) and SQL.search(str(n.value))]
    assert len(calls) == 1 and len(strings) == 2
