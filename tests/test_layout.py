"""The package's shape (issue 14's "Done when"): no import cycles, each layer imports only
its own layer or lower ones, and no module over 600 lines.

The import graph is read from the source with ``ast``, not by importing: every ``import``
anywhere in a module counts, inside functions too (an import moved into a function still
runs, it only runs later, and hiding a cycle there is what this test is for). Imports
under ``if TYPE_CHECKING:`` do not count: they never execute. Imports that only
``importlib.import_module`` makes (the backend registry's lazy loading) are invisible here.

Packages: ``import hwbench.a.b`` also runs ``hwbench/a/__init__.py``. That implicit edge
counts where it can run code at that moment: into a package that is not an ancestor of the
importing module (an ancestor's ``__init__`` has already run, or is running, before the
importing module's body starts). ``from hwbench.a import b`` where ``b`` is a submodule is
an edge to ``hwbench.a.b`` (and, by the rule above, to ``hwbench.a``), not only to
``hwbench.a``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import hwbench

PACKAGE_DIR = Path(hwbench.__file__).resolve().parent
MAX_LINES = 600

# Top to bottom: a module may import its own layer or lower ones. A module's layer is that
# of its longest listed prefix ("hwbench" itself is only the package's ``__init__``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("hwbench", "hwbench.pytest_plugin")),
    ("cli", ("hwbench.cli",)),
    ("harness", ("hwbench.harness",)),
    # sample inputs for the zoo's models and the model suite
    ("models", ("hwbench.models", "hwbench.datasets")),
    ("graph", ("hwbench.graph",)),
    ("backends", ("hwbench.backends",)),
    ("kernels", ("hwbench.kernels",)),
    # the error types, the version, and the JSON/atomic-file helpers every layer uses
    ("errors", ("hwbench.errors", "hwbench.version", "hwbench.files")),
]


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    """``hwbench/a/b.py`` -> ``hwbench.a.b``; ``hwbench/a/__init__.py`` -> ``hwbench.a``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` that can execute (not ``if TYPE_CHECKING:``)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children: list[ast.AST] = list(node.orelse)
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _import_nodes(child)


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a ``from X import ...`` names, relative forms resolved."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` (at ``path``) imports, directly."""
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        source = _absolute(node, name, path.name == "__init__.py")
        submodules = {f"{source}.{alias.name}" for alias in node.names} & known
        targets.update(submodules)
        if len(submodules) < len(node.names):  # a name defined in ``source`` itself
            targets.add(source)
    return {t for t in targets if t in known}


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """module -> the modules importing it runs: its imports, plus the ``__init__`` of each
    package they sit in that is not already loaded (not an ancestor of the importer)."""
    modules = package_modules(root)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        direct = imported_modules(name, path, known)
        implicit = {p for t in direct for p in _ancestors(t)} - _ancestors(name) - {name}
        graph[name] = (direct | (implicit & known)) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # iterative: the graph is deep enough to matter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
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

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def _cycle_edges(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]


def _covers(prefix: str, name: str) -> bool:
    """``prefix`` is ``name`` or a package above it; the root package covers only itself
    (else every module would fall in the entry points' layer, unlisted ones too)."""
    if name == prefix:
        return True
    return "." in prefix and name.startswith(prefix + ".")


def layer_of(name: str) -> int:
    """The index in ``LAYERS`` (0 is the top) of the longest listed prefix of ``name``."""
    best, best_length = None, -1
    for position, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _covers(prefix, name) and len(prefix) > best_length:
                best, best_length = position, len(prefix)
    if best is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a higher layer than the importer's, as "a (layer) -> b (layer)"."""
    out = []
    for name in sorted(graph):
        for target in sorted(graph[name]):
            if layer_of(target) < layer_of(name):
                out.append(f"{name} ({LAYERS[layer_of(name)][0]}) -> {target} "
                           f"({LAYERS[layer_of(target)][0]})")
    return out


def long_modules(root: Path = PACKAGE_DIR, limit: int = MAX_LINES) -> list[str]:
    out = []
    for name, path in package_modules(root).items():
        lines = len(path.read_text().splitlines())
        if lines > limit:
            out.append(f"{name} ({lines} lines)")
    return out


# -- the package -------------------------------------------------------------------------------
def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles (each: its modules' imports among themselves):\n" + (
        "\n".join("  " + "; ".join(_cycle_edges(c, graph)) for c in found))


def test_layers_import_only_downwards():
    order = " -> ".join(name for name, _ in LAYERS)
    bad = upward_imports(import_graph())
    assert not bad, f"imports of a higher layer (order {order}):\n  " + "\n  ".join(bad)


def test_no_module_over_600_lines():
    bad = long_modules()
    assert not bad, f"modules over {MAX_LINES} lines:\n  " + "\n  ".join(bad)


def test_every_module_has_a_layer():
    for name in package_modules():
        layer_of(name)


# -- the checks themselves, on planted packages ----------------------------------------------
def _plant(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def planted(tmp_path: Path):
    def make(files: dict[str, str]) -> dict[str, set[str]]:
        return import_graph(_plant(tmp_path / "pkg", {"__init__.py": "", **files}))
    return make


def test_a_cycle_through_an_import_inside_a_function_is_found(planted):
    graph = planted({"a.py": "import pkg.b\n",
                     "b.py": "def f():\n    from pkg import a\n    return a\n"})
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_type_checking_imports_do_not_count(planted):
    graph = planted({"a.py": "import pkg.b\n",
                     "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from pkg.a import X\nelse:\n    import pkg.c\n",
                     "c.py": ""})
    assert graph["pkg.b"] == {"pkg.c"}
    assert cycles(graph) == []


def test_relative_and_submodule_imports_resolve(planted):
    graph = planted({"sub/__init__.py": "from .x import y\n", "sub/x.py": "from .. import c\n",
                     "c.py": "from pkg.sub import x\n"})
    assert graph["pkg.sub"] == {"pkg.sub.x"}
    assert graph["pkg.sub.x"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.sub", "pkg.sub.x"}  # importing sub.x runs sub's __init__
    assert cycles(graph) == [["pkg.c", "pkg.sub", "pkg.sub.x"]]


def test_a_package_init_that_reexports_its_modules_is_no_cycle(planted):
    graph = planted({"sub/__init__.py": "from pkg.sub.x import f\nfrom pkg.sub.y import g\n",
                     "sub/x.py": "from pkg.sub import y\n", "sub/y.py": "import pkg.other\n",
                     "other.py": ""})
    assert cycles(graph) == []


def test_a_package_init_that_imports_its_importer_is_a_cycle(planted):
    graph = planted({"sub/__init__.py": "from pkg import user\n", "sub/x.py": "",
                     "user.py": "from pkg.sub.x import f\n"})
    assert cycles(graph) == [["pkg.sub", "pkg.user"]]


def test_upward_imports_and_long_modules_are_named(tmp_path: Path):
    root = _plant(tmp_path / "hwbench", {
        "__init__.py": "", "errors.py": "", "kernels/__init__.py": "",
        "kernels/spec.py": "import hwbench.errors\n" + "x = 1\n" * MAX_LINES,
        "backends/__init__.py": "", "backends/base.py": "from hwbench.kernels import spec\n",
        "graph/__init__.py": "", "graph/ir.py": "def f():\n    import hwbench.harness.x\n",
        "harness/__init__.py": "", "harness/x.py": "import hwbench.graph.ir\n" * (MAX_LINES + 1)})
    graph = import_graph(root)
    assert upward_imports(graph) == ["hwbench.graph.ir (graph) -> hwbench.harness (harness)",
                                     "hwbench.graph.ir (graph) -> hwbench.harness.x (harness)"]
    assert long_modules(root) == ["hwbench.harness.x (601 lines)", "hwbench.kernels.spec "
                                  f"({MAX_LINES + 1} lines)"]


def test_a_module_in_no_layer_is_named():
    with pytest.raises(AssertionError, match="hwbench.newcomer is in no layer"):
        layer_of("hwbench.newcomer")
    assert LAYERS[layer_of("hwbench")][0] == "entry points"
    assert LAYERS[layer_of("hwbench.harness.results.compare")][0] == "harness"
