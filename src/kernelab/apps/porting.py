"""Port a PyTorch script to kernelab without running it: rewrite its torch and torchvision
imports to kernelab's, and list the torch and torchvision names it uses that kernelab lacks.

The script is only parsed (``ast``), never imported or executed; kernelab's own modules are
imported to look names up. Only the source spans of the import statements change (the module
of a ``from`` import, the names of an ``import``), so comments, formatting and everything
else stay byte for byte. An import of a torch module kernelab does not have
(``torch.distributions``, ``torchvision.models``) is left as it is and reported.

Names are followed from the imported aliases through attribute chains (``nn.Conv3d``,
``torch.fft.rfft``, ``T.ColorJitter``) with Python's scopes (a parameter or local variable of
the same name hides an alias); a kernelab class counts as having the attributes its
instances set (``torch.Tensor.grad``, ``nn.Module.training``). Methods of tensors
(``x.foo()``) are not checked: without types, a call on a pandas frame or a SummaryWriter
cannot be told from one on a tensor, so a missing tensor method is only found when its line
runs.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import io
import os
import re
import textwrap
import tokenize
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ..core.serialization import sync_folder
from .porting_scopes import dotted_uses

ROOTS = {"torch": "kernelab", "torchvision": "kernelab.vision"}

# kernelab modules whose names PyTorch uses for something else: never the port of torch's.
OWN_MODULES = {
    "kernelab.functional": "kernelab.functional is kernelab's own ops module",
    "kernelab.distributed": "kernelab.distributed is its own data parallelism, over MPI",
}

LEFT = "; import left as is"
UNCHECKED = "tensor methods (x.foo()) are not checked: a missing one fails at its line when run"


class PortError(ValueError):
    """A script that cannot be read, parsed or written back."""


@dataclass(frozen=True)
class Finding:
    """A torch or torchvision name kernelab lacks, where the script uses it."""

    name: str  # PyTorch's name: "torch.nn.Conv3d"
    lines: tuple[int, ...]
    why: str  # "is not in kernelab", "is not in kernelab.vision; import left as is", ...


@dataclass
class Port:
    """A ported script: its new text, how many import statements changed, the imports left as
    they are and the names kernelab lacks (each a :class:`Finding`, in line order)."""

    original: str
    text: str
    encoding: str = "utf-8"
    rewritten: int = 0
    kept: list[Finding] = field(default_factory=list)
    missing: list[Finding] = field(default_factory=list)


def kernelab_name(torch_name: str) -> str:
    """kernelab's dotted name for PyTorch's: ``torch.nn`` → ``kernelab.nn``, ``torchvision.x``
    → ``kernelab.vision.x``."""
    root, dot, rest = torch_name.partition(".")
    return ROOTS[root] + dot + rest


def lacking(torch_name: str) -> str:
    """How to say kernelab lacks a name of torch (or of torchvision)."""
    if torch_name.split(".")[0] == "torchvision":
        return "is not in kernelab.vision"
    own = OWN_MODULES.get(kernelab_name(torch_name))
    return f"is not in kernelab ({own})" if own else "is not in kernelab"


@cache
def module_of(torch_module: str) -> ModuleType | None:
    """kernelab's module for a PyTorch module name, imported, or None if kernelab has none."""
    name = kernelab_name(torch_module)
    if any(name == own or name.startswith(own + ".") for own in OWN_MODULES):
        return None
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing = error.name if isinstance(error, ModuleNotFoundError) else None
        if missing and (name == missing or name.startswith(missing + ".")):
            return None  # kernelab has no such module (nor, maybe, its package)
        raise PortError(f"cannot check {torch_module}: importing {name} failed: {error}") from None


@cache
def first_missing(torch_name: str) -> str | None:
    """The shortest prefix of a dotted torch name that kernelab lacks, or None if it has all:
    ``torch.nn.Conv3d.weight`` → ``torch.nn.Conv3d``."""
    parts = torch_name.split(".")
    found: Any = module_of(parts[0])
    for i, part in enumerate(parts[1:], start=2):
        prefix = ".".join(parts[:i])
        if kernelab_name(prefix) in OWN_MODULES:
            return prefix
        if has_attribute(found, part):
            found = getattr(found, part, None)
        elif isinstance(found, ModuleType) and module_of(prefix) is not None:
            found = module_of(prefix)  # a submodule not imported yet
        else:
            return prefix
    return None


def has_attribute(found: Any, name: str) -> bool:
    """Whether kernelab's object has the attribute; for a class, also one its instances set
    (``torch.nn.Module.training``, ``torch.Tensor.grad``)."""
    if hasattr(found, name):
        return True
    if not isinstance(found, type):
        return False
    names = instance_attributes(found)
    return names is None or name in names


