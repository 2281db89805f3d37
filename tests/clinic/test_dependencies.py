"""The one-way dependency rule of DESIGN §1, read from the source with `ast`.

patients ← screening ← ai_engine ← reports: an app imports only itself, earlier apps and
clinic's base modules — at module level or inside a function. clinic's base modules (and the
clinic modules the apps import) import none of the four apps; the site shell (clinic/pages,
clinic/urls.py, the API and admin wiring) may import them all. The inference core imports no
Django and no app.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("patients", "screening", "ai_engine", "reports")
CLINIC_BASE = ("models", "audit", "roles", "env", "tasks", "media")
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
    assert all(len(source_files(app)) > 5 for app in APPS)


@pytest.mark.parametrize("app", APPS)
def test_an_app_imports_no_later_app(app):
    later = set(APPS[APPS.index(app) + 1 :])
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in source_files(app)
        for line, module in imported_modules(path)
        if top(module) in later
    ]
    assert found == []


def clinic_base_modules() -> set[str]:
    """The named base modules, the clinic modules the apps import, and what those import."""
    wanted = {f"clinic.{name}" for name in CLINIC_BASE}
    for app in APPS:
        for path in source_files(app):
            wanted |= {m for _line, m in imported_modules(path) if top(m) == "clinic"}
    modules: set[str] = set()
    while wanted:
        name = wanted.pop()
        path = ROOT / (name.replace(".", "/") + ".py")
        if name in modules or not path.exists():  # `from clinic.x import func` names no file
            continue
        modules.add(name)
        wanted |= {m for _line, m in imported_modules(path) if top(m) == "clinic"}
    return modules


def test_clinic_base_modules_import_none_of_the_apps():
    modules = clinic_base_modules()
    assert {f"clinic.{name}" for name in CLINIC_BASE} <= modules
    assert "clinic.settings" not in modules
    found = [
        f"{name}:{line} imports {module}"
        for name in sorted(modules)
        for line, module in imported_modules(ROOT / (name.replace(".", "/") + ".py"))
        if top(module) in APPS
    ]
    assert found == []


def test_the_inference_core_imports_no_django_and_no_app():
    files = source_files("ai_engine/inference")
    assert len(files) > 3
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(path)
        if top(module) in {"django", "rest_framework", "django_q", "clinic", *APPS}
        and not module.startswith("ai_engine.inference")
    ]
    assert found == []
