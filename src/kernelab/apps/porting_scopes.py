"""Python's scopes, read from the syntax tree: which names a function, class, lambda or
comprehension binds itself, so a name used inside it can be traced to the right binding
(``apps.porting`` follows imported aliases with it)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def local_bindings(
    scope: ast.AST, classify: Callable[[ast.Import | ast.ImportFrom, ast.alias], str | None]
) -> tuple[dict[str, set[str]], set[str]]:
    """The names a scope binds: ``(imported, other)``. ``imported`` maps a name to what
    ``classify(statement, alias)`` says each import binding it brings (None: count it in
    ``other``); ``other`` holds every other bound name (assignments, loop targets,
    parameters, ``def``/``class``, ``except ... as``, ``with ... as``, patterns). Names a
    ``global`` or ``nonlocal`` statement hands to an outer scope are in neither."""
    imported: dict[str, set[str]] = {}
    other: set[str] = set(parameters(scope))
    handed_out: set[str] = set()
    for node in own_nodes(scope):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                what = None if alias.name == "*" else classify(node, alias)
                if what is None:
                    other.add(name)
                else:
                    imported.setdefault(name, set()).add(what)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            handed_out.update(node.names)
        else:
            other.update(bound_names(node))
    return {k: v for k, v in imported.items() if k not in handed_out}, other - handed_out


def parameters(scope: ast.AST) -> list[str]:
    """The names a function or lambda binds on its call."""
    if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return []
    args = scope.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return [arg.arg for arg in every if arg is not None]


def bound_names(node: ast.AST) -> list[str]:
    """The names one node binds in its scope (other than by import)."""
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        return [node.id]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        return [node.name]
    if isinstance(node, ast.MatchMapping) and node.rest:
        return [node.rest]
    return []


def own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes that belong to a scope itself: its body, down to (and including) the nodes
    of nested scopes, without their insides."""
    if isinstance(scope, ast.Lambda):
        stack = [scope.body]
    elif isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
        stack = list(scope.body)
    else:  # a comprehension: its targets, conditions and element are its own
        stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, SCOPES):
            stack.extend(ast.iter_child_nodes(node))
