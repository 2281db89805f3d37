"""Score model packages on a labelled dataset: metrics, a JSON report and figures.

Images go through the inference core's preprocessing for each package's card and its
:class:`~ai_engine.inference.predict.Predictor`, so the figures are those of the deployed
model. ``split="test"`` keeps only the held-out patients listed in the package's
``split.json`` (written by training), so a package is not scored on its own training photos.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ai_engine.inference.package import ModelPackage
from ai_engine.inference.predict import Predictor

from .data import DatasetError, LabelledSet, build_cache, load_dataset, normalise_batch
from .labels import TrainLabel
from .metrics import bootstrap_ci, decisions, evaluate_predictions, roc_curve
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
    squares: np.ndarray | None = None,
) -> np.ndarray:
    card = package.card
    if squares is None:
        squares = build_cache(labelled.samples, card, cache_dir)
    predictor = Predictor(package)
    out = []
    for start in range(0, len(squares), batch_size):
        chunk = torch.from_numpy(np.array(squares[start : start + batch_size]))
        batch = normalise_batch(chunk.permute(0, 3, 1, 2), card.mean, card.std)
        out.append(predictor.probabilities(batch))
    return np.concatenate(out)


def source_groups(spec: DatasetSpec, labelled: LabelledSet, prefix: str = "") -> list[str]:
    """Each sample's source for the per-source figures: the CSV's ``source`` column up to its
    first ``:`` (the repository the photo came from), else its ``dataset`` column, else the
    CSV or folder name."""
    data = Path(spec.data)
    by_path: dict[Path, str] = {}
    if data.is_file():
        root = Path(spec.images) if spec.images else data.parent
        with data.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                file = next(
                    (row[c] for c in ("file", "filename", "image", "path") if row.get(c)), ""
                )
                if not file:
                    continue
                source = (row.get("source") or "").split(":")[0].strip()
                group = source or (row.get("dataset") or "").strip() or data.name
                path = Path(file) if Path(file).is_absolute() else root / file
                by_path[path] = group
    return [prefix + by_path.get(s.path, data.name) for s in labelled.samples]


@dataclass
class Scored:
    """One package on the chosen photos: the report and what it was computed from."""

    report: dict[str, Any]
    targets: np.ndarray
    probs: np.ndarray
    labelled: LabelledSet
    groups: list[str]
    squares: np.ndarray


def evaluate_package(
    package: ModelPackage,
    specs: DatasetSpec | Sequence[DatasetSpec],
    *,
    cache_dir: str | Path | None = None,
    split_from: ModelPackage | None = None,
    rounds: int = 1000,
) -> Scored:
    """Metrics at the card's thresholds on one or more label files (their photos pooled), with
    patient-level bootstrap 95% intervals and figures per source."""
    card = package.card
    specs = [specs] if isinstance(specs, DatasetSpec) else list(specs)
    if not specs:
        raise DatasetError("no dataset to evaluate on")
    parts: list[LabelledSet] = []
    groups: list[str] = []
    for spec in specs:
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
        prefix = f"{Path(spec.data).name}: " if len(specs) > 1 else ""
        parts.append(labelled)
        groups.extend(source_groups(spec, labelled, prefix))
    labelled = LabelledSet(
        [s for part in parts for s in part.samples],
        parts[0].labels,
        parts[0].task,
        " + ".join(part.description for part in parts),
        {k: sum(p.dropped.get(k, 0) for p in parts) for p in parts for k in p.dropped},
    )
    squares = build_cache(labelled.samples, card, cache_dir)
    probs = package_probabilities(package, labelled, squares=squares)
    targets = labelled.targets()
    codes = [label.code for label in card.labels]
    thresholds = [label.threshold for label in card.labels]
    patients = [s.patient for s in labelled.samples]
    metrics = evaluate_predictions(targets, probs, codes, card.task, thresholds)
    metrics["n_patients"] = len(set(patients))
    metrics["n_per_label"] = {c: int(n) for c, n in zip(codes, targets.sum(axis=0), strict=True)}
    metrics["ci95"] = bootstrap_ci(
        targets, probs, codes, card.task, thresholds, groups=patients, rounds=rounds
    )
    per_source = {}
    for group in sorted(set(groups)):
        index = [i for i, g in enumerate(groups) if g == group]
        part = evaluate_predictions(targets[index], probs[index], codes, card.task, thresholds)
        per_source[group] = {
            "n_images": len(index),
            "n_patients": len({patients[i] for i in index}),
            "n_per_label": {
                c: int(n) for c, n in zip(codes, targets[index].sum(axis=0), strict=True)
            },
            "macro_f1": part["macro_f1"],
            "macro_auc": part["macro_auc"],
            "accuracy": part.get("accuracy"),
            "per_label": {
                c: {"f1": e["f1"], "auc": e["auc"], "sensitivity": e["sensitivity"]}
                for c, e in part["per_label"].items()
            },
        }
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
            "data": [spec.data for spec in specs] if len(specs) > 1 else specs[0].data,
            "description": labelled.description,
            "split": specs[0].split,
            "left_out": labelled.dropped,
        },
        "metrics": metrics,
        "per_source": per_source,
    }
    return Scored(report, targets, probs, labelled, groups, squares)


def write_predictions(
    scored: Scored, card_codes: Sequence[str], task: str, thresholds, path: Path
) -> int:
    """One row per photo: file, patient, eye, source, true label(s), each label's probability,
    the decision (the card's rule). Returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    predicted = decisions(scored.probs, task, thresholds)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["file", "patient", "eye", "source", "true_label"]
            + [f"p_{code}" for code in card_codes]
            + ["decision"]
        )
        for sample, group, truth, probs, decided in zip(
            scored.labelled.samples,
            scored.groups,
            scored.targets,
            scored.probs,
            predicted,
            strict=True,
        ):
            writer.writerow(
                [str(sample.path), sample.patient, sample.eye, group]
                + [";".join(c for c, t in zip(card_codes, truth, strict=True) if t > 0.5)]
                + [f"{p:.6f}" for p in probs]
                + [";".join(c for c, d in zip(card_codes, decided, strict=True) if d)]
            )
    return len(scored.probs)


def write_report(reports: list[Scored], out: str | Path) -> dict[str, Any]:
    """``evaluation.json`` plus ``roc.png`` and ``confusion-<name>.png`` per package."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray, float | None]]] = {}
    figures = []
    for index, scored in enumerate(reports):
        report, targets, probs = scored.report, scored.targets, scored.probs
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
    result: dict[str, Any] = {"packages": [r.report for r in reports]}
    if len(reports) == 2:
        result["comparison"] = compare(reports[0].report["metrics"], reports[1].report["metrics"])
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
