"""The house's layering, as ARCHITECTURE.md draws it: every import goes down the package table (a package
imports only those its "depends on" column names), and no module imports itself back through others.
Imports under `if TYPE_CHECKING:` are for type hints only and never run, so they do not count.

A row names a package (`server/`), a sub-package (`server/api/`) or one module (`server/app.py`); a module
belongs to the longest row that holds it, so the layering goes on inside a split package."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| `(?P<path>[a-z_]+(?:/[a-z_]+)*(?:/|\.py))` \|.*\| (?P<depends>[^|]+) \|$")


def parse_layers(lines: list[str]) -> dict[str, set[str]]:
    """Row (`server.api`, `server.app`) → what it may import (rows, or single modules like `ivr.llm`)."""
    layers: dict[str, set[str]] = {}
    for line in lines:
        match = ROW.match(line.strip())
        if not match:
            continue
        name = match["path"].removesuffix("/").removesuffix(".py").replace("/", ".")
        depends = re.sub(r"\([^)]*\)", "", match["depends"])  # "(word lists)" explains, it does not allow
        if depends.strip() == "everything above":
            allowed = set(layers)
        else:
            allowed = set(re.findall(r"[a-z_]+(?:\.[a-z_]+)*", depends)) - {"stdlib"}
        layers[name] = allowed | {name}
    return layers


def declared_layers() -> dict[str, set[str]]:
    return parse_layers((ROOT / "ARCHITECTURE.md").read_text().splitlines())


def owner(module: str, layers: dict[str, set[str]]) -> str:
    """The longest row that holds a module: `server.api.auth` is `server.api`'s, `server.http` is `server`'s."""
    return max((row for row in layers if module == row or module.startswith(row + ".")), key=len)


def wrong_imports(graph: dict[str, set[str]], layers: dict[str, set[str]]) -> list[str]:
    """Imports the table does not allow. Naming a row allows what it holds, not the rows under it: `server`
    allows `server.http` but not `server.api.auth`; a single module (`ivr.llm`) allows what is under it."""
    wrong = []
    for module, targets in sorted(graph.items()):
        allowed = layers[owner(module, layers)]
        for target in sorted(targets):
            depth = owner(target, layers).count(".") + 1
            names = {".".join(target.split(".")[:n]) for n in range(depth, target.count(".") + 2)}
            if not names & allowed:
                wrong.append(f"{module} -> {target}")
    return wrong


def _top_packages(layers: dict[str, set[str]]) -> set[str]:
    return {row.split(".")[0] for row in layers}


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
    # A package split into rows has a row for each of its sub-packages, and every row is on disk.
    split = {row.rpartition(".")[0] for row in layers if "." in row}
    subpackages = {f"{parent}.{path.parent.name}" for parent in split
                   for path in (ROOT / parent.replace(".", "/")).glob("*/__init__.py")}
    assert subpackages <= set(layers), f"sub-packages missing from the table: {subpackages - set(layers)}"
    missing = [row for row in layers if not (ROOT / row.replace(".", "/") / "__init__.py").exists()
               and not (ROOT / (row.replace(".", "/") + ".py")).exists()]
    assert not missing, f"rows of ARCHITECTURE.md's table with nothing on disk: {missing}"


def test_every_import_goes_down_the_layers() -> None:
    layers = declared_layers()
    wrong = wrong_imports(import_graph(_top_packages(layers)), layers)
    assert not wrong, "imports against the layering in ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    circles = import_circles(import_graph(_top_packages(declared_layers())))
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def test_the_checks_catch_what_they_are_for() -> None:
    # A circle and an upward arrow are found (a check that finds nothing proves nothing).
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import server.app\n"
                     "def f():\n    from server.http import STORE\n")
    assert "server.app" not in _runtime_imports(tree) and "server.http" in _runtime_imports(tree)
    assert "server" not in declared_layers()["models"]


def test_rows_inside_a_package_layer_it() -> None:
    # A split package as the table draws server: the core at the bottom, two sub-packages beside each
    # other, one above both, the app on top. An arrow up or sideways is found, one down is not.
    layers = parse_layers([
        "| `a/` | low | stdlib |",
        "| `s/` | core | everything above |",
        "| `s/api/` | resources | a, s |",
        "| `s/web/` | channels | a, s |",
        "| `s/admin/` | dashboard | s, s.api (shapes), s.web |",
        "| `s/app.py` | the app | everything above |",
        "| `not a row` | | |",
    ])
    assert layers["s.api"] == {"a", "s", "s.api"} and layers["s.app"] == {"a", "s", "s.api", "s.web", "s.admin",
                                                                          "s.app"}
    assert owner("s.api.users", layers) == "s.api" and owner("s.http", layers) == "s" and owner("s", layers) == "s"
    graph = {"s.http": {"a.db", "s.api.users"}, "s.api.users": {"s.http", "s.web.join"},
             "s.admin.page": {"s.api.users", "s.web.join", "s.http", "s.app"}, "s.app": {"s.admin.page", "s.http"},
             "s.web.join": {"s.http"}, "a.db": {"s.http"}}
    assert wrong_imports(graph, layers) == ["a.db -> s.http", "s.admin.page -> s.app", "s.api.users -> s.web.join",
                                            "s.http -> s.api.users"]
