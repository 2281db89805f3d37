"""Datasets: reading CSV / folder layouts, patient-level splits, the preprocessed cache, augmentation.

Every image goes through the inference core's own decode → fundus detection → crop/pad/
resize (:func:`ai_engine.inference.preprocess.model_square`) exactly once, into a uint8
cache at the model's input size; training augments those squares, validation and the
held-out metrics read them untouched, so what the card's ``preprocessing``/``input_size``
say is exactly what the model was trained and measured on.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ai_engine.inference.card import ModelCard
from ai_engine.inference.decode import ImageDecodeError, load_fundus_image
from ai_engine.inference.preprocess import detect_fundus, model_square

from .labels import VOCABULARY, TrainLabel

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
FILE_COLUMNS = ("file", "filename", "image", "path", "image_path", "filepath")
PATIENT_COLUMNS = ("patient", "patient_id", "ID", "id")
TASKS = ("multilabel", "multiclass", "binary")
_EYE_SUFFIX = re.compile(r"[_\-. ]?(left|right|od|os|l|r)$", re.IGNORECASE)


class DatasetError(ValueError):
    """The dataset cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    path: Path
    target: tuple[float, ...]  # one 0/1 per label (multiclass: one-hot)
    patient: str
    eye: str = ""
    source: str = ""  # the CSV's ``dataset`` column (else its file name): split strata, figures


@dataclass
class LabelledSet:
    samples: list[Sample]
    labels: list[TrainLabel]
    task: str
    description: str  # where the data came from, for the card
    dropped: dict[str, int] = field(default_factory=dict)  # reason → rows left out

    def targets(self) -> np.ndarray:
        return np.array([s.target for s in self.samples], dtype=np.float32).reshape(
            len(self.samples), len(self.labels)
        )

    def counts(self) -> dict[str, int]:
        totals = self.targets().sum(axis=0) if self.samples else np.zeros(len(self.labels))
        return {label.code: int(n) for label, n in zip(self.labels, totals, strict=True)}

    def subset(self, indices: Sequence[int]) -> LabelledSet:
        return LabelledSet(
            [self.samples[i] for i in indices], self.labels, self.task, self.description
        )


# --- reading ----------------------------------------------------------------------------------
def label_keys(label: TrainLabel) -> set[str]:
    """The spellings in a dataset that mean ``label`` (its name, code and known aliases)."""
    keys = {label.name.lower(), label.code.lower()}
    if label.code in VOCABULARY:
        keys.update(alias.lower() for alias in VOCABULARY[label.code][4])
    return keys


def odir_codes(keywords: str) -> set[str]:
    """ODIR-5K per-eye diagnostic keywords → codes N D G C A H M O (non-diagnostic ones skipped)."""
    codes: set[str] = set()
    for raw in re.split(r"[，,;]", keywords or ""):
        word = raw.strip().lower()
        if (
            not word
            or word in ("lens dust", "low image quality", "image offset")
            or ("invisible" in word or "no fundus image" in word)
        ):
            continue
        if word == "normal fundus":
            codes.add("N")
        elif "glaucoma" in word:
            codes.add("G")
        elif "cataract" in word:
            codes.add("C")
        elif "macular degeneration" in word:
            codes.add("A")
        elif "hypertensive" in word:
            codes.add("H")
        elif "myopi" in word:
            codes.add("M")
        elif "diabetic" in word or "proliferative" in word or "nonproliferative" in word:
            codes.add("D")
        else:
            codes.add("O")
    if len(codes) > 1:
        codes.discard("N")
    return codes


def split_patient_eye(stem: str) -> tuple[str, str]:
    """``1234_left`` → (``1234``, ``left``); a stem without an eye suffix is its own patient."""
    match = _EYE_SUFFIX.search(stem)
    if not match or match.start() == 0:
        return stem, ""
    eye = match.group(1).lower()
    return stem[: match.start()], {"l": "left", "r": "right", "od": "right", "os": "left"}.get(
        eye, eye
    )


