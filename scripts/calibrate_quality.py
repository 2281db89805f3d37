"""Calibrate the quality-gate thresholds of ai_engine/inference/quality.py on real photos.

Measures the quality metrics on a sample of the labelled (all gradable) photos in
../shared/data/fundus and on the camera-resolution photos in ../shared/data/highres, and on
degraded copies generated in memory (dark, overexposed, blurred and re-encoded as JPEG, low
contrast, black, noise, flat grey, text, tiny crop, small field of view, half covered, eyelid,
greyscale, red-free). Proposes thresholds that keep >= 99 % of the real photos while rejecting
the degraded ones, and reports how the thresholds currently in quality.py perform, including
their agreement with the EyeQ grades (good / usable / reject) of the EyePACS photos. Nothing is
written to disk.

    .venv/bin/python scripts/calibrate_quality.py [--data ../shared/data] [--sample 400]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ai_engine.inference.decode import load_fundus_image  # noqa: E402
from ai_engine.inference.preprocess import detect_fundus  # noqa: E402
from ai_engine.inference.quality import (  # noqa: E402
    DEFAULT_THRESHOLDS,
    QualityThresholds,
    assess_quality,
    measure_quality,
)

Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _dark(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(a.astype(np.float32) * rng.uniform(0.1, 0.2), 0, 255).astype(np.uint8)


def _overexposed(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(a.astype(np.float32) * rng.uniform(2.5, 4.0) + 40, 0, 255).astype(np.uint8)


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(a).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _blur(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Heavy defocus as uploaded: sigma 1.5-3 % of the fundus diameter, then JPEG q 60-95
    (the block artefacts of the upload read as detail to a focus measure)."""
    sigma = 2 * detect_fundus(a).radius * rng.uniform(0.015, 0.03)
    return _jpeg(cv2.GaussianBlur(a, (0, 0), sigma), int(rng.integers(60, 96)))


def _half_covered(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A straight black cover over 40-60 % of the fundus diameter, from a random side."""
    g = detect_fundus(a)
    out = a.copy()
    depth = 2 * g.radius * rng.uniform(0.4, 0.6)
    side = int(rng.integers(4))
    if side == 0:
        out[: max(0, int(g.cy - g.radius + depth))] = 0
    elif side == 1:
        out[max(0, int(g.cy + g.radius - depth)) :] = 0
    elif side == 2:
        out[:, : max(0, int(g.cx - g.radius + depth))] = 0
    else:
        out[:, max(0, int(g.cx + g.radius - depth)) :] = 0
    return out


def _eyelid(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark, curved, soft-edged upper eyelid over 35-55 % of the fundus diameter."""
    g = detect_fundus(a)
    r = g.radius
    yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]].astype(np.float32)
    cover = rng.uniform(0.35, 0.55)
    edge = g.cy - r + cover * 2 * r + 0.25 * r * np.clip(1 - ((xx - g.cx) / r) ** 2, 0, 1)
    visible = np.clip((yy - edge) / (0.03 * r) + 0.5, 0, 1)[..., None]
    lid = rng.uniform([5, 2, 0], [20, 12, 6]).astype(np.float32)
    lid = lid * (a.max(axis=2, keepdims=True) > 10)
    return np.clip(a * visible + lid * (1 - visible), 0, 255).astype(np.uint8)


