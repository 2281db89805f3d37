"""Score model packages on a labelled dataset: metrics, a JSON report and figures.

Images go through the inference core's preprocessing for each package's card and its
:class:`~ai_engine.inference.predict.Predictor`, so the figures are those of the deployed
model. ``split="test"`` keeps only the held-out patients listed in the package's
``split.json`` (written by training), so a package is not scored on its own training photos.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ai_engine.inference.package import ModelPackage
from ai_engine.inference.predict import Predictor

from .data import DatasetError, LabelledSet, build_cache, load_dataset, normalise_batch
from .grading import grading_figures
from .labels import TrainLabel
from .metrics import (
    bootstrap_ci,
    decisions,
    evaluate_predictions,
    probability_from,
    referable_decisions,
    roc_auc,
    roc_curve,
)
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


def source_groups(
    spec: DatasetSpec, labelled: LabelledSet, prefix: str = "", column: str | None = None
) -> list[str]:
    """Each sample's source for the per-source figures: the CSV's ``source`` column up to its
    first ``:`` (the repository the photo came from), else its ``dataset`` column, else the
    CSV or folder name. With ``column``, that CSV column's value instead (``""`` when the
    CSV has no such column)."""
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
                if column is not None:
                    group = (row.get(column) or "").strip()
                else:
                    source = (row.get("source") or "").split(":")[0].strip()
                    group = source or (row.get("dataset") or "").strip() or data.name
                path = Path(file) if Path(file).is_absolute() else root / file
                by_path[path] = group
    default = "" if column is not None else data.name
    return [prefix + by_path.get(s.path, default) for s in labelled.samples]


def group_figures(
    targets: np.ndarray,
    probs: np.ndarray,
    patients: Sequence[str],
    groups: Sequence[str],
    codes: Sequence[str],
    task: str,
    thresholds: Sequence[float],
    grading: dict[str, Any] | None,
    *,
    rounds: int,
) -> dict[str, Any]:
    """Figures per group (source, or a CSV column's value): counts, macro and per-label
    figures, each label's mean probability among its positives and negatives, and for DR cards
    the ICDR figures with their CIs."""
    out = {}
    for group in sorted(set(groups)):
        index = [i for i, g in enumerate(groups) if g == group]
        part = evaluate_predictions(targets[index], probs[index], codes, task, thresholds)
        entry: dict[str, Any] = {
            "n_images": len(index),
            "n_patients": len({patients[i] for i in index}),
            "n_per_label": {
                c: int(n) for c, n in zip(codes, targets[index].sum(axis=0), strict=True)
            },
            "macro_f1": part["macro_f1"],
            "macro_auc": part["macro_auc"],
            "accuracy": part.get("accuracy"),
            "per_label": {},
        }
        for k, (c, e) in enumerate(part["per_label"].items()):
            truth = targets[index, k] > 0.5
            scores = probs[index, k]
            entry["per_label"][c] = {
                "f1": e["f1"],
                "auc": e["auc"],
                "sensitivity": e["sensitivity"],
                "specificity": e["specificity"],
                "mean_p_positive": float(scores[truth].mean()) if truth.any() else None,
                "mean_p_negative": float(scores[~truth].mean()) if (~truth).any() else None,
            }
        if grading is not None:
            entry["dr_grading"] = grading_figures(
                targets[index],
                probs[index],
                grading,
                groups=[patients[i] for i in index],
                rounds=rounds,
            )
        out[group] = entry
    return out


def dataset_names(datas: Sequence[str]) -> dict[str, str]:
    """Each dataset's name in the per-source groups: its file name, or ``folder/file`` when two
    different datasets share a file name (``fundus/labels.csv``, ``dr_camera/labels.csv``)."""
    paths = {data: Path(data) for data in datas}
    names = [path.name for path in {p.resolve() for p in paths.values()}]
    return {
        data: f"{path.parent.name}/{path.name}" if names.count(path.name) > 1 else path.name
        for data, path in paths.items()
    }


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
    group_by: str | None = None,
) -> Scored:
    """Metrics at the card's thresholds on one or more label files (their photos pooled), with
    patient-level bootstrap 95% intervals and figures per source (and per value of the CSV
    column ``group_by``, e.g. ``dr``); a card with ``dr_grading`` adds the ICDR figures."""
    card = package.card
    specs = [specs] if isinstance(specs, DatasetSpec) else list(specs)
    if not specs:
        raise DatasetError("no dataset to evaluate on")
    parts: list[LabelledSet] = []
    groups: list[str] = []
    by_value: list[str] = []
    short_names = dataset_names([spec.data for spec in specs])
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
        prefix = f"{short_names[spec.data]}: " if len(specs) > 1 else ""
        parts.append(labelled)
        groups.extend(source_groups(spec, labelled, prefix))
        if group_by:
            by_value.extend(source_groups(spec, labelled, column=group_by))
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
    grading = card.dr_grading
    if grading is not None:
        metrics["dr_grading"] = grading_figures(
            targets, probs, grading, groups=patients, rounds=rounds
        )
    per_source = group_figures(
        targets, probs, patients, groups, codes, card.task, thresholds, grading, rounds=rounds
    )
    per_value = None
    if group_by:
        values = [v or "(none)" for v in by_value]
        per_value = {
            "column": group_by,
            "groups": group_figures(
                targets,
                probs,
                patients,
                values,
                codes,
                card.task,
                thresholds,
                grading,
                rounds=rounds,
            ),
        }
        # Does a label's probability tell one value from the others among images of the same
        # truth? AUC ≈ 0.5 means the model does not recognise that subset (e.g. dr=unknown).
        for value, entry in per_value["groups"].items():
            member = np.array([v == value for v in values])
            for k, code in enumerate(codes):
                truth = targets[:, k] > 0.5
                entry["per_label"][code]["subset_auc"] = {
                    side: roc_auc(member[mask], probs[mask, k])
                    for side, mask in (("positives", truth), ("negatives", ~truth))
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
    if per_value is not None:
        report["per_value"] = per_value
    return Scored(report, targets, probs, labelled, groups, squares)


def write_predictions(
    scored: Scored,
    card_codes: Sequence[str],
    task: str,
    thresholds,
    path: Path,
    grading: dict[str, Any] | None = None,
) -> int:
    """One row per photo: file, patient, eye, source, true label(s), each label's probability,
    the decision (the card's rule); with ``grading`` (a DR card) also the true and argmax
    grade, P(referable), the referable decision at the card's operating point and
    P(vision-threatening). Returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    predicted = decisions(scored.probs, task, thresholds)
    extra_header: list[str] = []
    extra: list[list[str]] = [[] for _ in scored.probs]
    if grading is not None:
        extra_header = ["true_grade", "grade", "p_referable", "referable", "p_vision_threatening"]
        p_ref = probability_from(scored.probs, grading["referable_from"])
        p_vt = probability_from(scored.probs, grading["vision_threatening_from"])
        referable = referable_decisions(
            scored.probs, grading["referable_from"], grading.get("referable_threshold")
        )
        extra = [
            [
                str(int(truth.argmax())),
                str(int(probs.argmax())),
                f"{ref:.6f}",
                "yes" if decided else "no",
                f"{vt:.6f}",
            ]
            for truth, probs, ref, decided, vt in zip(
                scored.targets, scored.probs, p_ref, referable, p_vt, strict=True
            )
        ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["file", "patient", "eye", "source", "true_label"]
            + [f"p_{code}" for code in card_codes]
            + ["decision"]
            + extra_header
        )
        for sample, group, truth, probs, decided, more in zip(
            scored.labelled.samples,
            scored.groups,
            scored.targets,
            scored.probs,
            predicted,
            extra,
            strict=True,
        ):
            writer.writerow(
                [str(sample.path), sample.patient, sample.eye, group]
                + [";".join(c for c, t in zip(card_codes, truth, strict=True) if t > 0.5)]
                + [f"{p:.6f}" for p in probs]
                + [";".join(c for c, d in zip(card_codes, decided, strict=True) if d)]
                + more
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


def training_specs(package: ModelPackage, split: str) -> list[DatasetSpec]:
    """The datasets a package was trained on, as its ``training.json`` records them (paths as
    given to ``train_model``, so relative ones are read from the folder it was run in)."""
    path = package.path / "training.json"
    if not path.is_file():
        raise DatasetError(f"{package.path} has no training.json; pass --data")
    config = json.loads(path.read_text(encoding="utf-8")).get("config") or {}
    datas = config.get("data")
    datas = [datas] if isinstance(datas, str) else list(datas or [])
    if not datas:
        raise DatasetError(f"{path} names no data; pass --data")
    columns = config.get("label_column") or "label"
    columns = [columns] * len(datas) if isinstance(columns, str) else list(columns)
    if len(columns) == 1:
        columns = columns * len(datas)
    return [
        DatasetSpec(
            data=data,
            images=config.get("images"),
            label_column=column,
            positive=config.get("positive"),
            where=config.get("where") or None,
            split=split,
        )
        for data, column in zip(datas, columns, strict=True)
    ]


@dataclass
class OperatingPoint:
    card: dict[str, Any]  # the rewritten model.json
    validation: Scored
    test: Scored
    previous_threshold: float | None


def recompute_operating_point(
    package: ModelPackage,
    specs: Sequence[DatasetSpec],
    *,
    target: float,
    cache_dir: str | Path | None = None,
    rounds: int = 1000,
    write: bool = True,
) -> OperatingPoint:
    """Choose a DR package's referable threshold on its own validation patients (sensitivity
    first), score its test patients at that threshold, and rewrite ``model.json``: the
    ``dr_grading`` block, ``validation.dr_grading`` and the evidence lines. The weights are not
    touched; the package is re-loaded afterwards to prove their sha256 still matches."""
    from ai_engine.inference.card import CardError, parse_card

    from .grading import choose_operating_point, evidence_texts
    from .trainer import evidence_line, evidence_line_zh

    card = package.card
    if card.dr_grading is None:
        raise DatasetError(
            f"{package.path}: the card has no dr_grading block; an operating point on "
            "P(grade >= referable_from) applies to DR grading packages only"
        )
    if not 0.0 < target <= 1.0:
        raise DatasetError(f"--sensitivity {target}: must be in (0, 1]")
    as_split = [DatasetSpec(**{**spec.__dict__, "split": "validation"}) for spec in specs]
    validation = evaluate_package(package, as_split, cache_dir=cache_dir, rounds=10)
    try:
        threshold, point = choose_operating_point(
            validation.targets, validation.probs, card.dr_grading["referable_from"], target
        )
    except ValueError as exc:
        raise DatasetError(f"validation split: {exc}") from None
    grading = {**card.dr_grading, "referable_threshold": threshold, "operating_point": point}
    as_test = [DatasetSpec(**{**spec.__dict__, "split": "test"}) for spec in specs]
    test = evaluate_package(package, as_test, cache_dir=cache_dir, rounds=rounds)
    patients = [s.patient for s in test.labelled.samples]
    figures = grading_figures(test.targets, test.probs, grading, groups=patients, rounds=rounds)
    raw = json.loads((package.path / "model.json").read_text(encoding="utf-8"))
    raw["dr_grading"] = grading
    validation_block = dict(raw.get("validation") or {})
    base = validation_block if _has_evidence_figures(validation_block) else test.report["metrics"]
    validation_block["dr_grading"] = figures
    note = (
        f"referable operating point chosen on {point['n_images']} validation eyes for "
        f"sensitivity >= {target:g} (manage.py set_operating_point); DR figures from the "
        "test patients at that point"
    )
    selection = str(validation_block.get("selection") or "")
    selection = selection.split("; referable operating point chosen on")[0]
    validation_block["selection"] = f"{selection}; {note}" if selection else note
    raw["validation"] = validation_block
    codes = [label.code for label in card.labels]
    raw.update(
        evidence_texts(
            evidence_line(base, codes, False),
            evidence_line_zh(base, {label.code: label.zh for label in card.labels}, False),
            figures,
            grading,
            card.demonstration,
        )
    )
    try:
        parsed = parse_card(raw)
    except CardError as exc:  # pragma: no cover - the fields above are built to be valid
        raise DatasetError(str(exc)) from None
    if write:
        path = package.path / "model.json"
        partial = path.with_suffix(".json.partial")
        partial.write_text(parsed.to_json() + "\n", encoding="utf-8")
        os.replace(partial, path)
        ModelPackage.load(package.path, "cpu")  # the weights' sha256 still matches
    return OperatingPoint(
        parsed.to_dict(), validation, test, card.dr_grading.get("referable_threshold")
    )


def _has_evidence_figures(block: dict[str, Any]) -> bool:
    return all(key in block for key in ("per_label", "macro_f1", "majority_baseline", "n_images"))


@dataclass
class FolderGrades:
    """One package on a folder of unlabelled photos."""

    files: list[Path]
    probs: np.ndarray
    failed: dict[str, str]  # file name → why it could not be read
    summary: dict[str, Any]


def grade_folder(package: ModelPackage, folder: str | Path, batch_size: int = 8) -> FolderGrades:
    """Every photo in ``folder`` (full resolution) through the inference core's decode, fundus
    detection and the card's preprocessing, then the model: per photo its probabilities, and a
    summary — for DR cards the grade distribution, the spread of P(referable) and the referable
    decisions at the card's operating point; otherwise each label's decisions and spread."""
    from ai_engine.inference.decode import ImageDecodeError, load_fundus_image
    from ai_engine.inference.preprocess import as_array

    from .data import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder")
    paths = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: (len(p.stem), p.name),
    )
    if not paths:
        raise DatasetError(f"{folder}: no photos ({', '.join(IMAGE_SUFFIXES)})")
    predictor = Predictor(package)
    card = package.card
    files: list[Path] = []
    failed: dict[str, str] = {}
    chunks: list[np.ndarray] = []
    pending: list[torch.Tensor] = []
    for index, path in enumerate(paths):
        try:
            tensor, _box = predictor.prepare(as_array(load_fundus_image(path)))
        except (ImageDecodeError, ValueError) as exc:
            failed[path.name] = str(exc)
        else:
            files.append(path)
            pending.append(tensor)
        if pending and (len(pending) == batch_size or index == len(paths) - 1):
            chunks.append(predictor.probabilities(torch.stack(pending)))
            pending = []
    if not files:
        raise DatasetError(f"{folder}: none of the {len(paths)} photos could be read")
    probs = np.concatenate(chunks)

    def spread(values: np.ndarray) -> dict[str, float]:
        q = np.percentile(values, [0, 25, 50, 75, 100])
        return {
            "min": float(q[0]),
            "q25": float(q[1]),
            "median": float(q[2]),
            "q75": float(q[3]),
            "max": float(q[4]),
            "sd": float(values.std()),
        }

    codes = [label.code for label in card.labels]
    summary: dict[str, Any] = {"n_photos": len(files), "n_failed": len(failed)}
    grading = card.dr_grading
    if grading is not None:
        grades = probs.argmax(axis=1)
        p_ref = probability_from(probs, grading["referable_from"])
        referable = referable_decisions(
            probs, grading["referable_from"], grading.get("referable_threshold")
        )
        summary["grades"] = {code: int((grades == k).sum()) for k, code in enumerate(codes)}
        summary["distinct_grades"] = len(set(grades.tolist()))
        summary["p_referable"] = spread(p_ref)
        summary["referable"] = int(referable.sum())
        summary["rule"] = (
            f"P(grade >= {grading['referable_from']}) >= {grading['referable_threshold']}"
            if grading.get("referable_threshold") is not None
            else f"argmax grade >= {grading['referable_from']}"
        )
    else:
        thresholds = [label.threshold for label in card.labels]
        decided = decisions(probs, card.task, thresholds)
        summary["positive"] = {code: int(decided[:, k].sum()) for k, code in enumerate(codes)}
        summary["p"] = {code: spread(probs[:, k]) for k, code in enumerate(codes)}
    return FolderGrades(files, probs, failed, summary)
