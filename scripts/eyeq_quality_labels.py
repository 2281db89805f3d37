"""Join the EyeQ quality grades with the fundus table into a training CSV for the quality model.

Reads ``fundus/labels.csv`` (file, dataset, patient, eye, ...) and
``reference/eyeq_quality.csv`` (file, quality) under ``--data`` and writes one row per graded
photo: ``file, dataset, patient, eye, quality`` (paths relative to ``fundus/``, so train with
``--images <data>/fundus``). The output is derived from licensed labels (EyeQ: CC BY-NC-SA 4.0)
and goes to a git-ignored place (``var/`` by default); never commit it.

    .venv/bin/python scripts/eyeq_quality_labels.py [--data ../shared/data] [--out var/quality/eyeq_labels.csv]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

QUALITY_GRADES = ("good", "usable", "reject")
COLUMNS = ("file", "dataset", "patient", "eye", "quality")


class LabelJoinError(ValueError):
    """The inputs cannot be joined; the message says what is wrong."""


def join_quality_labels(fundus_rows: list[dict[str, str]], eyeq_rows: list[dict[str, str]]):
    """The EyeQ-graded rows of the fundus table with their grade, in the fundus table's order."""
    grades: dict[str, str] = {}
    for number, row in enumerate(eyeq_rows, start=2):
        file = (row.get("file") or "").strip()
        grade = (row.get("quality") or "").strip()
        if not file or grade not in QUALITY_GRADES:
            raise LabelJoinError(
                f"eyeq_quality.csv line {number}: needs a file and a quality in "
                f"{', '.join(QUALITY_GRADES)} (got {file!r}, {grade!r})"
            )
        if grades.setdefault(file, grade) != grade:
            raise LabelJoinError(f"eyeq_quality.csv: {file} is graded twice, differently")
    joined = []
    for row in fundus_rows:
        file = (row.get("file") or "").strip()
        if file in grades:
            joined.append(
                {
                    "file": file,
                    "dataset": row.get("dataset", ""),
                    "patient": row.get("patient", ""),
                    "eye": row.get("eye", ""),
                    "quality": grades.pop(file),
                }
            )
    if grades:
        missing = sorted(grades)
        raise LabelJoinError(
            f"{len(missing)} EyeQ files are not in fundus/labels.csv (e.g. {missing[0]})"
        )
    return joined


def _read(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        raise LabelJoinError(f"{path}: not found") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("var/quality/eyeq_labels.csv"))
    args = parser.parse_args(argv)
    try:
        rows = join_quality_labels(
            _read(args.data / "fundus" / "labels.csv"),
            _read(args.data / "reference" / "eyeq_quality.csv"),
        )
    except LabelJoinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(args.out)
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["dataset"], row["quality"])
        counts[key] = counts.get(key, 0) + 1
    print(f"{args.out}: {len(rows)} photos")
    for (dataset, grade), n in sorted(counts.items()):
        print(f"  {dataset:12} {grade:7} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
