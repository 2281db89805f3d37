"""API refresh tokens in families: every token rotated from one sign-in shares its family ID.

Refresh tokens are single use (rotated and blacklisted on use). A used one that comes back
means two parties hold the chain (a stolen token, a leaked backup of the app's storage), and
the server cannot tell which is the owner: every outstanding token of that family is revoked,
so both must sign in again. The other devices of the same person keep their own families.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from core.audit import audit_log
from core.models import AuditEvent

FAMILY_CLAIM = "fam"


class FamilyRefreshToken(RefreshToken):
    """A refresh token whose family ID (the ID of the sign-in's first token) survives rotation."""

    def __init__(self, token: Any = None, verify: bool = True) -> None:
        super().__init__(token, verify)
        if token is None:  # a new sign-in; rotation copies the claim to each successor
            self.payload[FAMILY_CLAIM] = self.payload[api_settings.JTI_CLAIM]


def tokens_for(user) -> dict[str, str]:
    """A new family: an access token and the first refresh token."""
    refresh = FamilyRefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


class FamilyTokenRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's rotation, plus: a blacklisted refresh token presented again revokes its
    family (still answered 401 ``token_not_valid``)."""

    token_class = FamilyRefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except TokenError:
            payload = reused_refresh_payload(attrs["refresh"])
            if payload is not None:
                refresh_family_revoke(payload=payload)
            raise


def reused_refresh_payload(raw: str) -> dict[str, Any] | None:
    """The claims of `raw` if it is a genuine, unexpired refresh token already blacklisted."""
    try:
        payload = token_backend.decode(raw, verify=True)
    except TokenBackendError:
        return None  # forged, damaged or expired: nothing of ours to protect
    if payload.get(api_settings.TOKEN_TYPE_CLAIM) != FamilyRefreshToken.token_type:
        return None
    jti = payload.get(api_settings.JTI_CLAIM)
    if not BlacklistedToken.objects.filter(token__jti=jti).exists():
        return None
    return payload


def refresh_family_revoke(*, payload: dict[str, Any]) -> int:
    """Blacklist every outstanding refresh token of the family `payload` belongs to (every one
    of the user's, for a token issued before families existed); audited. Returns how many."""
    family = payload.get(FAMILY_CLAIM)
    user_id = payload.get(api_settings.USER_ID_CLAIM)
    outstanding = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    revoked = 0
    for token in outstanding:
        if (
            family is None
            or token_backend.decode(token.token, verify=False).get(FAMILY_CLAIM) == family
        ):
            BlacklistedToken.objects.get_or_create(token=token)
            revoked += 1
    user = get_user_model().objects.filter(pk=user_id).first()
    audit_log(
        actor=None,
        action=AuditEvent.Action.LOGIN_FAILED,
        obj=user,
        object_type="" if user else "auth.user",
        object_id="" if user else str(user_id or ""),
        changes={"reason": "refresh_token_reused", "revoked_tokens": revoked},
    )
    return revoked
