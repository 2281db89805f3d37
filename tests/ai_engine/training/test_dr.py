"""DR grading end to end on a tiny synthetic ICDR dataset: the operating point chosen on
validation, the card's figures and evidence, and the commands that recompute them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ai_engine.inference.package import ModelPackage
from ai_engine.training.evaluate import DatasetSpec, evaluate_package
from ai_engine.training.grading import choose_operating_point
from ai_engine.training.trainer import Trainer

from .conftest import fast_config

DR_LABELS = "dr_grade_0,dr_grade_1,dr_grade_2,dr_grade_3,dr_grade_4"


@pytest.fixture(scope="module")
def dr_package(dr_dataset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dr-run") / "ophai-dr"
    config = fast_config(
        dr_dataset, out, labels=DR_LABELS, val_fraction=0.25, test_fraction=0.25, seed=1
    )
    Trainer(config, log=lambda _: None).run()
    return out


def test_training_writes_the_operating_point_chosen_on_validation(
    dr_package: Path, dr_dataset: Path
) -> None:
    package = ModelPackage.load(dr_package, "cpu")
    grading = package.card.dr_grading
    assert grading["scheme"] == "icdr_0_4"
    point = grading["operating_point"]
    assert point["chosen_on"] == "validation" and point["sensitivity_target"] == 0.9
    split = json.loads((dr_package / "split.json").read_text())
    assert point["n_images"] == 2 * len(split["validation"])
    # The deployed package on its own validation patients gives back the same threshold.
    scored = evaluate_package(package, DatasetSpec(str(dr_dataset), split="validation"), rounds=10)
    threshold, again = choose_operating_point(scored.targets, scored.probs, 2, 0.9)
    assert grading["referable_threshold"] == pytest.approx(threshold, abs=2e-4)
    assert again["sensitivity"] >= 0.9
    validation = package.card.validation
    figures = validation["dr_grading"]
    assert validation["split"] == "test"
    assert figures["n_images"] == 2 * len(split["test"])
    assert figures["referable"]["threshold"] == grading["referable_threshold"]
    assert set(figures["ci95"]) >= {"qwk", "referable", "vision_threatening"}
    assert len(figures["confusion_matrix"]["matrix"]) == 5
    evidence = package.card.evidence_text("en")
    assert evidence.startswith("Demonstration model: referable DR (grade ≥ 2) AUC ")
    assert f"at P(referable) ≥ {grading['referable_threshold']:.4g}, chosen on" in evidence
    assert "quadratic weighted kappa" in evidence and "macro-F1" in evidence
    assert package.card.evidence_zh.startswith("演示模型：在 ")
    assert "需转诊糖尿病视网膜病变（≥ 2 级）AUC" in package.card.evidence_zh
    assert "二次加权 kappa" in package.card.evidence_zh


def test_an_unreachable_validation_split_leaves_the_argmax_rule(tmp_path: Path) -> None:
    from ai_engine.training.grading import choose_operating_point as choose

    with pytest.raises(ValueError, match="no positive"):
        choose(np.eye(5)[[0, 1, 0, 1]], np.full((4, 5), 0.2), 2)
