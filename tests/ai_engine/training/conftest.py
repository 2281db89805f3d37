"""Tiny synthetic fundus datasets (CSV and folder-per-class) and fast training settings."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

CLASSES = {"normal": (170, 90, 40), "cataract": (120, 120, 110), "glaucoma": (200, 60, 30)}


def fundus_photo(colour: tuple[int, int, int], seed: int, size: int = 80) -> Image.Image:
    """A dark frame with a coloured disc (the 'fundus') and a bright spot; colour = class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    inside = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size * 0.42) ** 2
    pixels = np.zeros((size, size, 3), np.float64)
    pixels[inside] = colour
    pixels += rng.normal(0, 12, pixels.shape) * inside[..., None]
    spot = (xx - size * 0.65) ** 2 + (yy - size / 2) ** 2 < (size * 0.08) ** 2
    pixels[spot] = (250, 230, 180)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_dataset(root: Path, patients: int = 12) -> Path:
    """``root/labels.csv`` in our layout + images; each patient's two eyes share a class."""
    rows = []
    for p in range(patients):
        label = list(CLASSES)[p % len(CLASSES)]
        for eye in ("left", "right"):
            file = f"images/{label}/{p}_{eye}.jpg"
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            fundus_photo(CLASSES[label], seed=p * 2 + (eye == "left")).save(root / file)
            rows.append(
                {
                    "file": file,
                    "dataset": "synthetic",
                    "patient": f"pt-{p}",
                    "eye": eye,
                    "label": label,
                }
            )
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root / "labels.csv"


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("fundus"))


def fast_config(data: Path, out: Path, **overrides: Any):
    from ai_engine.training.trainer import TrainConfig

    settings: dict[str, Any] = {
        "data": str(data),
        "out": str(out),
        "task": "multiclass",
        "labels": "normal,cataract,glaucoma",
        "arch": "test_resnet",
        "input_size": 32,
        "epochs": 2,
        "phase1_epochs": 1,
        "lr1": 1e-2,
        "lr2": 1e-2,
        "batch_size": 4,
        "val_fraction": 0.34,
        "device": "cpu",
        "progress": False,
        "fp16": False,
        "cache_dir": None,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


DR_COLOURS = [(170, 90, 40), (150, 100, 50), (120, 120, 110), (200, 60, 30), (90, 140, 160)]


def write_dr_dataset(root: Path, patients: int = 40) -> Path:
    """``root/labels.csv`` with ICDR grades dr_grade_0…4 (colour = grade), a ``dme`` 0/1 column
    (grade ≥ 3) and a coarse ``dr`` column (none / npdr / pdr / unknown) as in ``dme/``."""
    rows = []
    for p in range(patients):
        grade = p % 5
        for eye in ("left", "right"):
            file = f"images/{p}_{eye}.jpg"
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            fundus_photo(DR_COLOURS[grade], seed=100 + p * 2 + (eye == "left")).save(root / file)
            rows.append(
                {
                    "file": file,
                    "dataset": "site-a" if (p // 5) % 2 else "site-b",
                    "patient": f"dr-{p}",
                    "eye": eye,
                    "label": f"dr_grade_{grade}",
                    "dme": "1" if grade >= 3 else "0",
                    "dr": ["none", "npdr", "npdr", "unknown", "pdr"][grade],
                }
            )
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root / "labels.csv"


@pytest.fixture(scope="session")
def dr_dataset(tmp_path_factory) -> Path:
    return write_dr_dataset(tmp_path_factory.mktemp("dr"))