def load_dataset(
    data: str | Path,
    *,
    task: str,
    labels: list[TrainLabel] | None = None,
    images: str | Path | None = None,
    label_column: str = "label",
    positive: Sequence[str] | None = None,
    where: dict[str, str] | None = None,
    every_label: bool = True,
) -> LabelledSet:
    """A CSV file (our ``labels.csv`` layout, ODIR-5K's ``full_df.csv``, or ``file,label``) or a
    folder with one sub-folder per class → labelled samples for ``task``.

    ``labels`` (from ``--labels``) picks and orders the outputs; rows whose label is not among
    them are left out (multiclass) or count as negatives (multilabel, binary). With
    ``every_label`` (one dataset alone) a label no sample carries is an error.
    """
    if task not in TASKS:
        raise DatasetError(f"task must be one of {', '.join(TASKS)} (got {task!r})")
    data = Path(data)
    if not data.exists():
        raise DatasetError(f"{data}: no such file or folder")
    if data.is_dir() and (data / "manifest.csv").is_file():
        data = data / "manifest.csv"  # a training cache (manage.py build_training_cache)
    if data.is_dir():
        rows, description = _read_folder(data)
        image_root = data
    else:
        rows, description, image_root = _read_csv(data, label_column, where or {}, labels)
    if images is not None:
        image_root = Path(images)
        if not image_root.is_dir():
            raise DatasetError(f"--images {image_root}: no such folder")
    if not rows:
        raise DatasetError(f"{data}: no rows to train on" + (f" with {where}" if where else ""))
    if labels is None:
        labels = _default_labels(rows, task)
    if task == "binary" and len(labels) != 1:
        raise DatasetError(
            "a binary task has exactly one label, the positive class (e.g. --labels referable_dr "
            "--positive 2,3,4); use --task multiclass for several classes"
        )
    if task == "multiclass" and len(labels) < 2:
        raise DatasetError("a multiclass task needs at least 2 labels")
    result = _to_samples(rows, labels, task, image_root, positive, description)
    if every_label:
        _refuse_empty_labels(result)
    return result


def _refuse_empty_labels(labelled: LabelledSet) -> None:
    empty = [code for code, n in labelled.counts().items() if n == 0]
    if empty and labelled.task != "binary":
        raise DatasetError(f"label mismatch: no sample is labelled {empty}")


def label_columns_for(label_column: str | Sequence[str], n_datasets: int) -> list[str]:
    """``--label-column``: one name (or a comma list) for all datasets, or one per dataset."""
    if isinstance(label_column, str):
        columns = [c.strip() for c in label_column.split(",") if c.strip()]
    else:
        columns = list(label_column)
    columns = columns or ["label"]
    if len(columns) == 1:
        columns = columns * n_datasets
    if len(columns) != n_datasets:
        raise DatasetError(
            f"{len(columns)} label columns for {n_datasets} datasets; give one, or one per dataset"
        )
    return columns


def load_datasets(
    data: str | Path | Sequence[str | Path],
    *,
    task: str,
    labels: list[TrainLabel] | None = None,
    images: str | Path | None = None,
    label_column: str | Sequence[str] = "label",
    positive: Sequence[str] | None = None,
    where: dict[str, str] | None = None,
) -> LabelledSet:
    """One or more datasets pooled (e.g. three DR sources): each CSV's paths are relative to its
    own folder, ``label_column`` is one name for all or one per dataset, and every dataset must
    yield the same labels. Patients keep their own IDs, so sources must not share patient keys.
    """
    datas = [data] if isinstance(data, (str, Path)) else list(data)
    if not datas:
        raise DatasetError("no dataset given")
    columns = label_columns_for(label_column, len(datas))
    if len(datas) > 1 and images is not None:
        raise DatasetError("--images applies to one dataset; with several, paths are per CSV")
    if len(datas) > 1 and labels is None and task != "binary":
        raise DatasetError("several datasets need --labels, so every one yields the same outputs")
    parts = [
        load_dataset(
            one,
            task=task,
            labels=labels,
            images=images,
            label_column=column,
            positive=positive,
            where=where,
            # A source may lack a rare class (a clinic export without grade 4); the pool may not.
            every_label=len(datas) == 1,
        )
        for one, column in zip(datas, columns, strict=True)
    ]
    if len(parts) == 1:
        return parts[0]
    dropped: Counter[str] = Counter()
    for part in parts:
        dropped.update(part.dropped)
    patients = [{s.patient for s in part.samples} for part in parts]
    for i, j in itertools.combinations(range(len(parts)), 2):
        shared = patients[i] & patients[j]
        if shared:
            raise DatasetError(
                f"{datas[i]} and {datas[j]} share patient keys (e.g. {sorted(shared)[0]}); "
                "give each source its own patient prefix"
            )
    pooled = LabelledSet(
        [s for part in parts for s in part.samples],
        parts[0].labels,
        task,
        " + ".join(part.description for part in parts),
        dict(dropped),
    )
    _refuse_empty_labels(pooled)
    return pooled


