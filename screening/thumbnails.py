"""Small JPEG previews of fundus photos for lists and forms (the originals stay untouched)."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

from screening.models import FundusImage

THUMBNAIL_SIDE = 480
# Cheap fundus box (the engine's circle fit is not for the web process): a pixel is fundus when
# its red channel passes FUNDUS_RED on a small copy; a row or column belongs to the fundus when
# more than FUNDUS_LINE_SHARE of it does, which leaves camera text and dust in the black frame out.
FUNDUS_PROBE_SIDE = 256
FUNDUS_RED = 30
FUNDUS_LINE_SHARE = 0.05
FUNDUS_MIN_SHARE = 0.05  # less fundus than this in the frame: keep the whole photo
FUNDUS_MARGIN = 0.02


def to_display_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for display: 16-bit scaled (not clipped), CMYK converted, alpha flattened on black."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value / 257).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def fundus_box(image: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the fundus in an RGB photo, with a small margin; the whole
    frame when no fundus stands out (a photo already cropped keeps its frame too)."""
    probe = image.copy()
    probe.thumbnail((FUNDUS_PROBE_SIDE, FUNDUS_PROBE_SIDE))
    lit = np.asarray(probe.getchannel("R")) > FUNDUS_RED
    height, width = lit.shape
    rows = np.flatnonzero(lit.sum(axis=1) > FUNDUS_LINE_SHARE * width)
    cols = np.flatnonzero(lit.sum(axis=0) > FUNDUS_LINE_SHARE * height)
    if lit.mean() < FUNDUS_MIN_SHARE or rows.size == 0 or cols.size == 0:
        return (0, 0, image.width, image.height)
    scale_x, scale_y = image.width / width, image.height / height
    margin = FUNDUS_MARGIN * max(cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)
    return (
        max(0, round((cols[0] - margin) * scale_x)),
        max(0, round((rows[0] - margin) * scale_y)),
        min(image.width, round((cols[-1] + 1 + margin) * scale_x)),
        min(image.height, round((rows[-1] + 1 + margin) * scale_y)),
    )


def crop_to_fundus(image: Image.Image) -> Image.Image:
    """The fundus, centred on a black square (so a disc cut by the frame is not stretched)."""
    left, top, right, bottom = fundus_box(image)
    fundus = image.crop((left, top, right, bottom))
    side = max(fundus.size)
    square = Image.new("RGB", (side, side), (0, 0, 0))
    square.paste(fundus, ((side - fundus.width) // 2, (side - fundus.height) // 2))
    return square


def thumbnail_name(image: FundusImage) -> str:
    return f"thumbnails/{image.sha256}-fundus.jpg"


def thumbnail_for(image: FundusImage) -> str:
    """The storage name of the photo's preview, made on first use."""
    name = thumbnail_name(image)
    if default_storage.exists(name):
        return name
    # From the sanitised copy: a preview re-encoded from the original would keep its JPEG
    # comment (Pillow carries it through convert() and save()).
    source = image.sanitized_file.name or image.file.name
    with default_storage.open(source, "rb") as handle, Image.open(handle) as original:
        original.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))
        preview = crop_to_fundus(to_display_rgb(ImageOps.exif_transpose(original)))
        preview.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        preview.info.clear()
        buffer = io.BytesIO()
        preview.save(buffer, "JPEG", quality=85)
    return default_storage.save(name, ContentFile(buffer.getvalue()))
