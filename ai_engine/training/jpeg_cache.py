"""A compact, portable training cache: every photo's fundus crop at the training size as JPEG,
with a manifest in our ``labels.csv`` layout.

A training host (a GPU machine) receives tens of megabytes instead of the original photos,
and decoding and cropping camera-size photos happens once. ``train_model --data DIR`` (or
``DIR/manifest.csv``) reads the cache like any labelled CSV; the crop is found again on the
cached square, which is already the crop, so it changes nothing but the size.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ai_engine.inference.decode import ImageDecodeError, load_fundus_image
from ai_engine.inference.preprocess import detect_fundus, render_box

from .data import (
    FILE_COLUMNS,
    IMAGE_SUFFIXES,
    DatasetError,
    read_csv_records,
    split_patient_eye,
)

MANIFEST = "manifest.csv"
SUMMARY = "manifest.json"


@dataclass
class CacheSummary:
    out: Path
    written: int
    failed: list[str]
    bytes: int


def _rows(data: Path, where: dict[str, str]) -> tuple[list[dict[str, str]], Path, str]:
    """Rows of a CSV (all its columns) or of a folder with one sub-folder per class."""
    if data.is_dir():
        rows = []
        for class_dir in sorted(p for p in data.iterdir() if p.is_dir()):
            for path in sorted(class_dir.rglob("*")):
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                    patient, eye = split_patient_eye(path.stem)
                    rows.append(
                        {
                            "file": str(path.relative_to(data)),
                            "patient": patient,
                            "eye": eye,
                            "label": class_dir.name,
                        }
                    )
        return rows, data, "file"
    columns, rows = read_csv_records(data, where)
    file_column = next((c for c in FILE_COLUMNS if c in columns), None)
    if file_column is None:
        raise DatasetError(f"{data}: no image column; expected one of {', '.join(FILE_COLUMNS)}")
    return rows, data.parent, file_column


def build_jpeg_cache(
    data: str | Path,
    out: str | Path,
    *,
    size: int,
    where: dict[str, str] | None = None,
    images: str | Path | None = None,
    quality: int = 92,
    progress: Callable[[Iterable[int], int], Iterable[int]] | None = None,
) -> CacheSummary:
    """Crop every photo of ``data`` to its fundus square at ``size`` px and write
    ``out/images/…jpg`` plus ``out/manifest.csv`` (the source's columns, ``file`` pointing at the
    crop, ``original_file`` at the photo) and ``out/manifest.json``. Unreadable photos are left
    out and listed; the manifest is written last, so a cache without one is incomplete."""
    data, out = Path(data), Path(out)
    if not data.exists():
        raise DatasetError(f"{data}: no such file or folder")
    if not 32 <= size <= 2048:
        raise DatasetError(f"--size must be between 32 and 2048 px (got {size})")
    rows, root, file_column = _rows(data, where or {})
    if images is not None:
        root = Path(images)
    if not rows:
        raise DatasetError(f"{data}: no rows" + (f" with {where}" if where else ""))
    (out / "images").mkdir(parents=True, exist_ok=True)
    kept, failed, total = [], [], 0
    indices: Iterable[int] = range(len(rows))
    if progress is not None:
        indices = progress(indices, len(rows))
    for i in indices:
        row = dict(rows[i])
        original = row[file_column]
        source = Path(original) if Path(original).is_absolute() else root / original
        try:
            photo = np.asarray(load_fundus_image(source))
        except (ImageDecodeError, FileNotFoundError) as exc:
            failed.append(f"{original}: {exc}")
            continue
        geometry = detect_fundus(photo)
        square = render_box(photo, geometry.box.squared(), size)
        relative = Path("images") / Path(original.lstrip("/")).with_suffix(".jpg")
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(square).save(target, "JPEG", quality=quality)
        total += target.stat().st_size
        row.pop(file_column)
        kept.append(
            {
                "file": relative.as_posix(),
                **row,
                "width": size,
                "height": size,
                "original_file": original,
                "fundus_found": int(geometry.found),
            }
        )
    if not kept:
        raise DatasetError(f"{data}: no photo could be read ({failed[0] if failed else ''})")
    columns = list(dict.fromkeys(key for row in kept for key in row))
    partial = out / f"{MANIFEST}.{os.getpid()}.partial"
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(kept)
    (out / SUMMARY).write_text(
        json.dumps(
            {
                "source": str(data),
                "where": where or {},
                "size": size,
                "quality": quality,
                "preprocessing": ["fundus_crop", "pad_square", "resize"],
                "images": len(kept),
                "failed": failed,
                "bytes": total,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    partial.replace(out / MANIFEST)
    return CacheSummary(out, len(kept), failed, total)
