"""Real fundus photos made bad the ways a clinic sees: defocus, obstruction, no colour.

Plain numpy/OpenCV/Pillow (no Django): the inference tests, the pipeline tests and the
reliability suite's hostile inputs share them.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ai_engine.inference.preprocess import detect_fundus


def blurred(image: np.ndarray, fraction: float) -> np.ndarray:
    """Gaussian blur with sigma = ``fraction`` of the fundus diameter."""
    return cv2.GaussianBlur(image, (0, 0), 2 * detect_fundus(image).radius * fraction)


def half_covered(image: np.ndarray, side: str) -> np.ndarray:
    """Half of the fundus circle black, as behind a misplaced camera mask."""
    geometry = detect_fundus(image)
    out = image.copy()
    cx, cy = round(geometry.cx), round(geometry.cy)
    if side == "top":
        out[:cy] = 0
    elif side == "bottom":
        out[cy:] = 0
    elif side == "left":
        out[:, :cx] = 0
    else:
        out[:, cx:] = 0
    return out


def eyelid(image: np.ndarray, cover: float = 0.45) -> np.ndarray:
    """A drooping upper eyelid: a dark brown, curved, soft-edged region over the top of the field."""
    geometry = detect_fundus(image)
    r = geometry.radius
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    edge = (
        geometry.cy
        - r
        + cover * 2 * r
        + 0.25 * r * np.clip(1 - ((xx - geometry.cx) / r) ** 2, 0, 1)
    )
    visible = np.clip((yy - edge) / (0.03 * r) + 0.5, 0, 1)[..., None]
    lid = np.array([14, 8, 4], np.float32) * (image.max(axis=2, keepdims=True) > 10)
    return np.clip(image * visible + lid * (1 - visible), 0, 255).astype(np.uint8)


def greyscale(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L").convert("RGB"))


def red_free(image: np.ndarray) -> np.ndarray:
    """A red-free photo as cameras store it: the green channel, shown green."""
    out = np.zeros_like(image)
    out[..., 1] = image[..., 1]
    return out


def red_free_grey(image: np.ndarray) -> np.ndarray:
    """A red-free photo stored as greyscale (the green channel in all three)."""
    return np.repeat(image[..., 1:2], 3, axis=2)


def as_jpeg(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


# Each kind of bad photo, and the verdict a clinic expects: (gradable, reasons).
KINDS = {
    "blur": (lambda a: blurred(a, 0.02), (False, ["out_of_focus"])),
    "occlusion": (lambda a: half_covered(a, "top"), (False, ["partial_field"])),
    "eyelid": (eyelid, (False, ["partial_field"])),
    "greyscale": (greyscale, (True, ["monochrome"])),
    "red-free": (red_free, (True, ["monochrome"])),
}


def degraded_jpeg(photo: Path, kind: str) -> bytes:
    """``photo`` made bad as ``kind`` (a key of KINDS), encoded as a JPEG upload."""
    with Image.open(photo) as source:
        array = np.asarray(source.convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(KINDS[kind][0](array)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
