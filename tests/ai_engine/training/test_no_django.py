from __future__ import annotations

from tests.imports import loaded_after_import


def test_training_core_imports_no_django() -> None:
    modules = [
        "labels",
        "data",
        "losses",
        "metrics",
        "nets",
        "plots",
        "trainer",
        "evaluate",
        "importer",
        "cli",
        "augment",
        "camsheet",
        "jpeg_cache",
        "run",
        "__main__",
    ]
    imported = [f"ai_engine.training.{m}" for m in modules]
    assert loaded_after_import(imported, ["django"]) == []
