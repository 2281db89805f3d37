"""The bundled demonstration package(s) under ai_engine/packages/."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_engine.inference.package import ModelPackage

PACKAGES = Path(__file__).resolve().parents[3] / "ai_engine" / "packages"
DEMO = PACKAGES / "ophai-demo-screening"


def test_bundled_demo_package_loads_with_metrics() -> None:
    if not (DEMO / "model.json").is_file():
        pytest.skip("no bundled demonstration package")
    package = ModelPackage.load(DEMO, "cpu")
    card = package.card
    assert card.demonstration is True
    assert card.evidence.startswith("Demonstration model")
    assert "not for diagnosis" in card.intended_use.lower()
    validation = card.validation
    assert validation["split"] == "test"
    assert set(validation["per_label"]) == {label.code for label in card.labels}
    assert all(validation["per_label"][c]["auc"] is not None for c in validation["per_label"])
    assert validation["n_images"] == sum(validation["n_per_label"].values())
    assert "not redistributable" in card.training_data
    assert (DEMO / "model.safetensors").stat().st_size < 25 * 1024 * 1024