@dataclass
class _Row:
    file: str
    values: set[str]  # the label spellings this row carries
    patient: str
    eye: str
    source: str = ""


def _read_folder(folder: Path) -> tuple[list[_Row], str]:
    rows = []
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{folder}: a folder dataset needs one sub-folder per class")
    for class_dir in classes:
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                patient, eye = split_patient_eye(path.stem)
                rows.append(
                    _Row(str(path.relative_to(folder)), {class_dir.name}, f"{patient}", eye)
                )
    return rows, f"folder {folder.name}/ ({', '.join(c.name for c in classes)})"


def read_csv_records(path: Path, where: dict[str, str]) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV's columns and its rows that match every ``--where COLUMN=VALUE`` (or
    ``COLUMN!=VALUE``, stored as the key ``COLUMN!``)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the CSV ({exc})") from None
    if not columns:
        raise DatasetError(f"{path}: the CSV is empty (no header row)")
    for key, value in where.items():
        # ``--where dr!=unknown`` arrives as {"dr!": "unknown"}: keep rows whose value differs.
        column, negated = (key[:-1], True) if key.endswith("!") else (key, False)
        if column not in columns:
            raise DatasetError(f"{path}: --where column {column!r} is not in {columns}")
        records = [r for r in records if ((r.get(column) or "").strip() == value) != negated]
    return columns, records


def _read_csv(
    path: Path, label_column: str, where: dict[str, str], labels: list[TrainLabel] | None
) -> tuple[list[_Row], str, Path]:
    columns, records = read_csv_records(path, where)
    if "Left-Diagnostic Keywords" in columns and "Right-Diagnostic Keywords" in columns:
        return _odir_rows(records, columns), f"ODIR-5K table {path.name}", path.parent
    file_column = next((c for c in FILE_COLUMNS if c in columns), None)
    if file_column is None:
        raise DatasetError(
            f"{path}: no image column; expected one of {', '.join(FILE_COLUMNS)} (has {columns})"
        )
    patient_column = next((c for c in PATIENT_COLUMNS if c in columns), None)
    # Without a label column, 0/1 columns named like the labels (N, D, G …) are the labels.
    one_hot = []
    if label_column not in columns and labels:
        one_hot = [c for c in columns if any(c.lower() in label_keys(lb) for lb in labels)]
    if label_column not in columns and not one_hot:
        raise DatasetError(f"{path}: no label column {label_column!r} (has {columns})")
    rows = []
    for number, record in enumerate(records, start=2):
        file = (record.get(file_column) or "").strip()
        if not file:
            raise DatasetError(f"{path}, line {number}: empty {file_column!r}")
        if label_column in columns:
            raw = (record.get(label_column) or "").strip()
            values = {v.strip() for v in re.split(r"[;|]", raw) if v.strip()}
        else:
            values = set()
        values |= {c for c in one_hot if (record.get(c) or "").strip() in ("1", "1.0", "true")}
        stem_patient, stem_eye = split_patient_eye(Path(file).stem)
        patient = (record.get(patient_column) or "").strip() if patient_column else ""
        eye = (record.get("eye") or "").strip() or stem_eye
        source = (record.get("dataset") or "").strip() or path.name
        rows.append(_Row(file, values, patient or stem_patient, eye, source))
    described = f"{path.parent.name}/{path.name}" + (
        " (" + ", ".join(f"{k}={v}" for k, v in where.items()) + ")" if where else ""
    )
    return rows, described, path.parent


def _odir_rows(records: list[dict[str, str]], columns: list[str]) -> list[_Row]:
    """ODIR's N…O flags are per patient; per-eye labels come from each eye's keywords."""
    rows: dict[str, _Row] = {}
    for record in records:
        patient = (record.get("ID") or "").strip()
        eyes = ("Left", "Right")
        if (record.get("filename") or "").strip():
            _, eye = split_patient_eye(Path(record["filename"]).stem)
            eyes = ("Left",) if eye == "left" else ("Right",)
        for side in eyes:
            file = (record.get(f"{side}-Fundus") or "").strip()
            if not file or file in rows:
                continue
            codes = odir_codes(record.get(f"{side}-Diagnostic Keywords") or "")
            rows[file] = _Row(file, codes, patient or split_patient_eye(file)[0], side.lower())
    return list(rows.values())


