"""Project middleware: the Content-Security-Policy header, and a clear 503 when a view cannot
reach the database or the media storage, not a bare 500.

Errors raised outside a view (session, authentication, other middleware) reach
`core.errors.server_error` (handler500), which answers the same 503.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.errors import service_unavailable, unavailable_cause

logger = logging.getLogger(__name__)


class ServiceUnavailableMiddleware:
    """Turns a database or media-storage outage raised by a view into a 503 page or JSON.

    Also with DEBUG on, where Django shows its debug page instead of calling handler500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        cause = unavailable_cause(exception)
        if cause is None:
            return None
        logger.error(
            "%s during %s %s: %s",
            cause.code,
            request.method,
            request.path,
            exception,
            exc_info=exception,
        )
        return service_unavailable(request, cause)


class ContentSecurityPolicyMiddleware:
    """Adds ``settings.CONTENT_SECURITY_POLICY`` to every HTML page (Django 5.2 has no CSP).

    Only HTML: a PDF or photo opened in the browser's own viewer must not inherit
    ``object-src 'none'``, and JSON is never rendered as a page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if (
            policy
            and "Content-Security-Policy" not in response
            and response.get("Content-Type", "").startswith("text/html")
        ):
            response["Content-Security-Policy"] = policy
        return response
