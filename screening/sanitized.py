"""The copy of a fundus photo that browsers, the API and reports get: its pixels and nothing else.

The uploaded original is kept byte for byte for the record (administrators may download it).
It may carry what a camera, an editor or an attacker put around the pixels: EXIF and XMP with
free text (patient names, ID numbers, script strings), JPEG comments, ICC profiles, and data
appended after the image's end (a ZIP or HTML "polyglot"). The sanitised copy is made once,
at upload, from the decoded pixels copied into a fresh image, so none of that survives:

* Orientation is applied to the pixels (the copy is stored upright and carries no EXIF at
  all), so every viewer shows it the same way without reading metadata.
* JPEG sources become JPEG at quality 95 with 4:4:4 chroma: re-encoding an already lossy
  photo as PNG would make it 5–10 times larger without recovering anything, while quality 95
  without chroma subsampling keeps small red lesions sharp. PNG and TIFF sources (lossless)
  become PNG, so no compression loss is added; 16-bit sources are scaled to 8 bits for
  display (the model reads the original).
* The ICC profile is dropped with the rest of the metadata (a profile is parsed by the colour
  engine and can carry text too); fundus cameras write sRGB.
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps

from screening.thumbnails import to_display_rgb
from screening.uploads import corrupt_upload_error

JPEG_QUALITY = 95
SANITIZED_PREFIX = "fundus-sanitized"
_PILLOW_PLUGINS = ("JPEG", "PNG", "TIFF")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


@dataclass(frozen=True)
class SanitizedCopy:
    """The re-encoded photo, ready to store."""

    content: bytes
    format: str  # "JPEG" | "PNG"
    extension: str  # ".jpg" | ".png"


def sanitized_copy(fp: IO[bytes]) -> SanitizedCopy:
    """Decode an accepted photo and re-encode its upright pixels into a fresh image.

    Call it only on files ``validate_fundus_upload`` accepted (it does not re-check sizes).
    Raises the validator's ``corrupt`` error if the pixels cannot be decoded after all.
    The file is rewound before returning or raising.
    """
    fp.seek(0)
    source_format: str | None = None
    try:
        with Image.open(fp, formats=_PILLOW_PLUGINS) as image:
            source_format = "JPEG" if image.format == "MPO" else image.format
            # load() first: the TIFF plugin applies (and drops) its orientation while loading,
            # so exif_transpose then turns only what still needs turning.
            image.load()
            pixels = to_display_rgb(ImageOps.exif_transpose(image))
        fresh = Image.new(pixels.mode, pixels.size)
        fresh.paste(pixels)  # a new image: no info, EXIF, comment or profile comes along
        del pixels
        buffer = io.BytesIO()
        if source_format == "JPEG":
            fresh.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
            result = SanitizedCopy(buffer.getvalue(), "JPEG", ".jpg")
        else:
            fresh.save(buffer, "PNG")
            result = SanitizedCopy(buffer.getvalue(), "PNG", ".png")
    except _DECODE_ERRORS as exc:
        raise corrupt_upload_error(source_format) from exc
    finally:
        fp.seek(0)
    return result


def sanitized_storage_name(original_name: str, extension: str) -> str:
    """``fundus/2026/12/<hex>.tif`` → ``fundus-sanitized/2026/12/<hex>.png``: the copy sits
    beside its original under its own prefix, so storage rules can tell them apart."""
    folder, filename = posixpath.split(original_name)
    stem = filename.rsplit(".", 1)[0]
    _prefix, _slash, rest = folder.partition("/")
    return posixpath.join(SANITIZED_PREFIX, rest, f"{stem}{extension}")
