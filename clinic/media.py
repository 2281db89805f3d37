"""Serving private media: only through views that have already checked permission."""

from __future__ import annotations

import json
import logging
import mimetypes

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils.translation import get_language

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
UNAVAILABLE_MESSAGES = {
    "zh": "服务暂时不可用：无法连接照片和报告存储，未保存任何内容，请稍后重试。",
    "en": "Service temporarily unavailable — the photo and report storage cannot be reached; "
    "nothing was saved, please retry.",
}
UNAVAILABLE_PAGE = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>503</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.6">
<h1>服务暂时不可用</h1><p>{UNAVAILABLE_MESSAGES["zh"]}</p>
<h1 lang="en">Service temporarily unavailable</h1><p lang="en">{UNAVAILABLE_MESSAGES["en"]}</p>
</body></html>
"""


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


class MediaStorageUnavailableMiddleware:
    """Turns `MediaStorageUnavailable` raised by a view into a 503 "please retry".

    Uploads store the file before writing any row, so nothing is half written. API paths get
    the API's error shape, the upload page's requests (Accept: application/json) its
    `{"error": …}`, browsers a static bilingual page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, MediaStorageUnavailable):
            return None
        logger.error("%s %s: %s", request.method, request.path, exception, exc_info=exception)
        message = UNAVAILABLE_MESSAGES["zh" if (get_language() or "").startswith("zh") else "en"]
        if request.path_info.startswith("/api/"):
            body = {
                "error": {"code": "media_storage_unavailable", "message": message, "fields": {}}
            }
            response = _json_response(body)
        elif request.headers.get("Accept", "").startswith("application/json"):
            response = _json_response({"error": message})
        else:
            response = HttpResponse(
                UNAVAILABLE_PAGE, status=503, content_type="text/html; charset=utf-8"
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response


def _json_response(body: dict) -> HttpResponse:
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), status=503, content_type="application/json"
    )
