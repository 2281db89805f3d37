"""Score model packages on a labelled dataset: metrics, a JSON report and figures.

Images go through the inference core's preprocessing for each package's card and its
:class:`~ai_engine.inference.predict.Predictor`, so the figures are those of the deployed
model. ``split="test"`` keeps only the held-out patients listed in the package's
``split.json`` (written by training), so a package is not scored on its own training photos.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ai_engine.inference.package import ModelPackage
from ai_engine.inference.predict import Predictor

from .data import DatasetError, LabelledSet, build_cache, load_dataset, normalise_batch
from .labels import TrainLabel
from .metrics import evaluate_predictions, roc_curve
from .plots import confusion_png, roc_png

SPLITS = ("all", "validation", "test")


@dataclass
class DatasetSpec:
    data: str
    images: str | None = None
    label_column: str = "label"
    positive: list[str] | None = None
    where: dict[str, str] | None = None
    split: str = "all"


def card_labels(package: ModelPackage) -> list[TrainLabel]:
    return [
        TrainLabel(label.code, label.code, label.zh, label.en, label.referable, label.normal)
        for label in package.card.labels
    ]


def held_out(labelled: LabelledSet, package: ModelPackage, split: str) -> LabelledSet:
    if split == "all":
        return labelled
    path = package.path / "split.json"
    if not path.is_file():
        raise DatasetError(f"--split {split}: {package.path} has no split.json (not trained here)")
    patients = set(json.loads(path.read_text(encoding="utf-8")).get(split) or [])
    if not patients:
        raise DatasetError(f"--split {split}: split.json lists no {split} patients")
    keep = [i for i, s in enumerate(labelled.samples) if s.patient in patients]
    if not keep:
        raise DatasetError(f"--split {split}: none of the {split} patients is in this dataset")
    return labelled.subset(keep)


def package_probabilities(
    package: ModelPackage,
    labelled: LabelledSet,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    card = package.card
    squares = build_cache(labelled.samples, card, cache_dir)
    predictor = Predictor(package)
    out = []
    for start in range(0, len(squares), batch_size):
        chunk = torch.from_numpy(np.array(squares[start : start + batch_size]))
        batch = normalise_batch(chunk.permute(0, 3, 1, 2), card.mean, card.std)
        out.append(predictor.probabilities(batch))
    return np.concatenate(out)


def evaluate_package(
    package: ModelPackage,
    spec: DatasetSpec,
    *,
    cache_dir: str | Path | None = None,
    split_from: ModelPackage | None = None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Metrics at the card's thresholds; returns (report, targets, probabilities)."""
    card = package.card
    labelled = load_dataset(
        spec.data,
        task=card.task,
        labels=card_labels(package),
        images=spec.images,
        label_column=spec.label_column,
        positive=spec.positive,
        where=spec.where,
    )
    labelled = held_out(labelled, split_from or package, spec.split)
    probs = package_probabilities(package, labelled, cache_dir=cache_dir)
    targets = labelled.targets()
    codes = [label.code for label in card.labels]
    metrics = evaluate_predictions(
        targets, probs, codes, card.task, [label.threshold for label in card.labels]
    )
    metrics["n_patients"] = len({s.patient for s in labelled.samples})
    metrics["n_per_label"] = {c: int(n) for c, n in zip(codes, targets.sum(axis=0), strict=True)}
    report = {
        "package": {
            "name": card.name,
            "version": card.version,
            "path": str(package.path),
            "task": card.task,
            "architecture": card.architecture,
            "demonstration": card.demonstration,
            "weights_sha256": package.weights_sha256,
        },
        "dataset": {
            "data": spec.data,
            "description": labelled.description,
            "split": spec.split,
            "left_out": labelled.dropped,
        },
        "metrics": metrics,
    }
    return report, targets, probs


def write_report(
    reports: list[tuple[dict[str, Any], np.ndarray, np.ndarray]], out: str | Path
) -> dict[str, Any]:
    """``evaluation.json`` plus ``roc.png`` and ``confusion-<name>.png`` per package."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray, float | None]]] = {}
    figures = []
    for index, (report, targets, probs) in enumerate(reports):
        package = report["package"]
        title = f"{package['name']} {package['version']}"
        codes = list(report["metrics"]["per_label"])
        curves[title] = {
            code: (
                *roc_curve(targets[:, k], probs[:, k]),
                report["metrics"]["per_label"][code]["auc"],
            )
            for k, code in enumerate(codes)
            if 0 < targets[:, k].sum() < len(targets)
        }
        name = f"confusion-{index + 1}.png"
        confusion_png(report["metrics"]["confusion_matrix"], out / name, title=title)
        figures.append(name)
        report["figures"] = {"confusion": name, "roc": "roc.png"}
    roc_png(curves, out / "roc.png")
    result: dict[str, Any] = {"packages": [r for r, _, _ in reports]}
    if len(reports) == 2:
        result["comparison"] = compare(reports[0][0]["metrics"], reports[1][0]["metrics"])
    (out / "evaluation.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return result


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Second minus first, for the labels both packages have."""

    def delta(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else round(y - x, 6)

    common = [code for code in a["per_label"] if code in b["per_label"]]
    return {
        "macro_f1": delta(a["macro_f1"], b["macro_f1"]),
        "macro_auc": delta(a["macro_auc"], b["macro_auc"]),
        "ece": delta(a["ece"], b["ece"]),
        "per_label": {
            code: {
                key: delta(a["per_label"][code][key], b["per_label"][code][key])
                for key in ("f1", "auc", "sensitivity", "specificity")
            }
            for code in common
        },
    }
