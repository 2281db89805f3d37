"""Fixtures for the Django-free inference core: tiny packages and the shared photo folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import timm
import torch

from ai_engine.inference.package import write_package

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA = (REPO_ROOT / "../shared/data").resolve()
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
ODIR_CODES = "NDGCAHMO"


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return DATA


def odir_labels() -> list[dict[str, Any]]:
    return [
        {
            "code": c,
            "zh": f"{c}-zh",
            "en": f"{c}-en",
            "threshold": 0.5,
            "referable": c != "N",
            "normal": c == "N",
        }
        for c in ODIR_CODES
    ]


def icdr_labels(levels: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "code": f"dr{g}",
            "zh": f"{g}级",
            "en": f"grade {g}",
            "threshold": 0.5,
            "referable": g >= 2,
            "normal": g == 0,
        }
        for g in range(levels)
    ]


def quality_card_dict(reject_threshold: float = 0.5, **overrides: Any) -> dict[str, Any]:
    """A quality model's card: good / usable / reject, refusing at P(reject) >= threshold."""
    labels = [
        {"code": code, "zh": zh, "en": code}
        for code, zh in (("good", "良好"), ("usable", "可用"), ("reject", "不可用"))
    ]
    fields: dict[str, Any] = {
        "name": "tiny-quality",
        "task": "multiclass",
        "labels": labels,
        "role": "quality",
        "quality_gate": {"reject_label": "reject", "reject_threshold": reject_threshold},
    }
    return card_dict(**(fields | overrides))


def card_dict(**overrides: Any) -> dict[str, Any]:
    card = {
        "name": "tiny",
        "version": "0.1",
        "task": "multilabel",
        "architecture": "resnet10t",
        "architecture_kwargs": {},
        "input_size": 64,
        **IMAGENET,
        "preprocessing": ["fundus_crop", "pad_square", "resize", "normalize"],
        "labels": odir_labels(),
        "cam": {"method": "gradcam", "target_layers": ["layer4.-1", "layer3"], "reshape": None},
        "weights": {"file": "model.safetensors", "sha256": "0" * 64},
        "training_data": "random init",
        "validation": {},
        "intended_use": "tests",
        "demonstration": True,
        "evidence": "untrained",
    }
    card.update(overrides)
    return card


def tiny_model(card: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    outputs = 1 if card["task"] == "binary" else len(card["labels"])
    return timm.create_model(
        card["architecture"], pretrained=False, num_classes=outputs, **card["architecture_kwargs"]
    )


@pytest.fixture
def make_package(tmp_path: Path):
    def make(
        name: str = "pkg", *, fmt: str = "safetensors", fp16: bool = False, **overrides: Any
    ) -> Path:
        card = card_dict(**overrides)
        folder = tmp_path / name
        write_package(folder, tiny_model(card), card, fmt=fmt, fp16=fp16)
        return folder

    return make
