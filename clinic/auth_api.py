"""Sign-in for the API: staff by username and password, patients through WeChat.

Both get a short-lived access JWT and a rotating refresh JWT (blacklisted after use and on
logout). Patients: ``POST auth/wechat/login`` with the ``wx.login()`` code; an openid not yet
bound answers with a ``bind_token`` (signed, 10 minutes), and ``POST auth/wechat/bind`` binds it
once the patient proves who they are with their patient ID plus a report access code, or plus
their phone's last 4 digits and date of birth. Failed bindings are throttled and audited; while
the cache that counts them (Redis) is down, binding is refused with 503 rather than unlimited.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    PermissionDenied,
    Throttled,
)
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import (
    TokenBlacklistSerializer,
    TokenObtainPairSerializer,
)
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
)

from clinic.lockout import lockout_response
from clinic.tokens import FamilyRefreshToken, FamilyTokenRefreshSerializer, tokens_for
from clinic.wechat import code_to_session
from core.api import ScopedThrottle, StrictCharField, StrictRegexField, error_responses
from core.audit import audit_log
from core.context import client_ip
from core.models import AuditEvent
from patients.models import Patient, PatientAccount
from patients.services import patient_account_create
from reports.models import Report

BIND_TOKEN_SALT = "clinic.wechat.bind"  # noqa: S105 (a namespace, not a secret)
BIND_TOKEN_MAX_AGE = 600
BIND_FAILURE_WINDOW = 15 * 60

logger = logging.getLogger(__name__)


# --- staff ----------------------------------------------------------------------------------
class StaffTokenSerializer(TokenObtainPairSerializer):
    """Username and password of a staff member; patient accounts sign in through WeChat."""

    token_class = FamilyRefreshToken
    default_error_messages = {
        "no_active_account": gettext_lazy("The username or password is not correct.")
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # simplejwt declares plain CharFields here, which take a number as a username.
        self.fields[self.username_field] = StrictCharField(write_only=True)
        self.fields["password"] = StrictCharField(
            write_only=True, trim_whitespace=False, style={"input_type": "password"}
        )

    def validate(self, attrs):
        # A wrong password is audited by clinic.lockout's user_login_failed receiver, like every
        # sign-in (the event's source says "api").
        data = super().validate(attrs)
        if not self.user.is_staff:
            raise PermissionDenied(_("Patients sign in through the WeChat mini-program."))
        audit_log(
            actor=self.user, action=AuditEvent.Action.LOGIN, obj=self.user, changes={"via": "api"}
        )
        return data


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Bearer token for the Authorization header")
    refresh = serializers.CharField(help_text="Single use: exchange it for a new pair")


class StaffTokenApi(TokenObtainPairView):
    """POST: a staff member's username and password → access and refresh tokens."""

    serializer_class = StaffTokenSerializer
    throttle_classes = [ScopedThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="auth_token",
        responses={200: TokenPairSerializer, **error_responses(400, 401, 403, 429)},
        examples=[
            OpenApiExample(
                "Staff", value={"username": "doctor1", "password": "…"}, request_only=True
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            # django-axes marks the DRF request it was given; its middleware only sees the
            # Django request, so the lockout answer is given here.
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request._request)
            raise


class StrictTokenRefreshSerializer(FamilyTokenRefreshSerializer):
    refresh = StrictCharField()


class StrictTokenBlacklistSerializer(TokenBlacklistSerializer):
    refresh = StrictCharField()


class TokenRefreshApi(TokenRefreshView):
    """POST: a refresh token → a new access token and a new refresh token (the old is revoked).

    A refresh token that was already used revokes every token of its sign-in (401).
    """

    serializer_class = StrictTokenRefreshSerializer
    throttle_classes = [ScopedThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="auth_token_refresh",
        responses={200: TokenPairSerializer, **error_responses(400, 401, 429)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenLogoutApi(TokenBlacklistView):
    """POST: revoke a refresh token (sign out on this device)."""

    serializer_class = StrictTokenBlacklistSerializer

    @extend_schema(
        operation_id="auth_logout",
        responses={200: OpenApiResponse(description="Revoked"), **error_responses(400, 401)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


# --- patients through WeChat ----------------------------------------------------------------
class WeChatLoginInputSerializer(serializers.Serializer):
    code = StrictCharField(max_length=128, help_text="The code from wx.login()")


class WeChatPatientSerializer(serializers.Serializer):
    patient_id = serializers.CharField()
    name = serializers.CharField()


class WeChatLoginOutputSerializer(serializers.Serializer):
    bound = serializers.BooleanField()
    access = serializers.CharField(allow_null=True)
    refresh = serializers.CharField(allow_null=True)
    patient = WeChatPatientSerializer(allow_null=True)
    bind_token = serializers.CharField(
        allow_null=True, help_text="When not bound yet: send it to auth/wechat/bind within 10 min"
    )


def login_response(account: PatientAccount) -> Response:
    PatientAccount.objects.filter(pk=account.pk).update(last_login_at=timezone.now())
    audit_log(
        actor=account.user,
        action=AuditEvent.Action.LOGIN,
        obj=account,
        patient_ref=account.patient.patient_id,
        changes={"via": "wechat"},
    )
    return Response(
        {
            "bound": True,
            **tokens_for(account.user),
            "patient": {"patient_id": account.patient.patient_id, "name": account.patient.name},
            "bind_token": None,
        }
    )


def refuse_inactive(account: PatientAccount) -> None:
    if not account.user.is_active:
        raise PermissionDenied(_("This account has been disabled. Please contact the clinic."))


class WeChatLoginApi(APIView):
    """POST: a wx.login() code → tokens, or a bind token when this WeChat user is new."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="auth_wechat_login",
        request=WeChatLoginInputSerializer,
        responses={200: WeChatLoginOutputSerializer, **error_responses(400, 403, 429, 503)},
        examples=[OpenApiExample("Code", value={"code": "0a3xyz…"}, request_only=True)],
    )
    def post(self, request):
        data = WeChatLoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = code_to_session(data.validated_data["code"])
        account = (
            PatientAccount.objects.select_related("user", "patient")
            .filter(wechat_openid=session.openid)
            .first()
        )
        if account is not None:
            refuse_inactive(account)
            return login_response(account)
        bind_token = signing.dumps({"openid": session.openid}, salt=BIND_TOKEN_SALT)
        return Response(
            {
                "bound": False,
                "access": None,
                "refresh": None,
                "patient": None,
                "bind_token": bind_token,
            }
        )


class WeChatBindInputSerializer(serializers.Serializer):
    bind_token = StrictCharField(max_length=500)
    patient_id = StrictCharField(max_length=32)
    access_code = StrictCharField(
        max_length=16, required=False, allow_blank=True, help_text="From a printed report"
    )
    phone_last4 = StrictRegexField(r"^\d{4}$", required=False, allow_blank=True)
    date_of_birth = serializers.DateField(required=False, allow_null=True)

    def validate(self, attrs):
        has_code = bool(attrs.get("access_code"))
        has_phone = bool(attrs.get("phone_last4")) and attrs.get("date_of_birth") is not None
        if not (has_code or has_phone):
            raise serializers.ValidationError(
                _(
                    "Enter the access code printed on your report, or the last 4 digits of "
                    "your phone number and your date of birth."
                ),
                code="credentials_missing",
            )
        return attrs


def _failure_keys(openid: str, ip: str | None) -> list[str]:
    digest = hashlib.sha256(openid.encode()).hexdigest()[:32]
    return [f"wechat-bind-fail:openid:{digest}", f"wechat-bind-fail:ip:{ip or '-'}"]


class BindingUnavailable(APIException):
    """The failure counter cannot be read or written: binding is refused until it can."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = gettext_lazy(
        "Linking your WeChat account is unavailable right now. Please try again in a few minutes."
    )
    default_code = "binding_unavailable"
    wait = 60  # DRF's handler sends it as Retry-After


@contextmanager
def _failure_counter() -> Iterator[None]:
    # Fail closed: without the counter, access codes and birthdays could be guessed without limit.
    try:
        yield
    except redis.exceptions.RedisError as exc:
        logger.error("WeChat binding refused: the failure counter (cache) is unavailable: %s", exc)
        raise BindingUnavailable from exc


def _refuse_if_locked_out(keys: list[str]) -> None:
    limit = settings.WECHAT_BIND_MAX_FAILURES
    with _failure_counter():
        locked_out = any((cache.get(key) or 0) >= limit for key in keys)
    if locked_out:
        raise Throttled(
            wait=BIND_FAILURE_WINDOW,
            detail=_("Too many failed attempts. Please try again in 15 minutes."),
        )


def _count_failure(keys: list[str]) -> None:
    with _failure_counter():
        for key in keys:
            cache.add(key, 0, BIND_FAILURE_WINDOW)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, BIND_FAILURE_WINDOW)


def _credentials_match(patient: Patient | None, attrs: dict) -> str:
    """The method that proved the identity ("access_code" / "phone"), or "" if none did."""
    if patient is None:
        return ""
    code = (attrs.get("access_code") or "").strip().upper()
    if code and Report.objects.filter(record__patient=patient, access_code=code).exists():
        return "access_code"
    last4 = attrs.get("phone_last4") or ""
    if (
        last4
        and len(patient.phone) >= 4
        and patient.phone[-4:] == last4
        and attrs.get("date_of_birth") == patient.date_of_birth
    ):
        return "phone"
    return ""


class WeChatBindApi(APIView):
    """POST: bind a new WeChat user to their patient record, then sign them in."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "wechat_bind"

    @extend_schema(
        operation_id="auth_wechat_bind",
        request=WeChatBindInputSerializer,
        responses={200: WeChatLoginOutputSerializer, **error_responses(400, 403, 429, 503)},
        examples=[
            OpenApiExample(
                "With the report's access code",
                value={"bind_token": "…", "patient_id": "P20260001", "access_code": "7KX3M9QA"},
                request_only=True,
            ),
            OpenApiExample(
                "With phone and date of birth",
                value={
                    "bind_token": "…",
                    "patient_id": "P20260001",
                    "phone_last4": "8000",
                    "date_of_birth": "1962-03-14",
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request):
        data = WeChatBindInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        try:
            openid = signing.loads(
                attrs["bind_token"], salt=BIND_TOKEN_SALT, max_age=BIND_TOKEN_MAX_AGE
            )["openid"]
        except (signing.BadSignature, KeyError, TypeError) as exc:
            raise serializers.ValidationError(
                {"bind_token": [_("This sign-in has expired. Please sign in with WeChat again.")]},
                code="bind_token_invalid",
            ) from exc
        keys = _failure_keys(openid, client_ip(request))
        _refuse_if_locked_out(keys)

        existing = PatientAccount.objects.select_related("user", "patient").filter(
            wechat_openid=openid
        )
        if (account := existing.first()) is not None:
            refuse_inactive(account)
            return login_response(account)

        patient = Patient.objects.filter(patient_id=attrs["patient_id"].strip().upper()).first()
        method = _credentials_match(patient, attrs)
        if not method:
            audit_log(
                actor=None,
                action=AuditEvent.Action.LOGIN_FAILED,
                object_type="patients.patientaccount",
                object_repr="WeChat binding",
                patient_ref=patient.patient_id if patient else "",
                changes={
                    "patient_id_given": attrs["patient_id"][:32],
                    "method": "access_code" if attrs.get("access_code") else "phone",
                    "openid_sha256": keys[0].rsplit(":", 1)[-1],
                },
            )
            _count_failure(keys)  # after the audit line, which stays if the counter is down
            raise serializers.ValidationError(
                _("These details do not match our records. Check them against your report."),
                code="binding_failed",
            )
        try:
            account = patient_account_create(patient=patient, wechat_openid=openid)
        except IntegrityError:  # the same WeChat user bound twice at once: sign in the winner
            account = existing.get()
        return login_response(account)
