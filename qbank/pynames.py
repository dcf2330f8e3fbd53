"""Which names a piece of Python binds and which it reads, from its syntax tree (nothing is run)."""

from __future__ import annotations

import ast
from functools import lru_cache


def bound_names(tree: ast.AST) -> set[str] | None:
    """Every name the code binds anywhere; None when it cannot tell (`from x import *`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
    return names


def loaded_names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


@lru_cache(maxsize=4096)
def expression_names(expression: str) -> frozenset[str]:
    """The names an expression reads and does not bind itself (a comprehension's variable is its own)."""
    try:
        tree = ast.parse(expression, "<expression>", "eval")
    except SyntaxError:
        return frozenset()
    return frozenset(loaded_names(tree) - (bound_names(tree) or set()))
