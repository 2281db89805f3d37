"""Does decoding camera JPEGs at a reduced DCT scale change what the engine says?

    .venv/bin/python scripts/check_working_copy.py [--package ai_engine/packages/ophai-demo-screening]
        [--photos ../shared/data/highres]

Runs the whole pipeline (quality gate, classifier, CAMs, overlays) on every photo twice: fully
decoded (an opened Pillow image skips the reduced decode) and as the worker does it (the file's
bytes, decoded at the scale WORKING_MIN_SIDES allows). Prints per photo the quality verdicts,
the largest probability difference and both times; exits 1 if any verdict or positive finding
differs. Needs no database.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ai_engine.inference.decode import load_fundus_image  # noqa: E402
from ai_engine.inference.package import ModelPackage  # noqa: E402
from ai_engine.inference.predict import WORKING_MIN_SIDES, analyse_images  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--package", type=Path, default=ROOT / "ai_engine" / "packages" / "ophai-demo-screening"
    )
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "highres")
    args = parser.parse_args()

    package = ModelPackage.load(args.package, "cpu")
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no JPEG photos in {args.photos}")
    analyse_images([photos[0].read_bytes()], [package])  # warm-up
    disagreements, largest, full_total, working_total = 0, 0.0, 0.0, 0.0
    print(f"working copy: at least {WORKING_MIN_SIDES[0]}×{WORKING_MIN_SIDES[1]} px")
    print(
        f"{'photo':<10}{'size':>11}{'quality full/working':>24}{'max |Δp|':>10}{'full s':>8}{'work s':>8}"
    )
    for path in photos:
        data = path.read_bytes()
        began = time.perf_counter()
        full = analyse_images([load_fundus_image(data)], [package])[0]
        full_s = time.perf_counter() - began
        began = time.perf_counter()
        working = analyse_images([data], [package])[0]
        working_s = time.perf_counter() - began
        full_total, working_total = full_total + full_s, working_total + working_s
        delta = 0.0
        same = full.quality.gradable == working.quality.gradable
        for a, b in zip(full.predictions, working.predictions, strict=True):
            for fa, fb in zip(a.findings, b.findings, strict=True):
                delta = max(delta, abs(fa.probability - fb.probability))
                same = same and fa.positive == fb.positive
        largest = max(largest, delta)
        disagreements += not same
        print(
            f"{path.name:<10}{full.width:>5}×{full.height:<5}"
            f"{full.quality.score:>11.3f} / {working.quality.score:<10.3f}{delta:>10.4f}"
            f"{full_s:>8.2f}{working_s:>8.2f}{'' if same else '  DIFFERENT'}"
        )
    print(
        f"{len(photos)} photos: {disagreements} with a different verdict or positive finding; "
        f"largest probability difference {largest:.4f}; pipeline time {full_total:.1f} s full, "
        f"{working_total:.1f} s working copy ({full_total / max(working_total, 1e-9):.1f}× faster)"
    )
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
