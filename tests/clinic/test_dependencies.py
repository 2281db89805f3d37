"""The one-way dependency rule of DESIGN §1, read from the source with `ast`.

core ← patients ← screening ← ai_engine ← reports ← clinic: a package imports only itself and the
packages before it — at module level, inside a function or under TYPE_CHECKING. `core` (the
foundation) imports none of ours; `clinic` (settings, urls and the site shell) may import them all
and none imports it. The inference core imports no Django and nothing of ours outside itself. No
module imports itself back through others (no import circle), inside a package or across them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("patients", "screening", "ai_engine", "reports")
# Bottom to top: each imports only itself and those before it.
LAYERS = ("core", *APPS, "clinic")
OURS = set(LAYERS)
DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import in the file, wherever it is written."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package.pop()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from clinic import views` imports clinic.views
                yield node.lineno, f"{module}.{alias.name}"
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            first = node.args[0] if node.args else None
            if (
                name in DYNAMIC_IMPORTS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value


def top(module: str) -> str:
    return module.split(".", 1)[0]


def source_files(folder: str) -> list[Path]:
    return sorted(path for path in (ROOT / folder).rglob("*.py") if "migrations" not in path.parts)


def test_the_walker_sees_lazy_relative_and_dynamic_imports(tmp_path):
    source = tmp_path / "views.py"
    source.write_text(
        "import importlib\n"
        "from . import selectors\n"
        "def view():\n"
        "    from reports.models import Report\n"
        "    return importlib.import_module('ai_engine.views')\n"
    )
    found = sorted(imported_modules(source, "screening.views"))
    assert found == [
        (1, "importlib"),
        (2, "screening"),
        (2, "screening.selectors"),
        (4, "reports.models"),
        (4, "reports.models.Report"),
        (5, "ai_engine.views"),
    ]
    assert all(len(source_files(package)) > 5 for package in LAYERS)


def module_graph() -> dict[str, set[str]]:
    """Our modules (migrations aside) and the modules of ours each one imports."""
    files = {module_name(path): path for package in LAYERS for path in source_files(package)}
    return {
        module: {name for _line, name in imported_modules(path) if name in files and name != module}
        for module, path in files.items()
    }


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(circles)


def test_the_circle_finder_finds_direct_and_long_circles():
    graph = {
        "a.results": {"a.areas"},
        "a.areas": {"a.results", "a.preprocess"},
        "a.preprocess": set(),
        "b.x": {"b.y"},
        "b.y": {"b.z"},
        "b.z": {"b.x", "a.preprocess"},
    }
    assert import_circles(graph) == [["a.areas", "a.results"], ["b.x", "b.y", "b.z"]]
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_itself_and_the_packages_below(package):
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in source_files(package)
        for line, module in imported_modules(path)
        if top(module) in above
    ]
    assert found == []


def test_core_and_the_apps_leave_the_shell_alone():
    """Spelled out for the reader: `clinic` is the top, nothing of ours but itself imports it."""
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for package in ("core", *APPS)
        for path in source_files(package)
        for line, module in imported_modules(path)
        if top(module) == "clinic"
    ]
    assert found == []
    assert len(source_files("core")) > 10


def test_core_migrations_depend_on_no_app_of_ours():
    found = []
    for path in sorted((ROOT / "core" / "migrations").glob("0*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Tuple)
                and len(node.elts) == 2
                and all(isinstance(elt, ast.Constant) for elt in node.elts)
                and node.elts[0].value in OURS - {"core"}
            ):
                found.append(f"{path.name} depends on {node.elts[0].value}.{node.elts[1].value}")
    assert found == []


def test_no_module_of_ours_imports_itself_back():
    graph = module_graph()
    assert "ai_engine.inference.areas" in graph["ai_engine.inference.predict"]
    assert import_circles(graph) == []


def test_the_inference_core_imports_no_django_and_nothing_of_ours():
    files = source_files("ai_engine/inference")
    assert len(files) > 3
    django = {"django", "rest_framework", "django_q", "django_filters", "drf_spectacular"}
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(path)
        if top(module) in django | OURS and not module.startswith("ai_engine.inference")
    ]
    assert found == []
