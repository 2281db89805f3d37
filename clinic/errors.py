"""Error answers that never touch the database: 503 when it cannot be reached, 500 otherwise.

Every write runs in a transaction, so a request cut off from PostgreSQL leaves nothing half
written; what the user needs is to know that retrying later is safe. The pages are static (no
template, no context processors: they would query the database again) and say it in both
languages; API paths get the API's error shape in the active language.

`server_error` is `handler500`. Django turns an exception raised anywhere in the middleware
chain (session load/save, authentication, axes, audit context) or in a view into a response
right where it is raised, by calling `handler500` while the exception is being handled, so
this is the one place that sees them all; `DatabaseUnavailableMiddleware` covers views only.
"""

from __future__ import annotations

import json
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30
MESSAGES = {
    "zh": "服务暂时不可用：无法连接数据库，请稍后重试。",
    "en": "Service temporarily unavailable — the database cannot be reached; please retry.",
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


PAGE = _page(503, "服务暂时不可用", "Service temporarily unavailable", MESSAGES)
SERVER_ERROR_PAGE = _page(500, "服务器错误", "Server error", SERVER_ERROR_MESSAGES)


def _error_response(
    request: HttpRequest, *, status: int, code: str, messages: dict[str, str], page: str
) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        language = "zh" if (get_language() or "").startswith("zh") else "en"
        body = {"error": {"code": code, "message": messages[language], "fields": {}}}
        response = HttpResponse(
            json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
        )
    else:
        response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 "please retry": the bilingual page, or the API's error shape under /api/."""
    response = _error_response(
        request, status=503, code="database_unavailable", messages=MESSAGES, page=PAGE
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 for a lost database, else a static 500 (Django has logged the error)."""
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable(request)
    return _error_response(
        request,
        status=500,
        code="server_error",
        messages=SERVER_ERROR_MESSAGES,
        page=SERVER_ERROR_PAGE,
    )