def _default_labels(rows: list[_Row], task: str) -> list[TrainLabel]:
    from .labels import make_label

    names = sorted({v for row in rows for v in row.values})
    if task == "binary":
        raise DatasetError("a binary task needs --labels NAME (the positive class)")
    if not names:
        raise DatasetError("the dataset carries no labels")
    return [make_label(name) for name in names]


def _to_samples(
    rows: list[_Row],
    labels: list[TrainLabel],
    task: str,
    root: Path,
    positive: Sequence[str] | None,
    description: str,
) -> LabelledSet:
    keys = [label_keys(label) for label in labels]
    positive_keys = {p.strip().lower() for p in positive} if positive else None
    dropped: Counter[str] = Counter()
    samples = []
    seen_values: Counter[str] = Counter()
    for row in rows:
        lowered = {v.lower() for v in row.values}
        seen_values.update(row.values)
        if task == "binary":
            if not row.values:
                dropped["no label value"] += 1
                continue
            hit = bool(lowered & positive_keys) if positive_keys else bool(lowered & keys[0])
            target = (1.0 if hit else 0.0,)
        else:
            target = tuple(1.0 if lowered & k else 0.0 for k in keys)
            if task == "multiclass" and sum(target) != 1:
                dropped["no label among --labels" if not sum(target) else "several labels"] += 1
                continue
        path = Path(row.file) if Path(row.file).is_absolute() else root / row.file
        samples.append(Sample(path, target, row.patient, row.eye, row.source))
    if not samples:
        found = ", ".join(f"{v} ({n})" for v, n in seen_values.most_common(12))
        raise DatasetError(
            f"label mismatch: no row carries any of {[label.name for label in labels]}; "
            f"the data's labels are: {found or 'none'}"
        )
    missing = [s.path for s in samples if not s.path.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        raise DatasetError(
            f"{len(missing)} of {len(samples)} image files are missing (e.g. {shown}); "
            "pass --images FOLDER if the paths are relative to another folder"
        )
    return LabelledSet(samples, labels, task, description, dict(dropped))


# --- patient-level split ----------------------------------------------------------------------
def split_by_patient(
    samples: Sequence[Sample], *, fractions: Sequence[float], seed: int
) -> list[list[int]]:
    """Indices for train + one list per fraction (e.g. validation, test), all eyes of a patient
    on the same side; stratified by source and each patient's rarest label, so every side sees
    each class of each source.
    """
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise DatasetError("split fractions must be ≥ 0 and add up to less than 1")
    by_patient: dict[str, list[int]] = defaultdict(list)
    for i, sample in enumerate(samples):
        by_patient[sample.patient].append(i)
    frequency = Counter()
    for sample in samples:
        frequency.update(j for j, v in enumerate(sample.target) if v)
    strata: dict[tuple[str, int], list[str]] = defaultdict(list)
    for patient, indices in by_patient.items():
        present = {j for i in indices for j, v in enumerate(samples[i].target) if v}
        rarest = min(present, key=lambda j: (frequency[j], j)) if present else -1
        strata[(samples[indices[0]].source, rarest)].append(patient)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for key in sorted(strata):
        patients = sorted(strata[key])
        rng.shuffle(patients)
        n = len(patients)
        bounds = np.cumsum([0, *[math.floor(f * n + 0.5) for f in fractions]])
        for part, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True), start=1):
            for patient in patients[lo:hi]:
                parts[part].extend(by_patient[patient])
        for patient in patients[bounds[-1] :]:
            parts[0].extend(by_patient[patient])
    return [sorted(p) for p in parts]