@cache
def instance_attributes(cls: type) -> frozenset[str] | None:
    """The attributes a kernelab class's methods set on ``self``, read from its source (and
    its kernelab bases'); None when a source cannot be read."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("kernelab"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            return None
        names.update(filter(None, map(set_on_self, ast.walk(tree))))
    return frozenset(names)


def set_on_self(node: ast.AST) -> str | None:
    """The attribute a node sets on ``self`` (``self.x = ...``,
    ``object.__setattr__(self, "x", ...)``, ``setattr(self, "x", ...)``), if it does."""
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
        return node.attr if isinstance(node.value, ast.Name) and node.value.id == "self" else None
    if not isinstance(node, ast.Call) or len(node.args) < 2:
        return None
    function, (target, name) = node.func, node.args[:2]
    setter = (isinstance(function, ast.Attribute) and function.attr == "__setattr__") or (
        isinstance(function, ast.Name) and function.id == "setattr"
    )
    named = isinstance(name, ast.Constant) and isinstance(name.value, str)
    is_self = isinstance(target, ast.Name) and target.id == "self"
    return name.value if setter and named and is_self else None


def is_torch(module: str | None) -> bool:
    """Whether a module name is torch's or torchvision's (``torchx`` is neither)."""
    return module is not None and module.split(".")[0] in ROOTS


# ---- reading and writing
def read_script(path: str | os.PathLike) -> tuple[bytes, str, str]:
    """A script's bytes, its text and its encoding (PEP 263: a coding line or UTF-8)."""
    path = Path(path)
    if not path.exists():
        raise PortError(f"no script at {path}")
    try:
        raw = path.read_bytes()
        encoding = tokenize.detect_encoding(io.BytesIO(raw).readline)[0]
        return raw, raw.decode(encoding), encoding
    except (OSError, SyntaxError, UnicodeDecodeError) as error:
        raise PortError(f"cannot read {path}: {error}") from None


def port_file(path: str | os.PathLike) -> Port:
    """Port the script at ``path`` (read, not run)."""
    _, text, encoding = read_script(path)
    port = port_source(text, str(path))
    port.encoding = encoding
    return port


def write_ported(path: str | os.PathLike, port: Port) -> Path:
    """Replace the script at ``path`` with its port, atomically, after keeping the original
    in ``<path>.orig``; returns that path.

    The original is never lost: an existing ``.orig`` is not overwritten (a PortError), the
    new text goes to a temporary file that replaces the script in one rename, and if anything
    fails on the way the script is untouched and the ``.orig`` made here is removed. A
    symbolic link is followed: the file it points to is ported, the link stays.
    """
    path = Path(path).resolve() if Path(path).is_symlink() else Path(path)
    raw, text, _ = read_script(path)
    if text != port.original:
        raise PortError(f"{path} changed while it was being ported; run again")
    orig = path.with_name(path.name + ".orig")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.port")
    try:
        durable_write(orig, raw, exclusive=True)
    except FileExistsError:
        raise PortError(f"{orig} exists: move it away first, so no original is lost") from None
    try:
        mode = path.stat().st_mode & 0o7777
        os.chmod(orig, mode)
        durable_write(temporary, port.text.encode(port.encoding))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        orig.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
    return orig


