from __future__ import annotations

from tests.imports import loaded_after_import


def test_inference_core_imports_no_django() -> None:
    modules = [
        "card",
        "package",
        "decode",
        "preprocess",
        "quality",
        "cam",
        "areas",
        "predict",
        "summary",
        "results",
    ]
    imported = [f"ai_engine.inference.{m}" for m in modules]
    assert loaded_after_import(imported, ["django"]) == []


def test_card_module_needs_no_torch() -> None:
    assert loaded_after_import(["ai_engine.inference.card"], ["torch"], timeout=60) == []
