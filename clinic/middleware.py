"""A clear 503 when a view cannot reach the database, instead of a bare 500.

Database errors raised outside a view (session, authentication, other middleware) reach
`clinic.errors.server_error` (handler500), which answers the same 503.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse

from clinic.errors import DATABASE_ERRORS, database_unavailable

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Turns `OperationalError`/`InterfaceError` raised by a view into a 503 page or JSON.

    Also with DEBUG on, where Django shows its debug page instead of calling handler500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        logger.error(
            "Database unavailable during %s %s: %s",
            request.method,
            request.path,
            exception,
            exc_info=exception,
        )
        return database_unavailable(request)
