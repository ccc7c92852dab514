"""The house's layering, as ARCHITECTURE.md draws it: every import goes down the package table (a package
imports only those its "depends on" column names), and no module imports itself back through others.
Imports under `if TYPE_CHECKING:` are for type hints only and never run, so they do not count."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| `(?P<package>[a-z_]+)/` \|.*\| (?P<depends>[^|]+) \|$")


def declared_layers() -> dict[str, set[str]]:
    """Package → what it may import (package names, or single modules like `ivr.llm`), from the table."""
    layers: dict[str, set[str]] = {}
    for line in (ROOT / "ARCHITECTURE.md").read_text().splitlines():
        match = ROW.match(line.strip())
        if not match:
            continue
        depends = re.sub(r"\([^)]*\)", "", match["depends"])  # "(word lists)" explains, it does not allow
        if depends.strip() == "everything above":
            allowed = set(layers)
        else:
            allowed = set(re.findall(r"[a-z_]+(?:\.[a-z_]+)*", depends)) - {"stdlib"}
        layers[match["package"]] = allowed | {match["package"]}
    return layers


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Every module named by an import that can run (at load or inside a function)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(packages: set[str]) -> dict[str, set[str]]:
    modules = {_module_name(path): path for package in packages for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for imported in _runtime_imports(ast.parse(path.read_text(), str(path))):
            while imported and imported not in modules:  # `from pkg.mod import func` → pkg.mod
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                    circles.append(sorted(component))
    return circles


def test_the_table_names_every_package() -> None:
    layers = declared_layers()
    on_disk = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk <= set(layers), f"packages missing from ARCHITECTURE.md's table: {on_disk - set(layers)}"


def test_every_import_goes_down_the_layers() -> None:
    layers = declared_layers()
    wrong = []
    for module, targets in import_graph(set(layers)).items():
        allowed = layers[module.split(".")[0]]
        for target in sorted(targets):
            prefixes = {".".join(target.split(".")[:n]) for n in range(1, target.count(".") + 2)}
            if not prefixes & allowed:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layering in ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    circles = import_circles(import_graph(set(declared_layers())))
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def test_the_checks_catch_what_they_are_for() -> None:
    # A circle and an upward arrow are found (a check that finds nothing proves nothing).
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import server.app\n"
                     "def f():\n    from server.http import STORE\n")
    assert "server.app" not in _runtime_imports(tree) and "server.http" in _runtime_imports(tree)
    assert "server" not in declared_layers()["models"]