def durable_write(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (``exclusive``: only a new file)."""
    with open(path, "xb" if exclusive else "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


# ---- the port
def port_source(text: str, filename: str = "<script>") -> Port:
    """Port a script's source text: rewrite its torch imports, find the names kernelab lacks."""
    try:
        tree = ast.parse(text, filename)
    except (SyntaxError, ValueError) as error:  # ValueError: null bytes, before Python 3.12
        where = f"{filename}:{error.lineno}" if getattr(error, "lineno", None) else filename
        raise PortError(f"{where}: cannot parse: {getattr(error, 'msg', error)}") from None
    port = Port(original=text, text=text)
    edits: list[tuple[int, int, str]] = []
    found: dict[tuple[str, str], list[int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            new = import_edits(node, text, found)
            edits += new
            port.rewritten += bool(new)
    for name, lines in chain_uses(tree).items():
        missing = first_missing(name)
        if missing is not None:
            found.setdefault((missing, lacking(missing)), []).extend(lines)
    for start, end, new_text in sorted(edits, reverse=True):
        port.text = port.text[:start] + new_text + port.text[end:]
    findings = [Finding(n, tuple(sorted(set(ls))), why) for (n, why), ls in found.items()]
    findings.sort(key=lambda f: (f.lines, f.name))
    port.kept = [f for f in findings if f.why.endswith(LEFT)]
    port.missing = [f for f in findings if not f.why.endswith(LEFT)]
    return port


def import_edits(
    node: ast.Import | ast.ImportFrom, text: str, found: dict[tuple[str, str], list[int]]
) -> list[tuple[int, int, str]]:
    """The edits ``(start, end, new text)`` that port one import statement; what it imports
    that kernelab lacks goes into ``found``."""
    if isinstance(node, ast.ImportFrom):
        module = None if node.level else as_torch(node.module)
        if module is None:
            return []
        if module_of(module) is None:
            if is_torch(node.module):
                why = lacking(module) + LEFT
                found.setdefault((module, why), []).append(node.lineno)
            return []
        for alias in node.names:
            missing = alias.name != "*" and first_missing(f"{module}.{alias.name}")
            if missing:
                found.setdefault((missing, lacking(missing)), []).append(node.lineno)
        if not is_torch(node.module):  # already kernelab's: checked, kept
            return []
        start, end = from_module_span(node, text)
        return [(start, end, kernelab_name(module))]
    edits = []
    for alias in node.names:
        if not is_torch(alias.name):
            continue
        if module_of(alias.name) is None:
            why = lacking(alias.name) + LEFT
            found.setdefault((alias.name, why), []).append(node.lineno)
            continue
        root = alias.name.split(".")[0]
        new = f"{kernelab_name(alias.name)} as {alias.asname}" if alias.asname else None
        edits.append((*span(alias, text), new or f"{ROOTS[root]} as {root}"))
    return edits


def offset(text: str, lineno: int, col: int) -> int:
    """The index in ``text`` of ``ast``'s position (1-based line, column in UTF-8 bytes)."""
    starts = line_starts(text)
    line = text[starts[lineno - 1] : starts[lineno] if lineno < len(starts) else len(text)]
    return starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8"))


@lru_cache(maxsize=4)  # one script at a time, asked once per import
def line_starts(text: str) -> list[int]:
    """Where each line starts, lines ending as Python's tokenizer ends them (\\n, \\r\\n, \\r)."""
    return [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]


def span(node: ast.AST, text: str) -> tuple[int, int]:
    """Where a node's source is in ``text``: ``text[start:end]``."""
    start = offset(text, node.lineno, node.col_offset)
    return start, offset(text, node.end_lineno, node.end_col_offset)


def from_module_span(node: ast.ImportFrom, text: str) -> tuple[int, int]:
    """Where the module name of ``from <module> import ...`` is in ``text``."""
    start = offset(text, node.lineno, node.col_offset)
    head = text[start : span(node.names[0], text)[0]]  # "from torch.nn import (\n    "
    lines = io.StringIO(head).readlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    first = last = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(head).readline):
            if token.type == tokenize.NAME and token.string == "import":
                break
            if token.string != "from" and token.type in (tokenize.NAME, tokenize.OP):
                first = first or token.start
                last = token.end
    except tokenize.TokenError:  # the head ends inside the statement; "import" came first
        pass
    if first is None or last is None:
        raise PortError(f"line {node.lineno}: cannot find the module of this import")
    return start + starts[first[0] - 1] + first[1], start + starts[last[0] - 1] + last[1]


# ---- names used
def chain_uses(tree: ast.Module) -> dict[str, list[int]]:
    """Every dotted torch name the script reaches from an alias of a torch module kernelab
    stands for, with its lines (see :func:`porting_scopes.dotted_uses`)."""
    return dotted_uses(tree, ported_alias)


def as_torch(module: str | None) -> str | None:
    """PyTorch's name of a torch, torchvision or kernelab module (so a script already ported
    is checked too): ``kernelab.vision.transforms`` → ``torchvision.transforms``."""
    if is_torch(module):
        return module
    root, dot, rest = (module or "").partition(".")
    if root != "kernelab":
        return None
    vision, vision_dot, vision_rest = rest.partition(".")
    return "torchvision" + vision_dot + vision_rest if vision == "vision" else "torch" + dot + rest


def ported_alias(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str | None:
    """The torch name an import binds to ``alias``'s name, if it is one kernelab's names stand
    for; None for anything else (other modules, imports left as they are)."""
    if isinstance(node, ast.ImportFrom):
        module = None if node.level else as_torch(node.module)
        if module is None or module_of(module) is None:
            return None
        return f"{module}.{alias.name}"
    module = as_torch(alias.name)
    if module is None:
        return None
    if alias.asname:
        return module if module_of(module) is not None else None
    if is_torch(alias.name):
        return module.split(".")[0]  # ``import torch.fft``, even left as is, binds ``torch``
    return "torch" if alias.name.split(".")[0] == "kernelab" else None


# ---- what the command prints
def report(port: Port, filename: str) -> list[str]:
    """One line per import left as is and per name kernelab lacks (``file:line: ...``), then a
    summary line."""
    lines = []
    for finding in sorted(port.kept + port.missing, key=lambda f: (f.lines, f.name)):
        first, *more = finding.lines
        also = f" (also line{'s' * (len(more) > 1)} {', '.join(map(str, more))})" if more else ""
        lines.append(f"{filename}:{first}: {finding.name} {finding.why}{also}")
    statements = f"{port.rewritten} import statement{'s' * (port.rewritten != 1)} rewritten"
    kept = f", {len(port.kept)} left as is" if port.kept else ""
    count = len(port.missing)
    lacks = f"{count} name{'s' * (count != 1)} kernelab lacks" if count else "no missing name found"
    lines.append(f"{filename}: {statements}{kept}; {lacks}; {UNCHECKED}")
    return lines


def diff(port: Port, filename: str) -> str:
    """The port as a unified diff of the script."""
    return "".join(
        difflib.unified_diff(
            port.original.splitlines(keepends=True),
            port.text.splitlines(keepends=True),
            fromfile=filename,
            tofile=f"{filename} (kernelab)",
        )
    )
