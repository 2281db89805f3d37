"""The bundled demonstration package(s) under ai_engine/packages/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from ai_engine.inference.cam import compute_cams
from ai_engine.inference.package import ModelPackage
from ai_engine.inference.preprocess import detect_fundus, fov_mask, model_square, normalise

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


def test_bundled_screening_heatmaps_stay_inside_the_fundus(shared_data: Path) -> None:
    """The card's CAM puts little heat outside the fundus circle of held-out glaucoma photos.

    LayerCAM on ``bn2`` + ``blocks.4`` (the first card) lit a position-fixed band and the black
    corners: about a fifth of each map lay outside the fundus.
    """
    photos = shared_data / "fundus"
    if not (SCREENING / "model.json").is_file():
        pytest.skip("no bundled screening package")
    package = ModelPackage.load(SCREENING, "cpu")
    card = package.card
    test_patients = set(json.loads((SCREENING / "split.json").read_text())["test"])
    with (photos / "labels.csv").open(newline="") as handle:
        rows = [
            row
            for row in csv.DictReader(handle)
            if row["dataset"] == "odir"
            and row["label"] == "glaucoma"
            and row["patient"] in test_patients
        ]
    shares = []
    for row in sorted(rows, key=lambda r: r["file"])[:4]:
        photo = Image.open(photos / row["file"]).convert("RGB")
        geometry = detect_fundus(photo)
        square, box = model_square(photo, geometry, card)
        (cam,) = compute_cams(package.model, card, normalise(square, card.mean, card.std), [2])
        heat = cam.heatmap
        outside = ~fov_mask(geometry, box, card.input_size)
        shares.append(round(float(heat[outside].sum() / heat.sum()), 3))
    assert len(shares) == 4
    assert max(shares) < 0.1, shares


QUALITY = PACKAGES / "ophai-quality"


def test_bundled_quality_package_is_a_quality_model_with_its_eyeq_figures() -> None:
    if not (QUALITY / "model.json").is_file():
        pytest.skip("no bundled quality package")
    package = ModelPackage.load(QUALITY, "cpu")
    card = package.card
    assert (card.role, card.task, card.architecture) == ("quality", "multiclass", "mobilenetv2_100")
    assert [label.code for label in card.labels] == ["good", "usable", "reject"]
    gate = card.quality_gate
    assert gate["reject_label"] == "reject" and 0.0 < gate["reject_threshold"] < 1.0
    chosen = gate["chosen_on"]
    assert chosen["split"] == "validation"
    assert chosen["figures"]["model"]["reject_recall"] >= 0.85
    test = card.validation["eyeq_agreement_test"]
    assert set(test) == {"eyepacs", "eyepacs256", "all"}
    for source in test.values():
        for gate_name in ("heuristic", "model", "pipeline"):
            figures = source[gate_name]
            low, high = figures["ci95"]["reject_recall"]
            assert low <= figures["reject_recall"] <= high
    assert "CC BY-NC-SA 4.0" in card.training_data
    assert "Reproduce with: python manage.py train_model" in card.training_data
    assert (QUALITY / "model.safetensors").stat().st_size < 25 * 1024 * 1024
    assert not (QUALITY / "checkpoint.pt").exists()


DR = PACKAGES / "ophai-dr"
DME = PACKAGES / "ophai-dme"
LICENCE_LINES = {
    "dr": ("Kaggle EyePACS", "SRahimDR/DR-image-dataset", "Apache-2.0"),
    "dme": ("Hughes Cano", "SRahimDR/DR-image-dataset", "Apache-2.0"),
}


def test_bundled_dr_package_states_its_operating_point_and_sources() -> None:
    package = ModelPackage.load(DR, "cpu")
    card = package.card
    assert [label.code for label in card.labels] == [f"dr{g}" for g in range(5)]
    grading = card.dr_grading
    assert grading["scheme"] == "icdr_0_4" and grading["referable_from"] == 2
    assert 0 < grading["referable_threshold"] < 0.5  # sensitivity first
    point = grading["operating_point"]
    assert point["chosen_on"] == "validation" and point["sensitivity"] >= 0.9
    assert "ben_graham" in card.preprocessing
    assert card.demonstration and "not for diagnosis" in card.intended_use_text("en").lower()
    assert "不可用于诊断" in card.intended_use_text("zh") and "不可用于诊断" in card.evidence_text(
        "zh"
    )
    assert all(line in card.training_data for line in LICENCE_LINES["dr"])
    assert "make dr-model" in card.training_data
    assert (card.cam.method, card.cam.target_layers) == ("gradcam", ("blocks.6",))
    assert (DR / "model.safetensors").stat().st_size < 25 * 1024 * 1024


def test_bundled_dme_package_states_its_subset_effect_and_sources() -> None:
    card = ModelPackage.load(DME, "cpu").card
    assert card.task == "binary" and [label.code for label in card.labels] == ["DME"]
    assert "subset effect" in card.evidence_text("en") and "子集效应" in card.evidence_text("zh")
    assert all(line in card.training_data for line in LICENCE_LINES["dme"])
    assert "--data ../shared/data/dme/labels.csv --data ../shared/data/dr_camera/labels.csv" in (
        card.training_data
    )
    assert "subset_check_known_dr" in card.validation
    assert (DME / "model.safetensors").stat().st_size < 25 * 1024 * 1024
