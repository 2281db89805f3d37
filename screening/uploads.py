"""The one validator for uploaded fundus photos (admin, web UI, REST API, commands).

``validate_fundus_upload`` accepts a file only when Pillow has identified it as JPEG, PNG or
TIFF, it holds exactly one picture of sensible dimensions, and its pixel data decodes
completely. It never trusts the client's file name or content type, and never hands bytes
to OpenCV: code that later uses OpenCV must do so only on files accepted here.

Decisions worth knowing:

* Decompression bombs. Pillow's global ``Image.MAX_IMAGE_PIXELS`` is left untouched (any
  change would leak into every other thread). Instead the declared ``width × height`` is
  compared with our own limit after ``Image.open`` has read the header and before any pixel
  is decoded; Pillow's own check, with ``DecompressionBombWarning`` raised as an error,
  stays in place as a second net. The effective ceiling is therefore
  ``min(FUNDUS_UPLOAD_MAX_PIXELS, Image.MAX_IMAGE_PIXELS)``. ``warnings.catch_warnings`` is
  not thread-safe on Python 3.11; a race can only drop the second net, never our own check.
* Only the JPEG, PNG and TIFF plugins ever parse the bytes (``Image.open(formats=...)``).
  For anything else, the "detected" format in the message comes from Pillow's signature
  checks alone (the plugins' ``accept`` functions), so e.g. the EPS or FITS parsers never
  run on untrusted input.
* Polyglots and trailing data. A JPEG/PNG/TIFF that decodes fully and completely is an
  image, whatever follows its end marker (cameras and editors append trailers; an appended
  ZIP or HTML payload is inert for us). We keep the original bytes for the record, under a
  server-generated name with the extension of the detected format (``fundus_storage_name``),
  but serve browsers and the API only the sanitised copy (``screening.sanitized``: pixels
  re-encoded, no metadata, nothing appended); administrators get the original as an
  attachment.
* ``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay ``False`` process-wide; with it set,
  Pillow silently accepts truncated files, so validation refuses to run.
* 16-bit (``I;16``, 16-bit RGB TIFF), CMYK and RGBA originals are accepted as they are;
  conversion for the model happens in processing.
"""

from __future__ import annotations

import hashlib
import math
import struct
import unicodedata
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files import File
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageFile, PngImagePlugin, UnidentifiedImageError

DEFAULT_MAX_BYTES = 40 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MIN_SIDE = 256
MAX_NAME_LENGTH = 200

# Pillow format name -> (our format name, server-chosen extension). A JPEG carrying several
# pictures (MPO, from stereo cameras) opens as "MPO" and is refused as multiple frames.
_ACCEPTED_FORMATS = {
    "JPEG": ("JPEG", ".jpg"),
    "MPO": ("JPEG", ".jpg"),
    "PNG": ("PNG", ".png"),
    "TIFF": ("TIFF", ".tif"),
}
_PILLOW_PLUGINS = ("JPEG", "PNG", "TIFF")
# What Pillow raises on damaged input; ValueError includes oversized PNG text chunks.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_EXIF_ORIENTATION = 0x0112
_PREFIX_LENGTH = 16  # what Pillow's signature checks look at


@dataclass(frozen=True)
class ValidatedUpload:
    """Facts about an accepted fundus photo, established by reading its bytes."""

    format: str  # "JPEG" | "PNG" | "TIFF"
    extension: str  # ".jpg" | ".png" | ".tif", from the detected format
    width: int  # display size, after EXIF orientation
    height: int
    mode: str  # Pillow mode of the original, e.g. "RGB", "CMYK", "I;16", "RGBA"
    sha256: str  # hex digest of the exact bytes
    size_bytes: int
    original_name: str  # client's name, sanitised for display only; never used in paths


