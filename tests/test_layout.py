"""The package's layout rules, read from the source with ``ast``: no private name crosses a
module, no import cycle, the library never imports the command line, and every package says
in its docstring what lives there."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "kernelab"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` for every import in a module, anywhere in it, resolved to
    absolute kernelab module names (``names`` are what a ``from`` import takes)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names], node.lineno))
    return [entry for entry in found if entry[0].split(".")[0] == "kernelab"]


def edges(name: str) -> set[str]:
    """The kernelab modules a module imports (a ``from package import module`` counts as the
    module)."""
    out = set()
    for target, names, _ in imports(name):
        submodules = {f"{target}.{n}" for n in names} & MODULES.keys()
        out |= submodules or ({target} & MODULES.keys())
        if names and len(submodules) < len(names) and target in MODULES:
            out.add(target)
    return out - {name}


def test_no_private_name_crosses_a_module():
    crossings = []
    for name in MODULES:
        for target, names, line in imports(name):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            crossings += [f"{name}:{line} imports {target}.{n}" for n in private]
        tree = ast.parse(MODULES[name].read_text())
        imported_modules = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if f"{node.module}.{alias.name}".lstrip(".") in MODULES
            or alias.name in {m.rpartition(".")[2] for m in MODULES}
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported_modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                crossings.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not crossings, "\n".join(crossings)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module (the import cycles)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle():
    # A module always runs its packages' __init__ first; an explicit import of one is no edge.
    graph = {name: {t for t in edges(name) if not name.startswith(t + ".")} for name in MODULES}
    assert strongly_connected(graph) == []


def test_the_library_never_imports_the_command_line():
    offenders = [
        f"{name} imports {target}"
        for name in MODULES
        if not name.startswith("kernelab.cli")
        for target in edges(name)
        if target == "kernelab.cli" or target.startswith("kernelab.cli.")
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize(
    "package", sorted(n for n, p in MODULES.items() if p.name == "__init__.py")
)
def test_every_package_says_what_lives_there(package):
    docstring = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert docstring and len(docstring.split()) >= 6, f"{package} needs a module docstring"


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
