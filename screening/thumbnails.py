"""Small JPEG previews of fundus photos for lists and forms (the originals stay untouched)."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

from screening.models import FundusImage

THUMBNAIL_SIDE = 480


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


def thumbnail_name(image: FundusImage) -> str:
    return f"thumbnails/{image.sha256}.jpg"


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
        preview = to_display_rgb(ImageOps.exif_transpose(original))
        preview.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        preview.info.clear()
        buffer = io.BytesIO()
        preview.save(buffer, "JPEG", quality=85)
    return default_storage.save(name, ContentFile(buffer.getvalue()))
