"""The package's shape: no import cycles between its modules, no module over ~500 lines, cluster
adapters independent of the store, the local executor and each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "celline_jobs_nb"
MAX_LINES = 520  # "about 500"

#: Cycles that existed before this test, outside schedulers/ (to be removed, never added to).
KNOWN_CYCLES: set[frozenset[str]] = set()
#: Modules over the limit before the whole package was checked (to be split, never added to).
KNOWN_LONG: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def package_imports(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """Modules of the package this one imports, wherever the import statement is (at the top, in a
    function, in a try or an if; not under TYPE_CHECKING): an import inside a function is a
    dependency all the same, run later. ``from P import name`` depends on P (its ``__init__``) unless
    ``name`` is a module of its own (``from . import samples``): then on that module only."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            for child in node.orelse if _is_type_checking(node) else [node.test, *node.body, *node.orelse]:
                self.visit(child)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names if a.name.startswith("celline_jobs_nb"))

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("celline_jobs_nb"):
                return
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)

    Visitor().visit(ast.parse(source))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    names = set(modules)
    graph = {}
    for name, path in modules.items():
        found = package_imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_walker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_walker_counts_imports_inside_functions_but_not_type_checking_ones():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import sub\n"
        "from .core import thing\n"
        "if TYPE_CHECKING:\n"
        "    from .typing_only import T\n"
        "def later():\n"
        "    from ..cli import main\n"
        "    import celline_jobs_nb.late\n"
    )
    modules = {"celline_jobs_nb.pkg", "celline_jobs_nb.pkg.sub", "celline_jobs_nb.pkg.core", "celline_jobs_nb.cli"}
    found = package_imports(source, "celline_jobs_nb.pkg.mod", False, modules)
    # a submodule imported by name is a dependency on it alone; a name, on the module that defines it
    assert found == {"celline_jobs_nb.pkg.sub", "celline_jobs_nb.pkg.core", "celline_jobs_nb.cli",
                     "celline_jobs_nb.late"}


def test_no_import_cycles_in_the_package():
    new = [c for c in cycles(import_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"


def test_no_module_over_about_500_lines():
    long = {name: n for p in PACKAGE.rglob("*.py") if (name := p.relative_to(PACKAGE).as_posix()) not in KNOWN_LONG
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over ~500 lines: {long}"


def test_cluster_adapters_import_neither_the_store_the_local_executor_nor_each_other():
    graph = import_graph()
    for family in ("slurm", "pbs", "batch", "celline"):
        for name, imports in graph.items():
            if not name.startswith(f"celline_jobs_nb.schedulers.{family}"):
                continue
            bad = {m for m in imports if m.startswith(("celline_jobs_nb.store", "celline_jobs_nb.schedulers.local"))}
            assert not bad, f"{name} imports {bad}"


def test_batch_schedulers_do_not_import_each_other():
    """slurm/, pbs/ and sge/ meet only in batch/ (the shared flow) and the registry: one asks
    another through the registry (the PBS wrappers' flavour asks the Slurm underneath), never by
    importing it; batch/ imports none of them."""
    families = ("slurm", "pbs", "sge")
    graph = import_graph()
    for family in (*families, "batch"):
        others = tuple(f"celline_jobs_nb.schedulers.{f}" for f in families if f != family)
        for name, imports in graph.items():
            if name.startswith(f"celline_jobs_nb.schedulers.{family}"):
                bad = {m for m in imports if m.startswith(others)}
                assert not bad, f"{name} imports {bad}"
