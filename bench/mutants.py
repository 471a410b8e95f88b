"""Mutants of a Python file, made with ``ast``, one small change each.

Operators: comparison swaps (``<`` ↔ ``<=``, ``==`` ↔ ``!=``, ``is`` ↔ ``is not``, ``in`` ↔
``not in``), arithmetic swaps (``+`` ↔ ``-``, ``*`` ↔ ``/``, ``//`` → ``*``, ``**`` → ``*``,
in-place too), integers ±1, floats halved (``0.5`` → ``0.25``, ``0.0`` → ``1.0``), ``True`` ↔
``False``, ``and`` ↔ ``or``, ``not x`` → ``x``, ``return x`` → ``return None``, and a
statement replaced by ``pass`` (a call, an in-place update, or a store into an attribute or
item: deleting a plain local assignment only raises NameError, which any test catches).

Not mutated, because the change would be noise rather than a question about the tests:
docstrings and every string (error messages, f-strings), type annotations (not evaluated),
``raise`` and ``assert`` statements, ``except`` bodies, and the body of an ``if`` that only
raises (code reachable only on error paths: its condition is still mutated), and calls that
only warn or log.
"""

from __future__ import annotations

import ast
from pathlib import Path

SWAPS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Add: ast.Sub, ast.Sub: ast.Add,
    ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult,
    ast.And: ast.Or, ast.Or: ast.And,
}  # fmt: skip
SYMBOLS = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**",
    ast.And: "and", ast.Or: "or",
}  # fmt: skip
QUIET_CALLS = {"warn", "warning", "debug", "info", "log", "notice"}


# ---- generating mutants


def _only_raises(body: list[ast.stmt]) -> bool:
    return all(isinstance(s, ast.Raise) for s in body)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _is_quiet_call(stmt: ast.stmt) -> bool:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    func = call.func if isinstance(call, ast.Call) else None
    return isinstance(func, ast.Attribute) and func.attr in QUIET_CALLS


def _replace(holder: list, index: int, new):
    def apply():
        holder[index] = new

    return apply


def _setter(obj, name: str, value):
    return lambda: setattr(obj, name, value)


def _statement_sites(stmt: ast.stmt, holder: list, index: int):
    """Deletion and ``return None`` sites of one statement."""
    stored = isinstance(stmt, ast.Assign) and any(
        isinstance(t, ast.Attribute | ast.Subscript) for t in stmt.targets
    )
    if isinstance(stmt, ast.AugAssign) or stored or isinstance(stmt, ast.Expr):
        yield stmt, "delete", "statement -> pass", _replace(holder, index, ast.Pass())
    value = stmt.value if isinstance(stmt, ast.Return) else None
    if value is not None and not (isinstance(value, ast.Constant) and value.value is None):
        yield stmt, "return", "return x -> return None", _setter(stmt, "value", None)


def _expression_sites(node: ast.AST):
    """Operator and constant sites of one expression node."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in SWAPS:
                new = SWAPS[type(op)]
                yield (
                    node,
                    "compare",
                    f"{SYMBOLS[type(op)]} -> {SYMBOLS[new]}",
                    _replace(node.ops, i, new()),
                )
    elif isinstance(node, ast.BinOp | ast.AugAssign | ast.BoolOp) and type(node.op) in SWAPS:
        kind = "boolean" if isinstance(node, ast.BoolOp) else "arithmetic"
        new = SWAPS[type(node.op)]
        text = f"{SYMBOLS[type(node.op)]} -> {SYMBOLS[new]}"
        yield node, kind, text, _setter(node, "op", new())
    elif isinstance(node, ast.Constant) and type(node.value) in (bool, int, float):
        value = node.value
        if isinstance(value, bool):
            changes = [not value]
        elif isinstance(value, int):
            changes = [value + 1, value - 1]
        else:
            changes = [value / 2 if value else 1.0]
        for new in changes:
            yield node, "constant", f"{value!r} -> {new!r}", _setter(node, "value", new)


def sites(tree: ast.AST):
    """Every mutable site, in a fixed order: (node, operator, description, apply)."""

    def visit(node: ast.AST):
        if isinstance(node, ast.JoinedStr | ast.Raise | ast.Assert | ast.ExceptHandler):
            return
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "decorator_list"):
                continue
            if isinstance(node, ast.If) and field == "body" and _only_raises(value):
                continue
            if isinstance(value, ast.AST):
                yield from _expression_sites(value) if not isinstance(value, ast.stmt) else ()
                yield from visit(value)
            elif isinstance(value, list):
                yield from visit_list(value)

    def visit_list(items: list):
        for i, item in enumerate(items):
            if not isinstance(item, ast.AST):
                continue
            if isinstance(item, ast.stmt):
                if _is_docstring(item) or _is_quiet_call(item):
                    continue
                yield from _statement_sites(item, items, i)
                if isinstance(item, ast.AugAssign):
                    yield from _expression_sites(item)
            else:
                yield from _expression_sites(item)
            yield from visit(item)

    yield from visit(tree)


def mutants(path: Path, root: Path) -> list[dict]:
    """The mutants of one source file, each as a record without a result yet (ids are
    ``path:k`` with the path relative to ``root``)."""
    rel = path.relative_to(root).as_posix()
    found = []
    for k, (node, operator, text, _) in enumerate(sites(ast.parse(path.read_text()))):
        found.append({"id": f"{rel}:{k}", "file": rel, "line": node.lineno,
                      "operator": operator, "change": text})  # fmt: skip
    return found


def mutated_source(path: Path, k: int) -> str:
    """The source of ``path`` with its k-th site changed."""
    tree = ast.parse(path.read_text())
    for i, (_, _, _, apply) in enumerate(sites(tree)):
        if i == k:
            apply()
            return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    raise IndexError(f"{path} has no mutation site {k}")
