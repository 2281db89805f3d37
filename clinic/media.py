"""Serving private media: only through views that have already checked permission."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse


def private_file_response(
    name: str, *, download_name: str | None = None, as_attachment: bool = False
) -> HttpResponse:
    """Stream a stored file; behind nginx, hand the transfer to it with X-Accel-Redirect."""
    if not name or not default_storage.exists(name):
        raise Http404("File not found")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.MEDIA_X_ACCEL_PREFIX:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{settings.MEDIA_X_ACCEL_PREFIX.rstrip('/')}/{name}"
        disposition = "attachment" if as_attachment else "inline"
        if download_name:
            response["Content-Disposition"] = f'{disposition}; filename="{download_name}"'
    else:
        response = FileResponse(
            default_storage.open(name, "rb"),
            as_attachment=as_attachment,
            filename=download_name or "",
            content_type=content_type,
        )
    response["Cache-Control"] = "private, no-store"
    return response
