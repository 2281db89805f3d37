"""The answer to a write that was based on something that has changed since the user saw it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


class StaleVersion(ValidationError):
    """Nothing was written: the object changed after the user saw it. `current` is the object
    as it is now, for the answer to show (the API answers 409, the web shows it on the form).

    A ValidationError, so that a form that does not know better still shows the message."""

    def __init__(self, message: Any, *, current: Any = None) -> None:
        super().__init__(message, code="conflict")
        self.current = current
