"""A doctor's signature image: checked, re-encoded without metadata, stored, audited.

An uploaded PNG/JPEG is accepted only when Pillow (its PNG and JPEG plugins alone) decodes it
completely within the size limits. What is stored is a fresh PNG made from its upright pixels
(no EXIF, text chunks, ICC profile or appended data survive; transparency is kept), under a
server-chosen random name. A replaced image is never overwritten or deleted: reports record
the name and SHA-256 of the image they printed (reports.Report.signature_*), so an old
report re-rendered later still shows the signature it was signed with.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from core.audit import audit_log
from core.models import AuditEvent, StaffProfile
from core.roles import require_permission

SIGNATURE_MAX_BYTES = 2 * 1024 * 1024
SIGNATURE_MAX_PIXELS = 12_000_000
SIGNATURE_MIN_SIDE = 40
# Printed about 12 mm high: 1200 × 400 px is far more than the printer needs.
SIGNATURE_BOX = (1200, 400)
SIGNATURE_PREFIX = "signatures"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


@dataclass(frozen=True)
class CleanSignature:
    """A signature ready to store: PNG bytes of the pixels alone."""

    content: bytes
    sha256: str
    width: int
    height: int


def signature_clean(upload) -> CleanSignature:
    """Check an uploaded signature and re-encode it; ValidationError (with a code) if unfit."""
    size = getattr(upload, "size", None)
    if size is not None and size > SIGNATURE_MAX_BYTES:
        raise ValidationError(
            _("The signature file is %(size)s KB; the limit is %(limit)s KB."),
            code="too_large",
            params={"size": -(-size // 1024), "limit": SIGNATURE_MAX_BYTES // 1024},
        )
    upload.seek(0)
    data = upload.read(SIGNATURE_MAX_BYTES + 1)
    upload.seek(0)
    if not data:
        raise ValidationError(_("The signature file is empty."), code="empty")
    if len(data) > SIGNATURE_MAX_BYTES:
        raise ValidationError(
            _("The signature file is larger than the limit of %(limit)s KB."),
            code="too_large",
            params={"limit": SIGNATURE_MAX_BYTES // 1024},
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as image:
                _check_size(image)
                image.load()
                pixels = ImageOps.exif_transpose(image)
                pixels = pixels.convert("RGBA" if _has_alpha(image) else "RGB")
        except UnidentifiedImageError as exc:
            raise _not_an_image() from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels() from exc
        except _DECODE_ERRORS as exc:
            raise ValidationError(
                _("The signature image is damaged or incomplete and could not be read."),
                code="corrupt",
            ) from exc
    fresh = Image.new(pixels.mode, pixels.size)
    fresh.paste(pixels)  # a new image: no info, EXIF, text or profile comes along
    fresh.thumbnail(SIGNATURE_BOX, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    fresh.save(buffer, "PNG", optimize=True)
    content = buffer.getvalue()
    return CleanSignature(
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        width=fresh.width,
        height=fresh.height,
    )


def signature_storage_name() -> str:
    """``signatures/<uuid4 hex>.png``: not guessable, never reused."""
    return f"{SIGNATURE_PREFIX}/{uuid.uuid4().hex}.png"


def staff_signature_set(*, user, actor, upload) -> StaffProfile:
    """Store `upload` as `user`'s signature image (checked and re-encoded); audited."""
    require_permission(actor, "auth.change_user")
    clean = signature_clean(upload)
    name = default_storage.save(signature_storage_name(), ContentFile(clean.content))
    try:
        with transaction.atomic():
            profile, _created = StaffProfile.objects.select_for_update().get_or_create(user=user)
            before = signature_sha256(profile)
            profile.signature = name
            profile.save(update_fields=["signature", "updated_at"])
            _audit(actor=actor, profile=profile, before=before, after=clean.sha256)
    except BaseException:
        default_storage.delete(name)
        raise
    return profile


def staff_signature_clear(*, user, actor) -> StaffProfile | None:
    """Remove `user`'s signature image from new reports (the file stays for old ones)."""
    require_permission(actor, "auth.change_user")
    with transaction.atomic():
        profile = StaffProfile.objects.select_for_update().filter(user=user).first()
        if profile is None or not profile.signature:
            return profile
        before = signature_sha256(profile)
        profile.signature = ""
        profile.save(update_fields=["signature", "updated_at"])
        _audit(actor=actor, profile=profile, before=before, after=None)
    return profile


def signature_png(profile: StaffProfile | None) -> bytes:
    """The stored image (b"" when there is none or it cannot be read)."""
    if profile is None or not profile.signature:
        return b""
    try:
        with default_storage.open(profile.signature.name, "rb") as stored:
            return stored.read()
    except OSError:
        return b""


def signature_sha256(profile: StaffProfile | None) -> str:
    """The SHA-256 of the stored image ("" when there is none or it cannot be read)."""
    data = signature_png(profile)
    return hashlib.sha256(data).hexdigest() if data else ""


def _audit(*, actor, profile: StaffProfile, before: str, after: str | None) -> None:
    audit_log(
        actor=actor,
        action=AuditEvent.Action.UPDATE,
        obj=profile,
        changes={"signature_sha256": [before or None, after]},
    )


def _check_size(image: Image.Image) -> None:
    width, height = image.size
    if width * height > SIGNATURE_MAX_PIXELS:
        raise _too_many_pixels()
    if getattr(image, "is_animated", False):
        raise ValidationError(
            _("The signature file holds more than one picture; upload a single image."),
            code="multiple_frames",
        )
    if min(width, height) < SIGNATURE_MIN_SIDE:
        raise ValidationError(
            _(
                "The signature image is %(width)d × %(height)d pixels; each side must be at "
                "least %(min_side)d pixels."
            ),
            code="too_small",
            params={"width": width, "height": height, "min_side": SIGNATURE_MIN_SIDE},
        )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _not_an_image() -> ValidationError:
    return ValidationError(
        _("The signature must be a PNG or JPEG image."),
        code="not_an_image",
    )


def _too_many_pixels() -> ValidationError:
    return ValidationError(
        _("The signature image is larger than %(limit)d megapixels."),
        code="too_many_pixels",
        params={"limit": SIGNATURE_MAX_PIXELS // 1_000_000},
    )
