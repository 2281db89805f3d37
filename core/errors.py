"""Error answers that never touch the database: 503 when it cannot be reached, 500 otherwise.

Every write runs in a transaction, so a request cut off from PostgreSQL leaves nothing half
written; what the user needs is to know that retrying later is safe. The pages are static (no
template, no context processors: they would query the database again) and say it in both
languages; API paths get the API's error shape in the active language.

`server_error` is `handler500`. Django turns an exception raised anywhere in the middleware
chain (session load/save, authentication, axes, audit context) or in a view into a response
right where it is raised, by calling `handler500` while the exception is being handled, so
this is the one place that sees them all; `ServiceUnavailableMiddleware` covers views only
(and DEBUG, where Django shows its debug page instead). The media storage (an S3 bucket) being
unreachable is answered the same way: uploads store the file before any row, so nothing is
half written there either.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language

from core.media import MediaStorageUnavailable

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30
MESSAGES = {
    "zh": "服务暂时不可用：无法连接数据库，请稍后重试。",
    "en": "Service temporarily unavailable — the database cannot be reached; please retry.",
}
STORAGE_MESSAGES = {
    "zh": "服务暂时不可用：无法连接照片和报告存储，未保存任何内容，请稍后重试。",
    "en": "Service temporarily unavailable — the photo and report storage cannot be reached; "
    "nothing was saved, please retry.",
}
SERVER_ERROR_MESSAGES = {
    "zh": "服务器内部错误，已记录。请稍后重试；如果问题持续，请联系管理员。",
    "en": "Internal server error; it has been logged. Please retry later, and contact the "
    "administrator if it persists.",
}


def _page(status: int, zh_title: str, en_title: str, messages: dict[str, str]) -> str:
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{status}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.6">
<h1>{zh_title}</h1><p>{messages["zh"]}</p>
<h1 lang="en">{en_title}</h1><p lang="en">{messages["en"]}</p>
</body></html>
"""


@dataclass(frozen=True)
class Unavailable:
    """A dependency whose outage is answered 503 "please retry" rather than 500."""

    exceptions: tuple[type[BaseException], ...]
    code: str
    messages: dict[str, str]
    page: str


PAGE = _page(503, "服务暂时不可用", "Service temporarily unavailable", MESSAGES)
UNAVAILABLE = (
    Unavailable(DATABASE_ERRORS, "database_unavailable", MESSAGES, PAGE),
    Unavailable(
        (MediaStorageUnavailable,),
        "media_storage_unavailable",
        STORAGE_MESSAGES,
        _page(503, "服务暂时不可用", "Service temporarily unavailable", STORAGE_MESSAGES),
    ),
)
SERVER_ERROR_PAGE = _page(500, "服务器错误", "Server error", SERVER_ERROR_MESSAGES)


def _error_response(
    request: HttpRequest, *, status: int, code: str, messages: dict[str, str], page: str
) -> HttpResponse:
    language = "zh" if (get_language() or "").startswith("zh") else "en"
    if request.path_info.startswith("/api/"):
        body = {"error": {"code": code, "message": messages[language], "fields": {}}}
    elif request.headers.get("Accept", "").startswith("application/json"):
        body = {"error": messages[language]}  # the web pages' own requests (photo upload)
    else:
        body = None
    if body is not None:
        response = HttpResponse(
            json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
        )
    else:
        response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def unavailable_cause(exception: BaseException | None) -> Unavailable | None:
    return next((u for u in UNAVAILABLE if isinstance(exception, u.exceptions)), None)


def service_unavailable(request: HttpRequest, cause: Unavailable) -> HttpResponse:
    """503 "please retry": the bilingual page, the API's error shape under /api/, or
    `{"error": …}` for the web pages' JSON requests."""
    response = _error_response(
        request, status=503, code=cause.code, messages=cause.messages, page=cause.page
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 for a lost database or media storage, else a static 500 (Django has
    logged the error)."""
    if cause := unavailable_cause(sys.exc_info()[1]):
        return service_unavailable(request, cause)
    return _error_response(
        request,
        status=500,
        code="server_error",
        messages=SERVER_ERROR_MESSAGES,
        page=SERVER_ERROR_PAGE,
    )
