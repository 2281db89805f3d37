"""Serving private media: only through views that have already checked permission."""

from __future__ import annotations

import logging
import mimetypes

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse

logger = logging.getLogger(__name__)


class MediaStorageUnavailable(OSError):
    """The media storage (an S3-compatible bucket) could not be reached or refused the request.

    An OSError, like a failing disk would raise, so callers that already treat an unreadable
    file as an I/O error (backups, report images) keep doing so. Views answer 503 "please retry".
    """


def private_file_response(
    name: str, *, download_name: str | None = None, as_attachment: bool = False
) -> HttpResponse:
    """Stream a stored file; behind nginx, hand the transfer to it with X-Accel-Redirect.

    On S3-compatible storage the bytes are streamed through Django too, never a redirect to a
    presigned URL: a URL that works for anyone holding it would bypass the permission check
    and the audit log, and the bucket need not be reachable from browsers or the mini-program.
    """
    if not name:
        raise Http404("File not found")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.MEDIA_X_ACCEL_PREFIX:
        if not default_storage.exists(name):
            raise Http404("File not found")
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{settings.MEDIA_X_ACCEL_PREFIX.rstrip('/')}/{name}"
        disposition = "attachment" if as_attachment else "inline"
        if download_name:
            response["Content-Disposition"] = f'{disposition}; filename="{download_name}"'
    else:
        try:
            # One request to the bucket, not an exists() check and then a read.
            handle = default_storage.open(name, "rb")
        except FileNotFoundError as exc:
            raise Http404("File not found") from exc
        response = FileResponse(
            handle,
            as_attachment=as_attachment,
            filename=download_name or "",
            content_type=content_type,
        )
    response["Cache-Control"] = "private, no-store"
    return response