def validate_fundus_upload(
    uploaded_file: File,
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    min_side: int | None = None,
) -> ValidatedUpload:
    """Check an uploaded fundus photo; raise ``ValidationError`` with a stable code if unfit.

    Codes, in the order checked: ``empty``, ``too_large``, ``not_an_image``,
    ``unsupported_format``, ``corrupt`` (header unreadable), ``too_many_pixels``,
    ``multiple_frames``, ``too_small``, ``corrupt`` (pixel data does not decode);
    ``png_text_too_large`` where a PNG's text chunks would decompress past Pillow's limits.
    The file is rewound before returning or raising, so the caller can save it.
    """
    if max_bytes is None:
        max_bytes = getattr(settings, "FUNDUS_UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES)
    if max_pixels is None:
        max_pixels = getattr(settings, "FUNDUS_UPLOAD_MAX_PIXELS", DEFAULT_MAX_PIXELS)
    if min_side is None:
        min_side = getattr(settings, "FUNDUS_UPLOAD_MIN_SIDE", DEFAULT_MIN_SIDE)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ImproperlyConfigured(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated photos cannot be detected."
        )

    try:
        sha256, size_bytes = _hash_within_limit(uploaded_file, max_bytes)
        image_format, mode, width, height = _inspect_image(
            uploaded_file, max_pixels=max_pixels, min_side=min_side
        )
    finally:
        uploaded_file.seek(0)

    image_format, extension = _ACCEPTED_FORMATS[image_format]
    return ValidatedUpload(
        format=image_format,
        extension=extension,
        width=width,
        height=height,
        mode=mode,
        sha256=sha256,
        size_bytes=size_bytes,
        original_name=sanitize_upload_name(uploaded_file.name),
    )


def fundus_storage_name(*, validated: ValidatedUpload, prefix: str = "fundus") -> str:
    """A fresh server-chosen storage path, e.g. ``fundus/2026/11/<uuid4 hex>.jpg``.

    The client's file name never reaches the path, so traversal and odd characters in it
    cannot matter.
    """
    now = timezone.now()
    return f"{prefix.strip('/')}/{now:%Y/%m}/{uuid.uuid4().hex}{validated.extension}"


def sanitize_upload_name(name: str | None) -> str:
    """The client's file name made safe to display: basename only, no control or format
    characters (which includes bidi overrides), NFC-normalised, at most 200 characters.

    Returns ``""`` when nothing displayable is left. Never use the result in a path.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.strip()
    if name in {".", ".."}:
        return ""
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, suffix = name.rpartition(".")
        if dot and 0 < len(suffix) <= 10:
            name = stem[: MAX_NAME_LENGTH - len(suffix) - 1].rstrip() + "." + suffix
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


# --------------------------------------------------------------------------- helpers


def _hash_within_limit(uploaded_file: File, max_bytes: int) -> tuple[str, int]:
    """SHA-256 and length of the file, refusing empty and oversized files.

    The declared size is checked first; counting while hashing guards against a size that
    understates the content, so at most ``max_bytes`` plus one chunk is ever read.
    """
    declared = uploaded_file.size
    if declared == 0:
        raise _empty()
    if declared is not None and declared > max_bytes:
        raise ValidationError(
            _("The file is %(size)s; the limit is %(limit)s."),
            code="too_large",
            params={"size": _format_size(declared), "limit": _format_limit(max_bytes)},
        )

    digest = hashlib.sha256()
    total = 0
    for chunk in uploaded_file.chunks():
        total += len(chunk)
        if total > max_bytes:
            raise ValidationError(
                _("The file is larger than the limit of %(limit)s."),
                code="too_large",
                params={"limit": _format_limit(max_bytes)},
            )
        digest.update(chunk)
    if total == 0:
        raise _empty()
    return digest.hexdigest(), total


def _inspect_image(fp: IO[bytes], *, max_pixels: int, min_side: int) -> tuple[str, str, int, int]:
    """Identify, size-check and fully decode the image; return (Pillow format, mode, w, h)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(fp, formats=_PILLOW_PLUGINS)
        except UnidentifiedImageError:
            raise _unidentified(fp) from None
        except _BOMB_ERRORS as exc:
            raise _too_many_pixels_undeclared(max_pixels) from exc
        except _DECODE_ERRORS as exc:
            raise _unreadable(exc, _sniff_format(fp, _PILLOW_PLUGINS)) from exc

        with image:
            image_format = image.format or ""
            if image_format not in _ACCEPTED_FORMATS:  # a plugin naming itself oddly
                raise _unsupported(image_format)
            width, height = image.size
            if width * height > max_pixels:
                raise ValidationError(
                    _(
                        "The image is %(width)d × %(height)d pixels (%(megapixels)s megapixels); "
                        "the limit is %(limit)s megapixels."
                    ),
                    code="too_many_pixels",
                    params={
                        "width": width,
                        "height": height,
                        "megapixels": _format_decimal(width * height / 1e6, round_up=True),
                        "limit": _format_decimal(max_pixels / 1e6),
                    },
                )
            if getattr(image, "is_animated", False):
                raise ValidationError(
                    _(
                        "This file contains more than one picture (a multi-page TIFF, an "
                        "animated PNG or a multi-picture JPEG). Upload each photo as a "
                        "separate file."
                    ),
                    code="multiple_frames",
                )
            if min(width, height) < min_side:
                raise ValidationError(
                    _(
                        "The image is %(width)d × %(height)d pixels; each side must be at "
                        "least %(min_side)d pixels."
                    ),
                    code="too_small",
                    params={"width": width, "height": height, "min_side": min_side},
                )
            try:
                # verify() passes truncated files; only a full decode proves the data.
                image.load()
                orientation = image.getexif().get(_EXIF_ORIENTATION)
            except _BOMB_ERRORS as exc:
                raise _too_many_pixels_undeclared(max_pixels) from exc
            except _DECODE_ERRORS as exc:
                raise _unreadable(exc, _ACCEPTED_FORMATS[image_format][0]) from exc
            # Read after load(): Pillow's TIFF plugin applies the orientation itself while
            # loading (its size is already the display size and the tag is dropped), while
            # JPEG and PNG keep the stored size and the tag.
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            return image_format, image.mode, width, height


def _sniff_format(fp: IO[bytes], candidates: Iterable[str] | None = None) -> str | None:
    """Name the format by Pillow's signature checks only; no plugin parses the file."""
    fp.seek(0)
    prefix = fp.read(_PREFIX_LENGTH)
    Image.init()
    for name in Image.ID if candidates is None else candidates:
        accept = Image.OPEN[name][1]
        if accept is None:
            continue
        try:
            if accept(prefix):
                return name
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # the same errors Image.open tolerates from a plugin's check
    return None


def _unidentified(fp: IO[bytes]) -> ValidationError:
    detected = _sniff_format(fp)
    if detected is None:
        return ValidationError(
            _("This file is not an image. Upload a JPEG, PNG or TIFF fundus photo."),
            code="not_an_image",
        )
    if detected in _ACCEPTED_FORMATS:
        # Right signature, but the plugin could not make sense of the header.
        return _corrupt(_ACCEPTED_FORMATS[detected][0])
    return _unsupported(detected)


def _unsupported(detected: str) -> ValidationError:
    return ValidationError(
        _("This file is not a JPEG, PNG or TIFF image (detected: %(format)s)."),
        code="unsupported_format",
        params={"format": detected},
    )


def _empty() -> ValidationError:
    return ValidationError(_("The file is empty."), code="empty")


def corrupt_upload_error(image_format: str | None) -> ValidationError:
    """The ``corrupt`` refusal, for code that decodes an accepted photo again."""
    return _corrupt(image_format)


def _corrupt(image_format: str | None) -> ValidationError:
    return ValidationError(
        _(
            "This %(format)s file is damaged or incomplete and could not be read. "
            "Copy or export it from the camera again."
        ),
        code="corrupt",
        params={"format": image_format or _("image")},
    )


def _unreadable(exc: BaseException, image_format: str | None) -> ValidationError:
    """Why Pillow could not read the file: an oversized PNG text chunk, or damage."""
    # Pillow says so only in the message of a ValueError ("... MAX_TEXT_CHUNK" for one chunk,
    # "... MAX_TEXT_MEMORY" for all of them together).
    message = str(exc) if isinstance(exc, ValueError) else ""
    if "MAX_TEXT_MEMORY" in message:
        return _png_text_too_large(PngImagePlugin.MAX_TEXT_MEMORY)
    if "MAX_TEXT_CHUNK" in message:
        return _png_text_too_large(PngImagePlugin.MAX_TEXT_CHUNK)
    return _corrupt(image_format)


def _png_text_too_large(limit: int) -> ValidationError:
    return ValidationError(
        _(
            "This PNG file carries a text (metadata) block of more than %(limit)s, which a "
            "fundus photo never needs, so it was not read. Export the photo again without "
            "added text or metadata."
        ),
        code="png_text_too_large",
        params={"limit": _format_limit(limit)},
    )


def _too_many_pixels_undeclared(max_pixels: int) -> ValidationError:
    """Pillow refused the header before telling us the size; report the effective limit."""
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS is not None:
        limit = min(limit, Image.MAX_IMAGE_PIXELS)
    return ValidationError(
        _("The image is larger than the limit of %(limit)s megapixels."),
        code="too_many_pixels",
        params={"limit": _format_decimal(limit / 1e6)},
    )


def _format_decimal(value: float, *, round_up: bool = False) -> str:
    """One decimal, trailing ".0" dropped. Sizes round up and limits down, so a value just
    over a limit never prints as equal to it ("40.1 MB; the limit is 40 MB")."""
    tenths = math.ceil(value * 10) if round_up else math.floor(value * 10)
    return f"{tenths / 10:.1f}".removesuffix(".0")


def _format_size(size: int, *, round_up: bool = True) -> str:
    # Binary units labelled MB/KB, as Django's filesizeformat and most file managers do.
    if size >= 1024 * 1024:
        return f"{_format_decimal(size / (1024 * 1024), round_up=round_up)} MB"
    return f"{_format_decimal(size / 1024, round_up=round_up)} KB"


def _format_limit(size: int) -> str:
    return _format_size(size, round_up=False)
