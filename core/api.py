"""What every REST API view shares: the error body, permissions, pagination, throttles and
the audit of reads.

Errors always have one shape, whatever raised them (DRF, a service's Django
``ValidationError`` or ``PermissionDenied``, a 404)::

    {"error": {"code": "invalid", "message": "Check the fields below.", "fields": {"name": ["…"]}}}

Scoping: ``has_object_permission`` is not called for lists and creates, so no view relies on
it. Staff operations need the model permissions named in the view's ``required_permissions``
(a staff member holding them sees every record of the clinic) and the services check them
again; patients reach only the ``me/`` views, whose querysets start from the caller's own
patient, so a foreign or unknown ID is simply not found (404).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from core.audit import audit_log
from core.conflicts import StaleVersion
from core.context import client_ip
from core.models import AuditEvent
from core.roles import user_may
from core.text import normalize_name

logger = logging.getLogger(__name__)

# --- errors ---------------------------------------------------------------------------------
NON_FIELD_KEYS = ("non_field_errors", "detail", "__all__")


class Conflict(exceptions.APIException):
    """409: what the caller based the request on has changed; `current` is how it is now."""

    status_code = 409
    default_code = "conflict"

    def __init__(self, detail: str, *, current: Any = None, etag: str | None = None) -> None:
        super().__init__(detail)
        self.current = current
        self.etag = etag


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_code = "precondition_required"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with service errors mapped and every body in the one error shape."""
    if isinstance(exc, DjangoValidationError):
        exc = validation_error_from_django(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args[:1] or ()))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a server error: Django's handler logs it and answers 500
    response.data = {"error": error_body(exc)}
    if isinstance(exc, Conflict):
        response.data["error"]["current"] = exc.current
        if exc.etag:
            response["ETag"] = exc.etag
    return response


def validation_error_from_django(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A service's ValidationError as DRF's, keeping each message's code (e.g. ``too_large``)."""

    def details(errors: list[DjangoValidationError]) -> list[exceptions.ErrorDetail]:
        result = []
        for error in errors:
            message = error.message % error.params if error.params else error.message
            result.append(exceptions.ErrorDetail(str(message), code=error.code or "invalid"))
        return result

    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(
            {
                ("non_field_errors" if field == "__all__" else field): details(errors)
                for field, errors in exc.error_dict.items()
            }
        )
    return exceptions.ValidationError({"non_field_errors": details(exc.error_list)})


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if not isinstance(exc, exceptions.ValidationError):
        code = exc.get_codes()
        detail = exc.detail
        if isinstance(detail, dict):  # simplejwt: {"detail": …, "code": …, "messages": [...]}
            detail = detail.get("detail", "")
        return {
            "code": code if isinstance(code, str) else exc.default_code,
            "message": str(detail),
            "fields": {},
        }
    detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    fields: dict[str, Any] = {}
    general: list[exceptions.ErrorDetail] = []
    for key, value in detail.items():
        if key in NON_FIELD_KEYS:
            general.extend(_flatten(value))
        else:
            fields[key] = _messages(value)
    if general and not fields:
        return {
            "code": general[0].code or "invalid",
            "message": " ".join(str(message) for message in general),
            "fields": {},
        }
    every = [error for value in detail.values() for error in _flatten(value)]
    codes = {error.code for error in every}
    if general:
        message = " ".join(str(error) for error in general)
    elif len(every) == 1:  # one problem (e.g. a refused photo): say it at the top level too
        message = str(every[0])
    else:
        message = _("Some fields are not valid: check them and try again.")
    return {
        "code": codes.pop() if len(codes) == 1 else "invalid",
        "message": message,
        "fields": fields,
    }


def _flatten(value: Any) -> list[exceptions.ErrorDetail]:
    if isinstance(value, dict):
        return [item for nested in value.values() for item in _flatten(nested)]
    if isinstance(value, list):
        return [item for nested in value for item in _flatten(nested)]
    return [value if isinstance(value, exceptions.ErrorDetail) else exceptions.ErrorDetail(value)]


def _messages(value: Any) -> Any:
    """Field errors as lists of strings; nested serializers keep their nesting."""
    if isinstance(value, dict):
        return {key: _messages(nested) for key, nested in value.items()}
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        return [_messages(item) for item in value]
    return [str(item) for item in (value if isinstance(value, list) else [value])]


@contextmanager
def service_errors(current: Callable[[Any], Any] | None = None) -> Iterator[None]:
    """Inside a view: a service's Django errors become DRF errors (400 / 403); a StaleVersion
    becomes 409 with `current(exc.current)` (the object as it is now, serialized)."""
    try:
        yield
    except StaleVersion as exc:
        if current is None:
            raise
        revision = getattr(exc.current, "revision", None)
        raise Conflict(
            " ".join(exc.messages),
            current=current(exc.current) if exc.current is not None else None,
            etag=revision_etag(revision) if revision is not None else None,
        ) from exc
    except DjangoValidationError as exc:
        raise validation_error_from_django(exc) from exc
    except DjangoPermissionDenied as exc:
        raise exceptions.PermissionDenied(*(exc.args[:1] or ())) from exc


# --- optimistic concurrency -----------------------------------------------------------------
def revision_etag(revision: int) -> str:
    return f'"{revision}"'


def seen_revision(request, *, required: bool) -> int | None:
    """The revision the caller saw: the `If-Match` header (an ETag from an earlier answer) or
    the body's `revision`. None when neither is sent; 428 instead when `required`."""
    header = request.headers.get("If-Match", "").strip()
    body = request.data if hasattr(request.data, "get") else {}
    raw = header.removeprefix("W/").strip('"') if header else body.get("revision")
    if raw is None or raw == "":
        if required:
            raise PreconditionRequired(
                _(
                    "Send the revision of the review you saw (the “revision” field or an "
                    "If-Match header), so that only what you saw is changed."
                )
            )
        return None
    if isinstance(raw, bool) or not str(raw).isdigit():
        raise exceptions.ValidationError(
            {"revision": [_("The revision is a whole number from an earlier answer.")]}
        )
    return int(raw)


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(child=serializers.JSONField()),
                "current": serializers.JSONField(
                    required=False, help_text="409 only: the object as it is now"
                ),
            },
        )
    },
)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error statuses an operation can answer."""
    descriptions = {
        400: gettext_lazy("Invalid input"),
        401: gettext_lazy("Not authenticated"),
        403: gettext_lazy("Not allowed"),
        404: gettext_lazy("Not found (or not yours)"),
        409: gettext_lazy("Changed since you saw it: the current version is in error.current"),
        428: gettext_lazy("The revision you saw is required"),
        429: gettext_lazy("Too many requests"),
        503: gettext_lazy("Service unavailable"),
    }
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=descriptions[code])
        for code in codes
    }


class StrictCharField(serializers.CharField):
    """The API's text input: a JSON string and nothing else.

    DRF's CharField turns numbers into text, so ``{"name": 1e999999}`` was stored as "inf"
    and ``{"name": 12}`` as "12". Every input serializer uses this field for text instead
    (tests/api/test_schema.py checks that none uses a plain CharField).
    """

    default_error_messages = {
        "not_a_string": gettext_lazy(
            "Send this field as text in quotes, not as a number, true/false, a list or an object."
        )
    }

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictRegexField(StrictCharField, serializers.RegexField):
    """DRF's RegexField, refusing non-string JSON like StrictCharField."""


