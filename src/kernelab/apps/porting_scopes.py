"""The dotted names a script reaches through its imports, read from the syntax tree with
Python's scopes: ``nn.Conv3d(...)`` after ``import torch.nn as nn`` uses ``torch.nn.Conv3d``,
but not inside a function with a parameter or local variable ``nn``. ``apps.porting`` checks
a PyTorch script's names with it, without running the script."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

# What an import binds to a name: a dotted name to follow, or None (not followed).
Classify = Callable[[ast.Import | ast.ImportFrom, ast.alias], str | None]

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


def dotted_uses(tree: ast.Module, classify: Classify) -> dict[str, list[int]]:
    """Every dotted name reached from a name an import binds (as ``classify`` says), with its
    lines: ``nn.Conv3d`` for ``torch.nn.Conv3d``. An assigned attribute
    (``cudnn.benchmark = True``) counts only up to its owner; a name some function declares
    ``global`` may be rebound anywhere, so it is not followed."""
    uses: dict[str, list[int]] = {}
    rebound = {n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}
    aliases = {k: v for k, v in scope_aliases(tree, {}, classify).items() if k not in rebound}
    scan(tree, aliases, aliases, uses, classify)
    return uses


def scope_aliases(scope: ast.AST, outer: dict[str, str], classify: Classify) -> dict[str, str]:
    """The aliases visible in a scope: those of the enclosing scope that no local name hides,
    and the scope's own imports (a name bound by anything else, or by two different imports,
    is no alias)."""
    imported, other = local_bindings(scope, classify)
    aliases = {k: v for k, v in outer.items() if k not in other and k not in imported}
    for name, paths in imported.items():
        if name not in other and len(paths) == 1:
            aliases[name] = next(iter(paths))
    return aliases


def scan(
    node: ast.AST, aliases: dict, visible: dict, uses: dict[str, list[int]], classify: Classify
) -> None:
    """Record the dotted names used under ``node``; ``aliases`` are those of its scope,
    ``visible`` those a function defined here sees (a class body's names it does not)."""
    if isinstance(node, ast.Attribute):
        names, root = [], node
        while isinstance(root, ast.Attribute):
            names.insert(0, root.attr)
            root = root.value
        if isinstance(root, ast.Name) and root.id in aliases:
            if not isinstance(node.ctx, ast.Load):
                names = names[:-1]
            if names:
                uses.setdefault(".".join([aliases[root.id], *names]), []).append(node.lineno)
            return
    if isinstance(node, SCOPES):
        for outside in outer_parts(node):
            scan(outside, aliases, visible, uses, classify)
        inner = scope_aliases(node, visible, classify)
        keep = visible if isinstance(node, ast.ClassDef) else inner
        for inside in inner_parts(node):
            scan(inside, inner, keep, uses, classify)
        return
    for child in ast.iter_child_nodes(node):
        scan(child, aliases, visible, uses, classify)


def outer_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope's node evaluated in the enclosing scope (decorators, defaults,
    base classes)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        parts = [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]
        return parts + getattr(node, "decorator_list", [])
    if isinstance(node, ast.ClassDef):
        return [*node.bases, *node.keywords, *node.decorator_list]
    return []


def inner_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope's node evaluated in the scope itself."""
    if isinstance(node, ast.Lambda):
        return [node.body]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.body
    return list(ast.iter_child_nodes(node))  # comprehensions


def local_bindings(scope: ast.AST, classify: Classify) -> tuple[dict[str, set[str]], set[str]]:
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
