"""Serving fundus photos, the original or its preview, to the web UI and the API alike.

The caller has already checked permission; this picks the file, streams it through
clinic.media and writes the audit line.
"""

from __future__ import annotations

from django.db import models
from django.http import Http404, HttpResponse
from django.utils.translation import gettext_lazy as _

from clinic.media import private_file_response
from screening.models import FundusImage
from screening.services import image_record_view
from screening.thumbnails import thumbnail_for


class ImageSize(models.TextChoices):
    FULL = "full", _("The original photo, as uploaded")
    THUMB = "thumb", _("A JPEG preview, at most 480 px on its longer side")


def fundus_image_response(
    *, actor, image: FundusImage, size: str, audit_preview: bool
) -> HttpResponse:
    """The photo (``size="full"``) or its preview (``"thumb"``), audited once it is found.

    The original is always audited. A preview is audited only with `audit_preview`: the web UI
    shows previews on pages whose opening is already audited, while an API client may fetch
    a preview without reading anything else.
    """
    if size == ImageSize.THUMB:
        response = private_file_response(_thumbnail_or_404(image))
        audited = audit_preview
    else:
        response = private_file_response(image.file.name)
        audited = True
    if audited:
        image_record_view(actor=actor, image=image)
    return response


def _thumbnail_or_404(image: FundusImage) -> str:
    try:
        return thumbnail_for(image)
    except FileNotFoundError as exc:  # the original is gone: there is nothing to preview
        raise Http404("File not found") from exc
