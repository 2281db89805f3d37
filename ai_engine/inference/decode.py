"""Decode an uploaded photo into an 8-bit RGB Pillow image, refusing anything doubtful."""

from __future__ import annotations

import io
import warnings
from math import ceil
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 60_000_000


class ImageDecodeError(ValueError):
    """The bytes are not a photo we can read safely."""


def load_fundus_image(
    source: str | Path | bytes | Image.Image, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Fully decode ``source`` (path, bytes or an opened image) to an RGB uint8 image."""
    return _decode(source, max_pixels=max_pixels)[0]


def load_working_copy(
    source: str | Path | bytes | Image.Image,
    *,
    min_sides: tuple[int, int],
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[Image.Image, float]:
    """Decode ``source`` no larger than the analysis needs: ``(image, scale)``.

    A JPEG whose sides exceed ``min_sides`` (long, short) at least twice is decoded at the
    smallest DCT scale (1/2, 1/4 or 1/8) that still covers them — the decoder skips the detail
    instead of producing it and throwing it away, several times faster on camera photos.
    ``scale`` is original pixels per decoded pixel (1.0 when decoded in full).
    """
    image, original = _decode(source, max_pixels=max_pixels, min_sides=min_sides)
    return image, max(original) / max(image.size)


def _decode(
    source: str | Path | bytes | Image.Image,
    *,
    max_pixels: int,
    min_sides: tuple[int, int] | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source) or source), source.size
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read the file: {exc.strerror or exc}") from None
    if not data:
        raise ImageDecodeError("the file is empty")
    # Pillow's own bomb limit is a global; check the header size ourselves so that the
    # limit is per call, then decode with warnings promoted to errors.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"image is {width}x{height} ({width * height / 1e6:.0f} MP); "
                    f"the limit is {max_pixels / 1e6:.0f} MP"
                )
            if width < 1 or height < 1:
                raise ImageDecodeError("image has no pixels")
            if min_sides is not None and image.format == "JPEG":
                long_side, short_side = max(width, height), min(width, height)
                factor = max(min_sides[0] / long_side, min_sides[1] / short_side)
                if factor <= 0.5:
                    image.draft("RGB", (ceil(width * factor), ceil(height * factor)))
            image.load()
            transposed = ImageOps.exif_transpose(image)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageDecodeError("image is too large (decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise ImageDecodeError("not a recognised image format") from None
    # Truncated files raise OSError; oversized text chunks raise ValueError; odd headers
    # raise SyntaxError or struct errors inside plugins.
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageDecodeError(f"image data is corrupt or truncated ({exc})") from None
    return _to_rgb(transposed if transposed is not None else image), (width, height)


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale: scale down rather than let convert() saturate at 255.
        array = np.asarray(image, dtype=np.float64)
        eight = np.clip(np.round(array / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(eight, mode="L").convert("RGB")
    if mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        peak = array.max() if array.max() > 0 else 1.0
        eight = np.clip(np.round(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(eight, mode="L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode == "RGB":
            return image
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels may hold white; the fundus background is black.
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV", "L", "1", "RGBX"):
        return image.convert("RGB")
    raise ImageDecodeError(f"unsupported pixel format {mode}")
