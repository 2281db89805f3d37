"""The request context (source, IP, user agent, request ID) shared by the audit log and logging.

No model imports here: logging is configured before the app registry is ready.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any


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
