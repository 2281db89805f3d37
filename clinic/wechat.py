"""WeChat mini-program login: exchange a ``wx.login()`` code for the user's openid.

``jscode2session`` answers ``{"openid", "session_key", "unionid"?}`` or ``{"errcode", "errmsg"}``.
Only the openid leaves this module: the session key is never stored and never returned
(nothing here needs to decrypt WeChat's encrypted user data).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException

logger = logging.getLogger(__name__)

JSCODE2SESSION_PATH = "/sns/jscode2session"


class WeChatLoginError(APIException):
    """A WeChat refusal or outage, as an API error with its own code and status."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("WeChat login is unavailable right now. Please try again later.")
    default_code = "wechat_unavailable"

    def __init__(self, detail=None, code=None, status_code: int | None = None):
        super().__init__(detail, code)
        if status_code is not None:
            self.status_code = status_code


# WeChat errcode → (HTTP status, our code, message)
ERRCODES = {
    40029: (
        status.HTTP_400_BAD_REQUEST,
        "wechat_invalid_code",
        _("The WeChat login code is invalid. Please sign in again."),
    ),
    40163: (
        status.HTTP_400_BAD_REQUEST,
        "wechat_code_used",
        _("This WeChat login code was already used. Please sign in again."),
    ),
    45011: (
        status.HTTP_429_TOO_MANY_REQUESTS,
        "wechat_rate_limited",
        _("Too many WeChat sign-ins in a short time. Please wait a minute and try again."),
    ),
    -1: (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "wechat_busy",
        _("WeChat is busy. Please try again in a moment."),
    ),
}


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    unionid: str = ""


def code_to_session(code: str) -> WeChatSession:
    """Ask WeChat who owns `code`; raise WeChatLoginError with a clear message otherwise."""
    if not (settings.WECHAT_APPID and settings.WECHAT_SECRET):
        raise WeChatLoginError(
            _("WeChat login is not configured on this server."), code="wechat_not_configured"
        )
    url = settings.WECHAT_API_BASE.rstrip("/") + JSCODE2SESSION_PATH
    params = {
        "appid": settings.WECHAT_APPID,
        "secret": settings.WECHAT_SECRET,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    try:
        response = requests.get(
            url, params=params, timeout=settings.WECHAT_TIMEOUT, allow_redirects=False
        )
        # WeChat sends JSON as text/plain; read the body ourselves.
        body = json.loads(response.text)
    except requests.RequestException as exc:
        logger.warning("jscode2session unreachable: %s", type(exc).__name__)
        raise WeChatLoginError() from exc
    except (ValueError, RecursionError) as exc:  # not JSON, or nested too deep to parse
        logger.warning("jscode2session answered %s with a non-JSON body", response.status_code)
        raise WeChatLoginError() from exc
    if not isinstance(body, dict):
        raise WeChatLoginError()
    errcode = body.get("errcode") or 0
    if errcode:
        logger.info("jscode2session refused a code: errcode %s", errcode)
        http_status, our_code, message = ERRCODES.get(
            errcode,
            (
                status.HTTP_400_BAD_REQUEST,
                "wechat_refused",
                _("WeChat refused the sign-in. Please sign in again."),
            ),
        )
        raise WeChatLoginError(message, code=our_code, status_code=http_status)
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid or len(openid) > 64:
        logger.warning("jscode2session answered without a usable openid")
        raise WeChatLoginError()
    return WeChatSession(openid=openid, unionid=str(body.get("unionid") or ""))
