"""The clinic's name and letterhead (address, phone, website, logo) from settings."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

DEFAULT_CLINIC_NAME = _("OphAI Eye Screening Clinic")
LOGO_MAX_BYTES = 5 * 1024 * 1024
LOGO_MAX_PIXELS = 25_000_000
# Printed at most 50 × 14 mm: 600 × 200 px is over 300 dpi.
LOGO_BOX = (600, 200)


def clinic_name() -> str:
    return settings.CLINIC_NAME or str(DEFAULT_CLINIC_NAME)


class LogoError(Exception):
    """CLINIC_LOGO names no readable PNG/JPEG image (the message says why)."""


@dataclass(frozen=True)
class Letterhead:
    """What the top of a printed report shows."""

    name: str
    address: str
    phone: str
    website: str
    logo_png: bytes  # b"" when there is no (readable) logo


def clinic_logo_png(path: str | None = None) -> bytes:
    """CLINIC_LOGO, fitted into LOGO_BOX and re-encoded as PNG; b"" when it is not set.

    An absolute path is a file on disk; a relative one is a name in the media storage.
    Raises LogoError when the file is missing, too large or not a PNG/JPEG image.
    """
    path = settings.CLINIC_LOGO if path is None else path
    if not path:
        return b""
    try:
        if Path(path).is_absolute():
            with open(path, "rb") as handle:
                data = handle.read(LOGO_MAX_BYTES + 1)
        else:
            with default_storage.open(path, "rb") as handle:
                data = handle.read(LOGO_MAX_BYTES + 1)
    except OSError as exc:
        raise LogoError(f"cannot be read ({exc.strerror or exc})") from exc
    if len(data) > LOGO_MAX_BYTES:
        raise LogoError(f"is larger than {LOGO_MAX_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as logo:
            if logo.width * logo.height > LOGO_MAX_PIXELS:
                raise LogoError(f"is {logo.width} × {logo.height} pixels, too large for a logo")
            logo.draft("RGB", LOGO_BOX)
            # Logos keep transparency: white paper shows behind them.
            fitted = logo.convert("RGBA")
    except UnidentifiedImageError as exc:
        raise LogoError("is not a PNG or JPEG image") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise LogoError(f"is damaged and could not be decoded ({exc})") from exc
    fitted.thumbnail(LOGO_BOX)
    buffer = io.BytesIO()
    fitted.save(buffer, "PNG")
    return buffer.getvalue()


def letterhead(*, strict: bool = False) -> Letterhead:
    """The clinic's letterhead; an unreadable logo is left out (LogoError if `strict`)."""
    try:
        logo = clinic_logo_png()
    except LogoError as exc:
        if strict:
            raise
        # `manage.py check` names the problem (reports.W001); the report prints without a logo.
        logger.warning("CLINIC_LOGO %s %s", settings.CLINIC_LOGO, exc)
        logo = b""
    return Letterhead(
        name=clinic_name(),
        address=settings.CLINIC_ADDRESS,
        phone=settings.CLINIC_PHONE,
        website=getattr(settings, "CLINIC_WEBSITE", ""),
        logo_png=logo,
    )
