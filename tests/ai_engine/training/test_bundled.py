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


SCREENING = PACKAGES / "ophai-screening"


def test_bundled_screening_package_card_tells_where_it_comes_from() -> None:
    if not (SCREENING / "model.json").is_file():
        pytest.skip("no bundled screening package")
    package = ModelPackage.load(SCREENING, "cpu")
    card = package.card
    assert (card.name, card.architecture, card.input_size) == (
        "ophai-screening",
        "mobilenetv2_100",
        224,
    )
    assert card.architecture_kwargs == {"pad_type": "same"}
    assert card.mean == (0.5, 0.5, 0.5) and card.std == (0.50196, 0.50196, 0.50196)
    assert [label.code for label in card.labels] == ["N", "C", "G"]
    assert card.demonstration is True
    assert "research use — not for diagnosis" in card.intended_use.lower()
    assert "Apache-2.0" in card.training_data and "not redistributable" in card.training_data
    assert "Reproduce with: python manage.py train_model" in card.training_data
    validation = card.validation
    assert validation["split"] == "test" and validation["n_images"] == 297
    ci = validation["ci95"]
    assert ci["unit"] == "patient"
    assert ci["macro_f1"][0] <= validation["macro_f1"] <= ci["macro_f1"][1]
    for code, entry in validation["per_label"].items():
        low, high = ci["per_label"][code]["auc"]
        assert low <= entry["auc"] <= high
    assert (SCREENING / "model.safetensors").stat().st_size < 25 * 1024 * 1024
    assert not (SCREENING / "checkpoint.pt").exists()