# --- cache ------------------------------------------------------------------------------------
def cache_key(samples: Sequence[Sample], card: ModelCard) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([card.input_size, list(card.preprocessing)]).encode())
    for sample in samples:
        stat = sample.path.stat()
        digest.update(f"{sample.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def preprocess_image(path: Path, card: ModelCard) -> np.ndarray:
    """One photo → the uint8 square the model sees (the inference core's own path)."""
    image = np.asarray(load_fundus_image(path))
    square, _box = model_square(image, detect_fundus(image), card)
    return square


def build_cache(
    samples: Sequence[Sample],
    card: ModelCard,
    cache_dir: str | Path | None,
    *,
    progress: Callable[[Iterable[int], int], Iterable[int]] | None = None,
) -> np.ndarray:
    """``N × S × S × 3`` uint8 squares, computed once and kept in ``cache_dir`` (memory-mapped)."""
    size = card.input_size
    shape = (len(samples), size, size, 3)
    indices: Iterable[int] = range(len(samples))
    if progress is not None:
        indices = progress(indices, len(samples))
    if cache_dir is None:
        array = np.empty(shape, np.uint8)
        for i in indices:
            array[i] = _preprocess_or_fail(samples[i], card)
        return array
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"squares-{size}-{cache_key(samples, card)}.npy"
    if final.is_file():
        return np.load(final, mmap_mode="r")
    partial = final.with_suffix(f".{os.getpid()}.partial")
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
    try:
        for i in indices:
            array[i] = _preprocess_or_fail(samples[i], card)
        array.flush()
        del array
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    return np.load(final, mmap_mode="r")


def _preprocess_or_fail(sample: Sample, card: ModelCard) -> np.ndarray:
    try:
        return preprocess_image(sample.path, card)
    except ImageDecodeError as exc:
        raise DatasetError(f"{sample.path}: {exc}") from None


# --- augmentation and torch datasets ----------------------------------------------------------
@dataclass(frozen=True)
class Augmentation:
    """Fundus-safe jitter: flips, small rotation/scale/shift, brightness/contrast/gamma.

    No colour inversion or hue shifts (lens opacity and disc pallor are colour findings);
    the black surround stays black.
    """

    hflip: float = 0.5
    vflip: float = 0.2
    rotate: float = 15.0  # degrees, ±
    scale: float = 0.08  # ±
    shift: float = 0.03  # fraction of the side, ±
    brightness: float = 0.2
    contrast: float = 0.2
    gamma: float = 0.2

    def scaled_photometric(self, factor: float) -> Augmentation:
        """The same geometry with brightness/contrast/gamma jitter scaled by ``factor``."""
        return replace(
            self,
            brightness=self.brightness * factor,
            contrast=self.contrast * factor,
            gamma=self.gamma * factor,
        )

    def __call__(self, square: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = square.shape[0]
        angle = rng.uniform(-self.rotate, self.rotate)
        scale = 1.0 + rng.uniform(-self.scale, self.scale)
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
        matrix[:, 2] += rng.uniform(-self.shift, self.shift, size=2) * size
        out = cv2.warpAffine(
            np.ascontiguousarray(square),
            matrix,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        if rng.random() < self.hflip:
            out = out[:, ::-1]
        if rng.random() < self.vflip:
            out = out[::-1]
        mask = out.max(axis=2) > 8
        pixels = out.astype(np.float32) / 255.0
        pixels **= np.exp(rng.uniform(-self.gamma, self.gamma))
        if mask.any():
            mean = pixels[mask].mean(axis=0)
            pixels = (pixels - mean) * (1.0 + rng.uniform(-self.contrast, self.contrast)) + mean
        pixels *= 1.0 + rng.uniform(-self.brightness, self.brightness)
        pixels[~mask] = 0.0
        return np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)


class SquareDataset(Dataset):
    """Cached squares → (uint8 ``3×S×S`` tensor, float target); normalised later per batch."""

    def __init__(
        self,
        squares: np.ndarray,
        targets: np.ndarray,
        indices: Sequence[int],
        *,
        augment: Augmentation | None = None,
        seed: int = 0,
        size: int | None = None,
    ) -> None:
        self.squares = squares
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.indices = list(indices)
        self.augment = augment
        self.size = size
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.indices[item]
        square = np.array(self.squares[index])  # a writable copy of the (memory-mapped) cache
        if self.augment is not None:
            square = self.augment(square, self.rng)
        if self.size is not None and self.size != square.shape[0]:
            square = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
        tensor = torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1)
        return tensor, self.targets[index]


def normalise_batch(
    batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """uint8 ``N×3×H×W`` → float, the same arithmetic as the inference core's ``normalise``."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=batch.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=batch.device).view(1, 3, 1, 1)
    return batch.float().div_(255.0).sub_(mean_t).div_(std_t)
