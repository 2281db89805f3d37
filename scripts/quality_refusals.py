"""How often a quality model refuses photos of sources that have no quality labels.

EyeQ grades only EyePACS photos. This runs the pipeline's gate (worker decode, fundus
detection, heuristic gate, then the quality model on the photos the heuristic passed) on the
other sources in ../shared/data (DR HAGIS camera photos, a seeded sample of ODIR, dr_camera and
dme photos) and counts refusals. No reference grade exists for them: a high share refused of a
source whose photos were all graded by its annotators means the model does not transfer there.
With ``--write-card`` the counts go into the card's ``validation.refusals_without_labels``.

    .venv/bin/python scripts/quality_refusals.py ai_engine/packages/ophai-quality [--write-card]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ai_engine.inference.card import CardError, parse_card  # noqa: E402
from ai_engine.inference.decode import load_working_copy  # noqa: E402
from ai_engine.inference.package import ModelPackage  # noqa: E402
from ai_engine.inference.predict import WORKING_MIN_SIDES, QualityModel  # noqa: E402
from ai_engine.inference.preprocess import detect_fundus  # noqa: E402
from ai_engine.inference.quality import check_quality  # noqa: E402


def _rows(path: Path, dataset: str | None = None) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if dataset is None or r["dataset"] == dataset]


def photo_sets(data: Path, sample: int, seed: int) -> dict[str, list[Path]]:
    rng = random.Random(seed)

    def pick(rows: list[dict[str, str]], root: Path) -> list[Path]:
        return [root / r["file"] for r in rng.sample(rows, min(sample, len(rows)))]

    return {
        "highres (DR HAGIS camera, all)": sorted((data / "highres").glob("*.jpg")),
        "odir": pick(_rows(data / "fundus" / "labels.csv", "odir"), data / "fundus"),
        "dr_camera": pick(_rows(data / "dr_camera" / "labels.csv"), data / "dr_camera"),
        "dme": pick(_rows(data / "dme" / "labels.csv"), data / "dme"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sample", type=int, default=120, help="photos per labelled source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-card", action="store_true")
    args = parser.parse_args(argv)
    gate = QualityModel(ModelPackage.load(args.package, "cpu"))
    counts = {}
    for name, paths in photo_sets(args.data, args.sample, args.seed).items():
        heuristic = model = 0
        for path in paths:
            photo, _ = load_working_copy(path, min_sides=WORKING_MIN_SIDES)
            array = np.asarray(photo)
            geometry = detect_fundus(array)
            quality = check_quality(array, geometry)
            if not quality.gradable:
                heuristic += 1
            elif quality.colour_models_apply:
                model += bool(gate.verdict(array, geometry)["rejected"])
        counts[name] = {
            "photos": len(paths),
            "heuristic_refused": heuristic,
            "model_refused": model,
        }
        print(
            f"{name}: {len(paths)} photos; heuristic refused {heuristic}; the model refused "
            f"{model} of the {len(paths) - heuristic} the heuristic passed"
        )
    if args.write_card:
        path = args.package / "model.json"
        card = json.loads(path.read_text(encoding="utf-8"))
        card.setdefault("validation", {})["refusals_without_labels"] = {
            "sample": f"{args.sample} per labelled source, seed {args.seed}; highres all",
            **counts,
        }
        try:
            parse_card(card)
        except CardError as exc:
            raise SystemExit(f"the updated card is invalid: {exc}") from None
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        partial.replace(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