class NameField(StrictCharField):
    """A person's name: NFC-normalised; control/format characters and mark stacks refused
    (core.text.normalize_name, the same rule as the services and the web forms)."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            return normalize_name(value)
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.messages, code=exc.code) from exc


class ChoiceLabelField(serializers.CharField):
    """The label of a choices value in the request's language (``"analysed"`` → "Waiting for
    review"). Cheaper than ``source="get_status_display"``, which DRF introspects on every row."""

    def __init__(self, choices, **kwargs):
        self.labels = dict(choices)
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value) -> str:
        return str(self.labels.get(value, value))


# --- who is calling -------------------------------------------------------------------------
def is_patient_user(user) -> bool:
    """A mini-program patient account (patient role, never staff)."""
    if not (user and user.is_authenticated) or user.is_staff or user.is_superuser:
        return False
    return hasattr(user, "patient_account")


class HasRequiredPermissions(BasePermission):
    """Staff operations: the user holds every model permission the view names for the method.

    ``required_permissions = {"GET": [...], "POST": [...]}``; HEAD uses GET's. A method the view
    does not list is refused, so a forgotten entry fails closed.
    """

    message = gettext_lazy("You do not have permission to do this.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method == "OPTIONS":
            return True
        method = "GET" if request.method == "HEAD" else request.method
        required = getattr(view, "required_permissions", {}).get(method)
        if required is None:
            return False
        return all(user_may(user, permission) for permission in required)


class IsPatientAccount(BasePermission):
    """Mini-program endpoints about "me": a bound patient account only."""

    message = gettext_lazy("Only a patient signed in through the mini-program can do this.")

    def has_permission(self, request, view) -> bool:
        return is_patient_user(request.user)


class CanReadApiDocs(BasePermission):
    """The OpenAPI schema and Swagger UI: signed-in staff, or anyone where API_DOCS_PUBLIC."""

    message = gettext_lazy("The API documentation is for signed-in clinic staff.")

    def has_permission(self, request, view) -> bool:
        if settings.API_DOCS_PUBLIC:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


# --- request bodies -------------------------------------------------------------------------
JSON_MAX_DEPTH = 64


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than ``JSON_MAX_DEPTH`` with a 400.

    No operation takes more than a few levels; a 2 KB body of 1,000 nested brackets would
    otherwise raise RecursionError in ``json`` (a 500), before any sign-in check.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise _too_deep() from exc
        if json_depth(data, limit=JSON_MAX_DEPTH) > JSON_MAX_DEPTH:
            raise _too_deep()
        return data


def json_depth(value: Any, *, limit: int) -> int:
    """How deeply lists and objects nest in parsed JSON (a scalar is 0), counted without
    recursion; stops counting once past `limit`."""
    deepest = 0
    stack = [(value, 1)]
    while stack and deepest <= limit:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep() -> exceptions.ParseError:
    return exceptions.ParseError(
        _("The JSON body is nested more than %(limit)d levels deep.") % {"limit": JSON_MAX_DEPTH}
    )


# --- lists ----------------------------------------------------------------------------------
class CursorPage(CursorPagination):
    """Cursor pagination: stable pages while rows are added, no COUNT query.

    A cursor is the client's to send back unchanged; one that does not decode, or whose
    position is not a value of the list's sort key, answers 400 ``invalid_cursor``.
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset = queryset  # decode_cursor checks the position against its sort key
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        # DRF answers a damaged cursor with 404, which reads as "this list does not exist".
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise self._invalid_cursor() from exc
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        # Building the lookup converts the value as the real filter will, without a query:
        # "' OR 1=1" on an integer key raises ValueError there, on a date ValidationError;
        # PostgreSQL refuses NUL in any string.
        sort_key = self.ordering[0].lstrip("-")
        if "\x00" in position:
            raise self._invalid_cursor()
        try:
            self._queryset.filter(**{f"{sort_key}__gt": position})
        except (ValueError, TypeError, DjangoValidationError) as exc:
            raise self._invalid_cursor() from exc

    def _invalid_cursor(self) -> exceptions.ValidationError:
        return exceptions.ValidationError(
            {
                "cursor": [
                    exceptions.ErrorDetail(str(self.invalid_cursor_message), code="invalid_cursor")
                ]
            }
        )


def cursor_page(ordering: str) -> type[CursorPage]:
    """A CursorPage ordered by one unique (or nearly unique) field, e.g. ``"-screened_at"``."""
    return type(f"CursorPage_{ordering.strip('-')}", (CursorPage,), {"ordering": ordering})


# --- throttles ------------------------------------------------------------------------------
class ScopedThrottle(ScopedRateThrottle):
    """DRF's scoped throttle with rates read from ``settings.API_THROTTLE_RATES`` per request
    (DRF binds its own rates at import, so tests and deployments could not change them)."""

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request) -> str:
        # Anonymous callers are counted per client address as TRUSTED_PROXY_COUNT defines it,
        # never per a client-written X-Forwarded-For (DRF's default without NUM_PROXIES).
        return client_ip(request) or ""

    def allow_request(self, request, view) -> bool:
        # The counters live in the cache (Redis in production). Without it, serve the request
        # unthrottled rather than answer 500: an upload must not fail because Redis is down.
        try:
            return super().allow_request(request, view)
        except redis.exceptions.RedisError as exc:
            logger.warning("Throttle %r not applied, the cache is unavailable: %s", self.scope, exc)
            return True


# --- audit ----------------------------------------------------------------------------------
def audit_list_read(
    *, actor, object_type: str, patient_refs: list[str], filters: list[str]
) -> None:
    """One audit line per list request naming every patient it showed (constant queries)."""
    refs = list(dict.fromkeys(patient_refs))
    audit_log(
        actor=actor,
        action=AuditEvent.Action.VIEW,
        object_type=object_type,
        object_repr=f"list ({len(refs)} patients)",
        patient_ref=refs[0] if len(refs) == 1 else "",
        changes={"listed_patients": refs, "filters": filters},
    )


class AuditedListMixin:
    """A list view that writes one audit line per page it returns (see `audit_list_read`).

    Filter values are not logged (a search may be a phone number), only which filters were used.
    """

    audit_object_type = ""

    def audit_patient_ref(self, obj) -> str:
        raise NotImplementedError

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is not None:
            audit_list_read(
                actor=self.request.user,
                object_type=self.audit_object_type,
                patient_refs=[self.audit_patient_ref(obj) for obj in page],
                filters=sorted(
                    key for key in self.request.query_params if key not in ("cursor", "page_size")
                ),
            )
        return page


def not_found(request, exception=None):
    """handler404: API paths answer in the API's error shape; the rest get Django's page."""
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        return JsonResponse(
            {"error": {"code": "not_found", "message": _("Not found."), "fields": {}}},
            status=404,
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
