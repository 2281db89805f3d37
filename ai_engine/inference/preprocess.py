"""Fundus field detection, crop, pad, resize and normalisation.

Everything is axis-aligned, so the whole geometry is one box in original-photo pixel
coordinates (:class:`CropBox`, possibly reaching outside the photo, which reads as black)
mapped onto a ``size × size`` square. Heatmaps are mapped back with the same box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from .card import ModelCard

DETECT_SIZE = 512


@dataclass(frozen=True)
class CropBox:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def squared(self) -> CropBox:
        if abs(self.width - self.height) <= 1e-9 * max(self.width, self.height):
            return self
        side = max(self.width, self.height)
        cx, cy = (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2
        return CropBox(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)

    def to_dict(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 2) for k in ("x0", "y0", "x1", "y1")}


@dataclass(frozen=True)
class FundusGeometry:
    """Where the fundus is in the original photo (pixels of the original)."""

    width: int
    height: int
    found: bool
    cx: float
    cy: float
    radius: float
    fov_fraction: float  # share of the photo covered by the visible fundus
    circle_visible: float  # share of the fitted circle that lies inside the photo

    @property
    def box(self) -> CropBox:
        """Square bounding box of the fundus circle (the whole photo, squared, if not found)."""
        if not self.found:
            return CropBox(0.0, 0.0, float(self.width), float(self.height)).squared()
        r = self.radius
        return CropBox(self.cx - r, self.cy - r, self.cx + r, self.cy + r)

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "width": self.width,
            "height": self.height,
            "found": self.found,
            "cx": round(self.cx, 2),
            "cy": round(self.cy, 2),
            "radius": round(self.radius, 2),
            "fov_fraction": round(self.fov_fraction, 4),
            "circle_visible": round(self.circle_visible, 4),
        }


def as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 image")
    return array


def _fit_circle(points: np.ndarray) -> tuple[float, float, float, float]:
    """Algebraic (Kasa) least-squares circle; returns cx, cy, r and the RMS residual / r."""
    x, y = points[:, 0], points[:, 1]
    a = np.column_stack([x, y, np.ones_like(x)])
    b = x * x + y * y
    (c0, c1, c2), *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = c0 / 2, c1 / 2
    r = float(np.sqrt(max(c2 + cx * cx + cy * cy, 0.0)))
    if r <= 0:
        return cx, cy, 0.0, np.inf
    residual = float(np.sqrt(np.mean((np.hypot(x - cx, y - cy) - r) ** 2)) / r)
    return float(cx), float(cy), r, residual


def detect_fundus(
    image: Image.Image | np.ndarray, *, detect_size: int = DETECT_SIZE
) -> FundusGeometry:
    """Find the circular field of view: threshold, largest blob, circle fit on its rim.

    Detection runs on a copy downscaled to ``detect_size``; rim points lying on the photo's
    edges are ignored so that circles clipped by a tight crop are still fitted correctly.
    """
    array = as_array(image)
    height, width = array.shape[:2]
    scale = min(1.0, detect_size / max(height, width))
    small = array
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    brightness = small.max(axis=2)
    # The black surround is JPEG noise below ~10; dim photos need a floor relative to them.
    level = max(4.0, min(20.0, 0.1 * float(np.percentile(brightness, 99))))
    binary = (brightness > level).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)  # drops burnt-in text
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    not_found = FundusGeometry(
        width=width,
        height=height,
        found=False,
        cx=width / 2,
        cy=height / 2,
        radius=max(width, height) / 2,
        fov_fraction=float(binary.mean()),
        circle_visible=0.0,
    )
    if not contours:
        return not_found
    largest = max(contours, key=cv2.contourArea)
    if cv2.contourArea(largest) < 0.01 * sw * sh:
        return not_found
    points = largest[:, 0, :].astype(np.float64)
    on_edge = (
        (points[:, 0] <= 1)
        | (points[:, 1] <= 1)
        | (points[:, 0] >= sw - 2)
        | (points[:, 1] >= sh - 2)
    )
    rim = points[~on_edge]
    if len(rim) < 12:
        return not_found
    cx, cy, r, residual = _fit_circle(rim)
    # A second fit without outliers, so straight cuts by the camera mask don't bend the circle.
    distance = np.abs(np.hypot(rim[:, 0] - cx, rim[:, 1] - cy) - r)
    keep = distance <= max(2.0, 3.0 * float(np.median(distance)) * 1.4826)
    if keep.sum() >= 20:
        cx, cy, r, residual = _fit_circle(rim[keep])
    angles = np.arctan2(rim[:, 1] - cy, rim[:, 0] - cx)
    octants = np.unique(np.floor((angles + np.pi) / (np.pi / 4)).astype(int) % 8)
    # Montages fit at ~0.08, a true circle at ~0.005; a short arc cannot fix a circle.
    fitted = (
        np.isfinite(residual)
        and residual <= 0.12
        and len(octants) >= 3
        and 0.05 * max(sw, sh) < r < 2.0 * max(sw, sh)
    )
    if not fitted:
        if cv2.contourArea(largest) < 0.2 * sw * sh:
            return not_found
        # Odd masks (stretched, half-shadowed fields): the blob's enclosing circle.
        (cx, cy), r = cv2.minEnclosingCircle(largest)
    circle = np.zeros((sh, sw), np.uint8)
    cv2.circle(circle, (round(cx), round(cy)), round(r), 1, thickness=-1)
    inside = float(circle.sum())
    circle_visible = min(1.0, inside / (np.pi * r * r)) if r > 0 else 0.0
    return FundusGeometry(
        width=width,
        height=height,
        found=True,
        cx=cx / scale if scale < 1 else cx,
        cy=cy / scale if scale < 1 else cy,
        radius=r / scale if scale < 1 else r,
        fov_fraction=inside / (sw * sh),
        circle_visible=circle_visible,
    )


def render_box(image: Image.Image | np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Crop ``box`` (black outside the photo) and resize it to ``size × size``."""
    array = as_array(image)
    height, width = array.shape[:2]
    out = np.zeros((size, size, 3), np.uint8)
    sx, sy = size / box.width, size / box.height
    ix0, iy0 = max(0, int(np.floor(box.x0))), max(0, int(np.floor(box.y0)))
    ix1, iy1 = min(width, int(np.ceil(box.x1))), min(height, int(np.ceil(box.y1)))
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    ox0, oy0 = round((ix0 - box.x0) * sx), round((iy0 - box.y0) * sy)
    ox1, oy1 = round((ix1 - box.x0) * sx), round((iy1 - box.y0) * sy)
    ox0, oy0, ox1, oy1 = max(0, ox0), max(0, oy0), min(size, ox1), min(size, oy1)
    if ox1 <= ox0 or oy1 <= oy0:
        return out
    region = array[iy0:iy1, ix0:ix1]
    shrinking = (ox1 - ox0) < region.shape[1] or (oy1 - oy0) < region.shape[0]
    out[oy0:oy1, ox0:ox1] = cv2.resize(
        region,
        (ox1 - ox0, oy1 - oy0),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    return out


def fov_mask(
    geometry: FundusGeometry, box: CropBox, size: int, *, shrink: float = 1.0
) -> np.ndarray:
    """Boolean ``size × size`` mask of the fundus circle (× ``shrink``) inside the photo, in box space."""
    sx, sy = size / box.width, size / box.height
    mask = np.zeros((size, size), np.uint8)
    in_photo = (
        round((0 - box.x0) * sx),
        round((0 - box.y0) * sy),
        round((geometry.width - box.x0) * sx),
        round((geometry.height - box.y0) * sy),
    )
    cv2.rectangle(mask, in_photo[:2], (in_photo[2] - 1, in_photo[3] - 1), 1, thickness=-1)
    if not geometry.found:
        return mask.astype(bool)
    circle = np.zeros_like(mask)
    centre = (round((geometry.cx - box.x0) * sx), round((geometry.cy - box.y0) * sy))
    cv2.circle(circle, centre, max(1, round(geometry.radius * shrink * sx)), 1, thickness=-1)
    return (mask & circle).astype(bool)


def model_box(geometry: FundusGeometry, card: ModelCard) -> CropBox:
    steps = card.preprocessing
    if "fundus_crop" in steps:
        box = geometry.box
    else:
        box = CropBox(0.0, 0.0, float(geometry.width), float(geometry.height))
    return box.squared() if "pad_square" in steps else box


def apply_clahe(square: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(square, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def apply_ben_graham(square: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Ben Graham's local-average subtraction (Kaggle DR 2015), masked to the fundus."""
    sigma = square.shape[0] / 30
    blurred = cv2.GaussianBlur(square, (0, 0), sigma)
    out = cv2.addWeighted(square, 4.0, blurred, -4.0, 128.0)
    out[~mask] = 0
    return out


def normalise(square: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    tensor = torch.from_numpy(square).permute(2, 0, 1).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)


def model_square(
    image: Image.Image | np.ndarray, geometry: FundusGeometry, card: ModelCard
) -> tuple[np.ndarray, CropBox]:
    """The uint8 ``input_size`` square the model sees (before normalisation), and its box."""
    box = model_box(geometry, card)
    square = render_box(image, box, card.input_size)
    for step in card.preprocessing:
        if step == "clahe":
            square = apply_clahe(square)
        elif step == "ben_graham":
            square = apply_ben_graham(square, fov_mask(geometry, box, card.input_size, shrink=0.95))
    return square, box


def preprocess_for_model(
    image: Image.Image | np.ndarray, card: ModelCard, geometry: FundusGeometry | None = None
) -> tuple[torch.Tensor, CropBox]:
    """Photo → normalised float CHW tensor for ``card`` (the same path for training and inference)."""
    if geometry is None:
        geometry = detect_fundus(image)
    square, box = model_square(image, geometry, card)
    return normalise(square, card.mean, card.std), box
