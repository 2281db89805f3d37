"""A clear 503 when the database cannot be reached, instead of a bare 500.

Every write runs in a transaction, so a request cut off from PostgreSQL leaves nothing half
written; what the user needs is to know that retrying later is safe. The page is static (no
template, no context processors: they would query the database again) and says it in both
languages; API clients get the API's error shape.
"""

from __future__ import annotations

import json
import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
MESSAGES = {
    "zh": "服务暂时不可用：无法连接数据库，请稍后重试。",
    "en": "Service temporarily unavailable — the database cannot be reached; please retry.",
}
PAGE = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>503</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.6">
<h1>服务暂时不可用</h1><p>{MESSAGES["zh"]}</p>
<h1 lang="en">Service temporarily unavailable</h1><p lang="en">{MESSAGES["en"]}</p>
</body></html>
"""


class DatabaseUnavailableMiddleware:
    """Turns `OperationalError`/`InterfaceError` raised by a view into a 503 page or JSON."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error(
            "Database unavailable during %s %s: %s",
            request.method,
            request.path,
            exception,
            exc_info=exception,
        )
        if request.path_info.startswith("/api/"):
            language = "zh" if (get_language() or "").startswith("zh") else "en"
            body = {
                "error": {
                    "code": "database_unavailable",
                    "message": MESSAGES[language],
                    "fields": {},
                }
            }
            response = HttpResponse(
                json.dumps(body, ensure_ascii=False),
                status=503,
                content_type="application/json",
            )
        else:
            response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
