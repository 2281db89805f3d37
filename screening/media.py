"""Serving fundus photos to the web UI and the API alike: the sanitised copy, its preview, or
(administrators only) the original file as uploaded.

The caller has already checked the permission to view photos; this checks the administrator
role for originals, picks the file, streams it through core.media and writes the audit line.
"""

from __future__ import annotations

import posixpath

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.media import private_file_response
from core.roles import Role, user_roles
from screening.models import FundusImage
from screening.services import image_record_view, image_sanitize
from screening.thumbnails import thumbnail_for


class ImageSize(models.TextChoices):
    FULL = "full", gettext_lazy("The photo: its pixels re-encoded, without metadata")
    THUMB = "thumb", gettext_lazy("A JPEG preview, at most 480 px on its longer side")


def may_open_originals(user) -> bool:
    """Originals (with whatever metadata or trailing data they carry) are for administrators."""
    return Role.ADMINISTRATOR in user_roles(user)


def fundus_image_response(
    *, actor, image: FundusImage, size: str, audit_preview: bool, original: bool = False
) -> HttpResponse:
    """The sanitised photo (``size="full"``), its preview (``"thumb"``), or with `original`
    the uploaded file as an attachment; audited once it is found.

    The photo is always audited, the original as its own action. A preview is audited only
    with `audit_preview`: the web UI shows previews on pages whose opening is already
    audited, while an API client may fetch a preview without reading anything else.
    """
    if original:
        if not may_open_originals(actor):
            raise PermissionDenied(_("Only administrators may open the original photo file."))
        extension = posixpath.splitext(image.file.name)[1]
        response = private_file_response(
            image.file.name,
            as_attachment=True,
            download_name=f"fundus-{image.pk}-original{extension}",
        )
        image_record_view(actor=actor, image=image, original=True)
        return response
    if size == ImageSize.THUMB:
        response = private_file_response(_or_404(_thumbnail_name, image))
        audited = audit_preview
    else:
        response = private_file_response(_or_404(_sanitized_name, image))
        audited = True
    if audited:
        image_record_view(actor=actor, image=image)
    return response


def _sanitized_name(image: FundusImage) -> str:
    return image_sanitize(image=image).sanitized_file.name


def _thumbnail_name(image: FundusImage) -> str:
    return thumbnail_for(image_sanitize(image=image))


def _or_404(make, image: FundusImage) -> str:
    try:
        return make(image)
    except (FileNotFoundError, ValidationError) as exc:  # the original is gone or unreadable
        raise Http404("File not found") from exc
