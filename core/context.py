"""The request context (source, IP, user agent, request ID) shared by the audit log and logging.

No model imports here: logging is configured before the app registry is ready.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the one place that reads ``X-Forwarded-For``.

    With ``TRUSTED_PROXY_COUNT = N`` (N proxies in front of Django, each adding the address it
    saw), the Nth address from the right is the client; everything left of it came from the
    client and is ignored. With 0, the header is ignored: ``REMOTE_ADDR``. The audit log, the
    API throttles (like DRF's ``NUM_PROXIES``, which the setting also drives), django-axes and
    the WeChat binding limits all call this.
    """
    remote_addr = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote_addr
    addresses = forwarded.split(",")
    candidate = addresses[-min(proxies, len(addresses))].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # a proxy that forwards garbage: the proxy's own address, one bucket
        return remote_addr


@dataclass(frozen=True)
class AuditContext:
    source: str = "system"
    ip_address: str | None = None
    user_agent: str = ""
    request_id: str = ""


# AuditContext is frozen, so sharing one default instance is safe.
_context: contextvars.ContextVar[AuditContext] = contextvars.ContextVar(
    "audit_context",
    default=AuditContext(),  # noqa: B039
)


def current_audit_context() -> AuditContext:
    return _context.get()


@contextlib.contextmanager
def audit_source(source: str, **fields: Any) -> Iterator[AuditContext]:
    """Mark everything logged inside the block as coming from `source` ("task", "command")."""
    token = _context.set(replace(_context.get(), source=source, **fields))
    try:
        yield _context.get()
    finally:
        _context.reset(token)
