"""Quality gate: is this photo good enough to grade?

Metrics are measured on the fundus crop resized to ``QUALITY_SIZE`` so they do not depend
on the camera's resolution, inside the fundus circle shrunk to 90 % (the rim is vignetted).
Thresholds were calibrated by ``scripts/calibrate_quality.py`` on the real photos in
``../shared/data``; see ``QUALITY_CALIBRATION.md`` for the figures.

A greyscale or red-free photo is a fundus without colour, not "no fundus": it is gradable with
limits (reason ``monochrome``, see ``results.LIMITS``) and no colour model reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .preprocess import FundusGeometry, as_array, detect_fundus, fov_mask, render_box
from .results import LIMITS, REASONS, QualityResult

QUALITY_SIZE = 512
FOCUS_SIZE = 256
OCCLUSION_SIZE = 128


@dataclass(frozen=True)
class QualityThresholds:
    """Reject limits, and the typical value of a good photo (median of the real set)."""

    min_red_ratio: float = 0.336
    min_fov_fraction: float = 0.235
    min_diameter_px: float = 228.0
    min_brightness: float = 12.7
    max_dark_fraction: float = 0.859
    max_clipped_fraction: float = 0.273
    max_brightness: float = 221.0
    min_contrast: float = 0.0417
    min_sharpness: float = 20.0
    max_occluded_fraction: float = 0.254
    max_grey_saturation: float = 0.0456
    min_red_free_green_ratio: float = 0.709
    good_red_ratio: float = 0.494
    good_fov_fraction: float = 0.769
    good_diameter_px: float = 399.0
    good_brightness: float = 94.6
    good_contrast: float = 0.231
    good_sharpness: float = 258.0


# Proposed by scripts/calibrate_quality.py (seed 0, 400 labelled + 40 camera photos, 65 degraded
# copies per kind; figures in QUALITY_CALIBRATION.md). Re-run it when the camera fleet changes.
DEFAULT_THRESHOLDS = QualityThresholds()


def measure_quality(
    image: Image.Image | np.ndarray, geometry: FundusGeometry | None = None
) -> dict[str, Any]:
    """The raw quality metrics of a photo (see module docstring)."""
    array = as_array(image)
    if geometry is None:
        geometry = detect_fundus(array)
    box = geometry.box
    square = render_box(array, box, QUALITY_SIZE)
    mask = fov_mask(geometry, box, QUALITY_SIZE, shrink=0.9)
    if mask.sum() < 100:
        mask = fov_mask(geometry, box, QUALITY_SIZE)
    gray = cv2.cvtColor(square, cv2.COLOR_RGB2GRAY)
    inside = gray[mask].astype(np.float64)
    pixels = square[mask].astype(np.float64)
    brightness = float(inside.mean()) if inside.size else 0.0
    channel_means = pixels.mean(axis=0) if inside.size else np.zeros(3)
    # Focus at a fixed 256 px: vessels still show, most JPEG noise of 400 px photos does not (the
    # block artefacts of a blurred upload still do: the limit is calibrated on blurred copies
    # re-encoded as JPEG). The eroded mask keeps the FOV rim (always sharp) out of the measure.
    green = cv2.resize(square[..., 1], (FOCUS_SIZE, FOCUS_SIZE), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(
        mask.astype(np.uint8), (FOCUS_SIZE, FOCUS_SIZE), interpolation=cv2.INTER_NEAREST
    )
    core = cv2.erode(small_mask, np.ones((5, 5), np.uint8)).astype(bool)
    laplacian = cv2.Laplacian(green.astype(np.float64), cv2.CV_64F, ksize=3)[core]
    # Obstruction (eyelid, lashes, a misplaced mask): the share of the field far darker than its
    # bright part, on a smoothed 128 px copy so that vessels and the macula do not count.
    size = (OCCLUSION_SIZE, OCCLUSION_SIZE)
    small = cv2.resize(square, size, interpolation=cv2.INTER_AREA)
    small_field = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    smooth = cv2.GaussianBlur(
        cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 3.0
    )[small_field]
    occluded = float((smooth < 0.25 * np.percentile(smooth, 90)).mean()) if smooth.size else 1.0
    # Monochrome: greyscale has no saturation; red-free is green-dominated (a colour fundus is red).
    colours = small[small_field].astype(np.float32)
    top = colours.max(axis=1) if colours.size else np.zeros(1, np.float32)
    saturation = (
        float(((top - colours.min(axis=1)) / np.maximum(top, 1.0)).mean()) if colours.size else 0.0
    )
    if geometry.found:
        diameter = min(2 * geometry.radius, float(geometry.width), float(geometry.height))
    else:
        diameter = float(min(geometry.width, geometry.height))
    return {
        "circle_found": geometry.found,
        "fov_fraction": round(geometry.fov_fraction, 4),
        "diameter_px": round(diameter, 1),
        "brightness": round(brightness, 2),
        "dark_fraction": round(float((inside < 20).mean()) if inside.size else 1.0, 4),
        # Green saturates only when the exposure is blown; red saturates on many good photos.
        "clipped_fraction": round(float((pixels[:, 1] >= 250).mean()) if inside.size else 0.0, 4),
        "contrast": round(float(inside.std() / max(brightness, 1.0)) if inside.size else 0.0, 4),
        "red_ratio": round(float(channel_means[0] / max(channel_means.sum(), 1e-6)), 4),
        "sharpness": round(float(laplacian.var()) if laplacian.size else 0.0, 4),
        "occluded_fraction": round(occluded, 4),
        "saturation": round(saturation, 4),
        "green_ratio": round(float(channel_means[1] / max(channel_means.sum(), 1e-6)), 4),
    }


def _component(value: float, limit: float, good: float) -> float:
    """0.5 at the limit, 1 at the typical good value, 0 as far below the limit."""
    span = good - limit
    if span == 0:
        return 1.0 if value >= limit else 0.0
    return float(0.5 + 0.5 * np.clip((value - limit) / span, -1.0, 1.0))


def assess_quality(
    metrics: dict[str, Any], thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> QualityResult:
    """Turn metrics into a verdict. ``score >= 0.5`` exactly when the photo is gradable."""
    t = thresholds
    reasons: list[str] = []
    components: list[float] = []

    def check(reason: str, value: float, limit: float, good: float) -> None:
        component = _component(value, limit, good)
        components.append(component)
        if value < limit and reason not in reasons:
            reasons.append(reason)

    if not metrics["circle_found"]:
        reasons.append("no_fundus")
        components.append(0.0)
    if is_monochrome(metrics, t):
        reasons.append("monochrome")  # a fundus without colour, not "no fundus"
    else:
        check("no_fundus", metrics["red_ratio"], t.min_red_ratio, t.good_red_ratio)
    if metrics["circle_found"]:
        check(
            "small_field_of_view", metrics["fov_fraction"], t.min_fov_fraction, t.good_fov_fraction
        )
    check("too_small", metrics["diameter_px"], t.min_diameter_px, t.good_diameter_px)
    check("underexposed", metrics["brightness"], t.min_brightness, t.good_brightness)
    # "Lower is better" metrics enter negated.
    check("underexposed", -metrics["dark_fraction"], -t.max_dark_fraction, 0.0)
    check("overexposed", -metrics["clipped_fraction"], -t.max_clipped_fraction, 0.0)
    check("overexposed", -metrics["brightness"], -t.max_brightness, -t.good_brightness)
    check("low_contrast", metrics["contrast"], t.min_contrast, t.good_contrast)
    check("out_of_focus", metrics["sharpness"], t.min_sharpness, t.good_sharpness)
    occluded = metrics.get("occluded_fraction", 0.0)
    check("partial_field", -occluded, -t.max_occluded_fraction, 0.0)
    reasons = [r for r in REASONS if r in reasons]
    gradable = not [r for r in reasons if r not in LIMITS]
    score = round(min(components), 4)
    if not gradable:
        score = min(score, 0.4999)
    return QualityResult(score=score, gradable=gradable, reasons=reasons, metrics=metrics)


def is_monochrome(
    metrics: dict[str, Any], thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> bool:
    """A fundus photo without colour: greyscale, or red-free (green-filtered)."""
    if not metrics["circle_found"]:
        return False
    return (
        metrics.get("saturation", 1.0) < thresholds.max_grey_saturation
        or metrics.get("green_ratio", 0.0) > thresholds.min_red_free_green_ratio
    )


def check_quality(
    image: Image.Image | np.ndarray,
    geometry: FundusGeometry | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> QualityResult:
    return assess_quality(measure_quality(image, geometry), thresholds)