def _greyscale(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _jpeg(np.asarray(Image.fromarray(a).convert("L").convert("RGB")), 90)


def _red_free_green(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A red-free photo as cameras store it: the green channel, shown green."""
    out = np.zeros_like(a)
    out[..., 1] = a[..., 1]
    return _jpeg(out, 90)


def _red_free_grey(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A red-free photo stored as greyscale."""
    return _jpeg(np.repeat(a[..., 1:2], 3, axis=2), 90)


def _low_contrast(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mask = a.max(axis=2) > 20
    mean = a[mask].mean(axis=0) if mask.any() else np.full(3, 100.0)
    out = mean + rng.uniform(0.1, 0.25) * (a.astype(np.float32) - mean)
    out[~mask] = 0
    return np.clip(out, 0, 255).astype(np.uint8)


def _black(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.zeros_like(a)


def _noise(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=a.shape, dtype=np.uint8)


def _flat_grey(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.full_like(a, int(rng.integers(60, 200)))


def _text(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    out = np.full_like(a, 245)
    scale = h / 400
    for i, y in enumerate(range(int(30 * scale), h, int(28 * scale) or 1)):
        cv2.putText(
            out,
            f"Patient report line {i} lorem ipsum",
            (int(10 * scale), y),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6 * scale,
            (20, 20, 20),
            max(1, int(scale)),
        )
    return out


def _tiny_crop(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    side = int(rng.integers(80, 160))
    small = cv2.resize(
        a,
        (max(1, w * side // max(h, w)), max(1, h * side // max(h, w))),
        interpolation=cv2.INTER_AREA,
    )
    return small


def _small_field(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    f = rng.uniform(0.25, 0.4)
    small = cv2.resize(a, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    out = np.zeros_like(a)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


DEGRADATIONS: dict[str, tuple[Degrade, str]] = {
    "dark x0.1-0.2": (_dark, "underexposed"),
    "overexposed x2.5-4": (_overexposed, "overexposed"),
    "blur 1.5-3% diam. + JPEG": (_blur, "out_of_focus"),
    "low contrast x0.1-0.25": (_low_contrast, "low_contrast"),
    "black": (_black, "no_fundus"),
    "uniform noise": (_noise, "no_fundus"),
    "flat grey": (_flat_grey, "no_fundus"),
    "text page": (_text, "no_fundus"),
    "tiny (80-160 px)": (_tiny_crop, "too_small"),
    "small field (25-40 %)": (_small_field, "small_field_of_view"),
    "half covered (40-60 %)": (_half_covered, "partial_field"),
    "eyelid (35-55 %)": (_eyelid, "partial_field"),
    "greyscale": (_greyscale, "monochrome"),
    "red-free (green)": (_red_free_green, "monochrome"),
    "red-free (grey)": (_red_free_grey, "monochrome"),
}
# Metrics that catch only some of their reason's degradations.
TARGETS = {
    "saturation": ("greyscale", "red-free (grey)"),
    "green_ratio": ("red-free (green)",),
}

# metric, direction (+1: reject below, -1: reject above), threshold field, good field
METRICS = (
    ("red_ratio", +1, "min_red_ratio", "good_red_ratio"),
    ("fov_fraction", +1, "min_fov_fraction", "good_fov_fraction"),
    ("diameter_px", +1, "min_diameter_px", "good_diameter_px"),
    ("brightness", +1, "min_brightness", "good_brightness"),
    ("dark_fraction", -1, "max_dark_fraction", None),
    ("clipped_fraction", -1, "max_clipped_fraction", None),
    ("brightness", -1, "max_brightness", None),
    ("contrast", +1, "min_contrast", "good_contrast"),
    ("sharpness", +1, "min_sharpness", "good_sharpness"),
    ("occluded_fraction", -1, "max_occluded_fraction", None),
    ("saturation", +1, "max_grey_saturation", None),
    ("green_ratio", -1, "min_red_free_green_ratio", None),
)
# Limits set by the degraded copies (the percentile of their values) where they overlap the real
# photos. Focus: hazy photos through a dense cataract are as featureless as heavily blurred ones
# (the ODIR cataract photos reach the blurred copies' range), and a photo without retinal detail
# is not gradable for the retina, so the limit rejects 90 % of the blurred copies instead of
# keeping every real photo. Obstruction: a few real photos are themselves half dark; the limit
# rejects 95 % of the obstructed copies. The cost on real photos is printed by source.
LIMIT_FROM_DEGRADED = {"sharpness": 90.0, "occluded_fraction": 5.0}


def load_sample(data: Path, sample: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Raw photos only: the ODIR and EyePACS 400 px photos (eyepacs256 is contrast-enhanced by
    its source), plus the camera-resolution photos."""
    with (data / "fundus" / "labels.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["dataset"] in ("odir", "eyepacs")]
    rng = random.Random(seed)
    chosen = rng.sample(rows, min(sample, len(rows)))
    photos = [
        (r["file"], np.asarray(load_fundus_image(data / "fundus" / r["file"]))) for r in chosen
    ]
    for path in sorted((data / "highres").glob("*.jpg")):
        photos.append((f"highres/{path.name}", np.asarray(load_fundus_image(path))))
    return photos


def _group(name: str) -> str:
    if name.startswith("highres/"):
        return "camera"
    parts = name.split("/")  # images/<dataset>/<label>/<file>
    return "odir cataract" if parts[2] == "cataract" else parts[1]


def load_eyeq(data: Path) -> list[tuple[str, str, dict]]:
    """(source, EyeQ grade, metrics) for every EyePACS photo in fundus/ that EyeQ graded."""
    with (data / "reference" / "eyeq_quality.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        array = np.asarray(load_fundus_image(data / "fundus" / row["file"]))
        out.append((row["file"].split("/")[1], row["quality"], measure_quality(array)))
    return out


def quantiles(values: list[float]) -> str:
    q = np.percentile(values, [0, 0.5, 1, 5, 50, 95, 100])
    return " ".join(f"{v:9.4g}" for v in q)


def propose(
    real: dict[str, list[float]], degraded: dict[str, dict[str, list[float]]]
) -> QualityThresholds:
    """Per metric: half-way (geometric where positive) between the real photos' 0.2 % tail and
    the targeted degraded photos' 95 % tail when they separate; otherwise 5 % beyond the most
    extreme real photo, so that no metric alone rejects more than ~0.2 % of real photos."""
    proposal = {}
    for metric, direction, limit_field, good_field in METRICS:
        values = np.asarray(real[metric])
        reason = "overexposed" if limit_field == "max_brightness" else REASON_OF_METRIC[metric]
        targeted = [
            v
            for name, (_, r) in DEGRADATIONS.items()
            if r == reason and name in TARGETS.get(metric, (name,))
            for v in degraded[name][metric]
        ]
        if metric in LIMIT_FROM_DEGRADED:
            limit = float(np.percentile(targeted, LIMIT_FROM_DEGRADED[metric]))
        elif direction > 0:
            real_tail = float(np.percentile(values, 0.2))
            bad_tail = float(np.percentile(targeted, 95)) if targeted else 0.0
            limit = (
                _between(bad_tail, real_tail)
                if bad_tail < real_tail
                else float(values.min()) * 0.95
            )
        else:
            real_tail = float(np.percentile(values, 99.8))
            bad_tail = float(np.percentile(targeted, 5)) if targeted else 1.0
            limit = (
                (bad_tail + real_tail) / 2 if bad_tail > real_tail else float(values.max()) * 1.05
            )
        proposal[limit_field] = float(f"{limit:.3g}")
        if good_field:
            proposal[good_field] = float(f"{float(np.median(values)):.3g}")
    return replace(DEFAULT_THRESHOLDS, **proposal)


REASON_OF_METRIC = {
    "red_ratio": "no_fundus",
    "fov_fraction": "small_field_of_view",
    "diameter_px": "too_small",
    "brightness": "underexposed",
    "dark_fraction": "underexposed",
    "clipped_fraction": "overexposed",
    "contrast": "low_contrast",
    "sharpness": "out_of_focus",
    "occluded_fraction": "partial_field",
    "saturation": "monochrome",
    "green_ratio": "monochrome",
}


def _between(low: float, high: float) -> float:
    if low > 0 and high > 0:
        return float(np.sqrt(low * high))
    return (low + high) / 2


def evaluate(
    thresholds: QualityThresholds,
    real_metrics: list[dict],
    groups: list[str],
    degraded_metrics: dict[str, list[dict]],
    eyeq: list[tuple[str, str, dict]],
) -> None:
    kept = [assess_quality(m, thresholds) for m in real_metrics]
    n_kept = sum(r.gradable for r in kept)
    print(f"  real photos kept gradable: {n_kept}/{len(kept)} ({100 * n_kept / len(kept):.1f} %)")
    reasons: dict[str, int] = {}
    by_group: dict[str, list[int]] = {}
    for r, group in zip(kept, groups, strict=True):
        for reason in r.reasons:
            reasons[reason] = reasons.get(reason, 0) + 1
        counts = by_group.setdefault(group, [0, 0])
        counts[0] += not r.gradable
        counts[1] += 1
    if reasons:
        print(f"  reasons on real photos: {reasons}")
    print("  rejected by source: " + ", ".join(f"{g} {n}/{t}" for g, (n, t) in by_group.items()))
    print(f"  {'degradation':26s} {'rejected':>9s} {'with expected reason':>21s}")
    for name, metrics in degraded_metrics.items():
        expected = DEGRADATIONS[name][1]
        results = [assess_quality(m, thresholds) for m in metrics]
        rejected = sum(not r.gradable for r in results)
        right = sum(expected in r.reasons for r in results)
        print(f"  {name:26s} {rejected:4d}/{len(results):<4d} {right:10d}/{len(results)}")
    if eyeq:
        print("  EyeQ agreement (ungradable by the gate / photos, per EyeQ grade):")
        for source in ("eyepacs", "eyepacs256"):
            cells = []
            for grade in ("good", "usable", "reject"):
                rows = [m for src, g, m in eyeq if src == source and g == grade]
                flagged = sum(not assess_quality(m, thresholds).gradable for m in rows)
                cells.append(
                    f"{grade} {flagged}/{len(rows)} ({100 * flagged / max(len(rows), 1):.1f} %)"
                )
            print(f"    {source:11s} " + "  ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--sample", type=int, default=400, help="labelled photos to sample")
    parser.add_argument("--degrade", type=int, default=60, help="photos to degrade per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-eyeq", action="store_true", help="skip the EyeQ agreement (1,241 photos, ~1 min)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    photos = load_sample(args.data, args.sample, args.seed)
    real_metrics = []
    for _, array in photos:
        real_metrics.append(measure_quality(array, detect_fundus(array)))
    groups = [_group(name) for name, _ in photos]
    eyeq = [] if args.no_eyeq else load_eyeq(args.data)
    rng = np.random.default_rng(args.seed)
    picks = random.Random(args.seed + 1).sample(range(len(photos)), min(args.degrade, len(photos)))
    # Always include some camera-resolution photos among the degraded ones.
    picks = sorted(set(picks) | set(range(len(photos) - 5, len(photos))))
    degraded_metrics: dict[str, list[dict]] = {}
    for name, (degrade, _) in DEGRADATIONS.items():
        degraded_metrics[name] = []
        for i in picks:
            copy = degrade(photos[i][1], rng)
            degraded_metrics[name].append(measure_quality(copy, detect_fundus(copy)))
    real = {m: [r[m] for r in real_metrics] for m, *_ in METRICS}
    degraded = {
        name: {m: [r[m] for r in rows] for m, *_ in METRICS}
        for name, rows in degraded_metrics.items()
    }
    found = sum(m["circle_found"] for m in real_metrics)
    n_hr = sum(1 for f, _ in photos if f.startswith("highres/"))
    print(
        f"photos: {len(photos)} real ({len(photos) - n_hr} labelled 400 px, {n_hr} camera-resolution); "
        f"{len(picks)} degraded per kind; circle found on {found}/{len(photos)} real"
    )
    print(
        f"\n{'metric':18s} {'set':26s}       min      p0.5        p1        p5       p50       p95       max"
    )
    for metric in dict.fromkeys(m for m, *_ in METRICS):
        print(f"{metric:18s} {'REAL (gradable)':26s} {quantiles(real[metric])}")
        for name in DEGRADATIONS:
            print(f"{'':18s} {name:26s} {quantiles(degraded[name][metric])}")
    proposal = propose(real, degraded)
    print("\nproposed thresholds:")
    for key, value in vars(proposal).items():
        print(f"  {key} = {value}")
    print("\nwith the proposed thresholds:")
    evaluate(proposal, real_metrics, groups, degraded_metrics, eyeq)
    print("\nwith the thresholds in quality.py (DEFAULT_THRESHOLDS):")
    evaluate(DEFAULT_THRESHOLDS, real_metrics, groups, degraded_metrics, eyeq)
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
