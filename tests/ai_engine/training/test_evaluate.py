"""evaluate_model: exact figures for packages whose answers are known, report files, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import timm
import torch
from django.core.management import CommandError, call_command
from PIL import Image

from ai_engine.inference.package import write_package


def constant_package(folder: Path, bias: list[float]) -> Path:
    """A test_resnet whose weights are all zero except the classifier bias: its softmax output
    is softmax(bias) for every photo."""
    model = timm.create_model("test_resnet", pretrained=False, num_classes=3)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.zero_()
        model.get_classifier().bias.copy_(torch.tensor(bias))
    card = {
        "name": folder.name,
        "version": "1",
        "task": "multiclass",
        "architecture": "test_resnet",
        "input_size": 32,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "preprocessing": ["fundus_crop", "pad_square", "resize", "normalize"],
        "labels": [
            {"code": "N", "zh": "正常", "en": "Normal", "normal": True},
            {"code": "C", "zh": "白内障", "en": "Cataract", "referable": True},
            {"code": "G", "zh": "青光眼", "en": "Glaucoma", "referable": True},
        ],
        "cam": {"method": "layercam", "target_layers": ["layer4"]},
        "weights": {"file": "model.safetensors", "sha256": "0" * 64},
    }
    write_package(folder, model, card)
    return folder


def test_evaluate_model_exact_figures_and_comparison(dataset: Path, tmp_path: Path) -> None:
    always_n = constant_package(tmp_path / "always-n", [1.0, 0.0, 0.0])
    always_g = constant_package(tmp_path / "always-g", [0.0, 0.0, 2.0])
    out = tmp_path / "report"
    call_command(
        "evaluate_model", str(always_n), str(dataset),
        "--compare", str(always_g), "--out", str(out), "--device", "cpu",
        "--cache-dir", str(tmp_path / "cache"),
        stdout=open(tmp_path / "log.txt", "w"),  # noqa: SIM115
    )  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    first, second = (p["metrics"] for p in report["packages"])
    # 24 photos, 8 per class; the first package always answers N.
    assert first["n_images"] == 24 and first["n_patients"] == 12
    assert first["per_label"]["N"] | {"auc": None} == {
        "n_positive": 8, "n_negative": 16, "tp": 8, "fp": 16, "fn": 0, "tn": 0,
        "precision": pytest.approx(1 / 3), "recall": 1.0, "f1": 0.5,
        "sensitivity": 1.0, "specificity": 0.0, "auc": None, "threshold": None,
    }  # fmt: skip
    assert [first["per_label"][c]["auc"] for c in "NCG"] == [0.5, 0.5, 0.5]
    assert first["macro_f1"] == pytest.approx(1 / 6)
    assert first["accuracy"] == pytest.approx(1 / 3)
    assert first["confusion_matrix"]["matrix"] == [[8, 0, 0], [8, 0, 0], [8, 0, 0]]
    confidence = math.e / (math.e + 2)
    assert first["ece"] == pytest.approx(confidence - 1 / 3, abs=1e-6)
    assert second["confusion_matrix"]["matrix"] == [[0, 0, 8], [0, 0, 8], [0, 0, 8]]
    assert report["comparison"]["macro_f1"] == pytest.approx(0.0)
    assert report["comparison"]["per_label"]["G"]["f1"] == pytest.approx(0.5)
    for name in ("roc.png", "confusion-1.png", "confusion-2.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 100


def test_evaluate_model_errors(dataset: Path, tmp_path: Path) -> None:
    package = constant_package(tmp_path / "pkg", [0.0, 0.0, 0.0])
    log = open(tmp_path / "log.txt", "w")  # noqa: SIM115
    with pytest.raises(CommandError, match="has no split.json"):
        call_command(
            "evaluate_model",
            str(package),
            str(dataset),
            "--split",
            "test",
            "--out",
            str(tmp_path / "r"),
            stdout=log,
        )
    with pytest.raises(CommandError, match="model.json: not found"):
        call_command(
            "evaluate_model",
            str(tmp_path / "nothing"),
            str(dataset),
            "--out",
            str(tmp_path / "r"),
            stdout=log,
        )
    other = dataset.parent / "other.csv"
    other.write_text("file,label\nimages/normal/0_left.jpg,drusen\n")
    with pytest.raises(CommandError, match="label mismatch"):
        call_command(
            "evaluate_model", str(package), str(other), "--out", str(tmp_path / "r"), stdout=log
        )
