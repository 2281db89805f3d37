"""Sign-in: staff JWTs (rotation, blacklist, audit) and patients through WeChat (a real local
HTTP server stands in for api.weixin.qq.com), including first-time binding."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient
from werkzeug import Response as WerkzeugResponse

from clinic.auth_api import BIND_TOKEN_SALT
from core.models import AuditEvent
from patients.models import PatientAccount
from tests.api.conftest import OWN_OPENID

PASSWORD = "correct horse battery staple"
JSCODE = "/sns/jscode2session"


def error(response) -> dict:
    return response.json()["error"]


# --- staff ----------------------------------------------------------------------------------
def test_staff_sign_in_returns_a_working_token_pair_and_is_audited(anon, doctor):
    response = anon.post(
        reverse("api-v1:auth-token"), {"username": "doctor1", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert client.get(reverse("api-v1:worklist")).status_code == 200
    event = AuditEvent.objects.get(action="login")
    assert (event.actor, event.source, event.changes) == (doctor, "api", {"via": "api"})


def test_a_wrong_password_is_401_and_audited_as_login_failed(anon, doctor):
    response = anon.post(
        reverse("api-v1:auth-token"), {"username": "doctor1", "password": "nope"}, format="json"
    )

    assert response.status_code == 401
    assert error(response)["message"] == "The username or password is not correct."
    event = AuditEvent.objects.get(action="login_failed")
    assert (event.actor, event.object_repr) == (None, "doctor1")


def test_the_access_token_lives_15_minutes(settings):
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] == dt.timedelta(minutes=15)
    assert settings.SIMPLE_JWT["ROTATE_REFRESH_TOKENS"] is True
    assert settings.SIMPLE_JWT["BLACKLIST_AFTER_ROTATION"] is True


def test_refresh_rotates_and_a_used_refresh_token_is_refused(anon, technician):
    pair = anon.post(
        reverse("api-v1:auth-token"), {"username": "tech1", "password": PASSWORD}, format="json"
    ).json()

    first = anon.post(
        reverse("api-v1:auth-token-refresh"), {"refresh": pair["refresh"]}, format="json"
    )
    again = anon.post(
        reverse("api-v1:auth-token-refresh"), {"refresh": pair["refresh"]}, format="json"
    )

    assert first.status_code == 200
    assert first.json()["refresh"] != pair["refresh"]
    assert again.status_code == 401
    assert error(again)["code"] == "token_not_valid"


def refresh(client, token: str):
    return client.post(reverse("api-v1:auth-token-refresh"), {"refresh": token}, format="json")


def test_replaying_a_used_refresh_token_revokes_its_whole_sign_in(anon, technician):
    def sign_in() -> dict:
        return anon.post(
            reverse("api-v1:auth-token"), {"username": "tech1", "password": PASSWORD}, format="json"
        ).json()

    phone, tablet = sign_in(), sign_in()
    second = refresh(anon, phone["refresh"]).json()  # the chain moved on (say, a thief)
    third = refresh(anon, second["refresh"]).json()

    replayed = refresh(anon, phone["refresh"])  # the first token, used once already

    assert replayed.status_code == 401
    assert error(replayed)["code"] == "token_not_valid"
    # every token of that sign-in is revoked: both holders must sign in again
    assert refresh(anon, third["refresh"]).status_code == 401
    # the same person's other sign-in is not touched
    assert refresh(anon, tablet["refresh"]).status_code == 200
    # audited: the replay revoked one token; the revoked one presented again, none
    events = AuditEvent.objects.filter(action="login_failed").order_by("id")
    assert [(e.object_type, e.object_id, e.changes) for e in events] == [
        ("auth.user", str(technician.pk), {"reason": "refresh_token_reused", "revoked_tokens": n})
        for n in (1, 0)
    ]


def test_a_patients_wechat_sign_in_is_a_family_too(anon, wechat, own_account):
    expect_code(wechat, "c1", {"openid": OWN_OPENID, "session_key": "k"})
    first = login(anon, "c1").json()
    second = refresh(anon, first["refresh"]).json()

    assert refresh(anon, first["refresh"]).status_code == 401

    assert refresh(anon, second["refresh"]).status_code == 401


def test_an_expired_or_forged_refresh_token_revokes_nothing(anon, technician, settings):
    pair = anon.post(
        reverse("api-v1:auth-token"), {"username": "tech1", "password": PASSWORD}, format="json"
    ).json()
    header, payload, signature = pair["refresh"].split(".")

    forged = refresh(anon, f"{header}.{payload}.{signature[::-1]}")

    assert forged.status_code == 401
    assert refresh(anon, pair["refresh"]).status_code == 200
    assert not AuditEvent.objects.filter(action="login_failed").exists()


def test_logout_revokes_the_refresh_token(anon, technician):
    pair = anon.post(
        reverse("api-v1:auth-token"), {"username": "tech1", "password": PASSWORD}, format="json"
    ).json()

    assert (
        anon.post(reverse("api-v1:auth-logout"), {"refresh": pair["refresh"]}, format="json")
    ).status_code == 200
    refused = anon.post(
        reverse("api-v1:auth-token-refresh"), {"refresh": pair["refresh"]}, format="json"
    )
    assert refused.status_code == 401


def test_a_patient_account_cannot_sign_in_with_a_password(anon, own_account):
    user = own_account.user
    user.set_password(PASSWORD)
    user.save()
    response = anon.post(
        reverse("api-v1:auth-token"),
        {"username": user.username, "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 403
    assert error(response)["message"] == "Patients sign in through the WeChat mini-program."


def test_an_invalid_bearer_token_is_401_with_a_challenge(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = client.get(reverse("api-v1:worklist"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error(response) == {
        "code": "token_not_valid",
        "message": "Given token not valid for any token type",
        "fields": {},
    }


def test_login_is_throttled_per_client(anon, doctor, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "login": "2/minute"}
    url = reverse("api-v1:auth-token")
    codes = [
        anon.post(url, {"username": "doctor1", "password": "x"}, format="json").status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]


@pytest.mark.parametrize(
    ("proxies", "forwarded"),
    [
        (0, "203.0.113.{i}"),  # no proxy: the header is ignored
        (1, "203.0.113.{i}, 198.51.100.7"),  # behind nginx: only its right-most entry counts
    ],
    ids=["no-proxy", "behind-nginx"],
)
def test_rotating_x_forwarded_for_does_not_escape_the_sign_in_throttle(
    anon, doctor, settings, proxies, forwarded
):
    settings.TRUSTED_PROXY_COUNT = proxies
    settings.AXES_FAILURE_LIMIT = 100
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "login": "10/minute"}
    codes = [
        anon.post(
            reverse("api-v1:auth-token"),
            {"username": "doctor1", "password": "x"},
            format="json",
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=forwarded.format(i=i),
        ).status_code
        for i in range(25)
    ]
    assert codes == [401] * 10 + [429] * 15


# --- WeChat ---------------------------------------------------------------------------------
@pytest.fixture
def wechat(httpserver, settings):
    settings.WECHAT_API_BASE = httpserver.url_for("/")
    settings.WECHAT_TIMEOUT = 2.0
    return httpserver


def expect_code(wechat, code: str, body: dict, *, status: int = 200) -> None:
    wechat.expect_oneshot_request(
        JSCODE,
        method="GET",
        query_string={
            "appid": "wx-test-app",
            "secret": "wechat-test-secret",
            "js_code": code,
            "grant_type": "authorization_code",
        },
    ).respond_with_response(
        # WeChat answers JSON labelled text/plain
        WerkzeugResponse(json.dumps(body), status=status, content_type="text/plain")
    )


def login(client, code: str):
    return client.post(reverse("api-v1:auth-wechat-login"), {"code": code}, format="json")


def test_a_bound_wechat_user_gets_tokens_and_never_the_session_key(anon, wechat, own_account):
    expect_code(wechat, "code-1", {"openid": OWN_OPENID, "session_key": "SECRET-SESSION-KEY"})

    response = login(anon, "code-1")

    assert response.status_code == 200
    body = response.json()
    assert body["bound"] is True
    assert body["patient"] == {
        "patient_id": own_account.patient.patient_id,
        "name": own_account.patient.name,
    }
    assert body["bind_token"] is None
    assert "SECRET-SESSION-KEY" not in response.content.decode()
    assert "session_key" not in response.content.decode()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert client.get(reverse("api-v1:me")).json()["patient_id"] == own_account.patient.patient_id
    wechat.check_assertions()
    assert AuditEvent.objects.filter(action="login", actor=own_account.user).count() == 1


def test_a_new_wechat_user_gets_a_bind_token_only(anon, wechat, patient):
    expect_code(wechat, "code-2", {"openid": "o-new-user", "session_key": "k"})

    body = login(anon, "code-2").json()

    assert (body["bound"], body["access"], body["refresh"], body["patient"]) == (
        False,
        None,
        None,
        None,
    )
    assert signing.loads(body["bind_token"], salt=BIND_TOKEN_SALT) == {"openid": "o-new-user"}
    assert not PatientAccount.objects.exists()


@pytest.mark.parametrize(
    ("errcode", "status", "code", "english", "chinese"),
    [
        (
            40029,
            400,
            "wechat_invalid_code",
            "The WeChat login code is invalid. Please sign in again.",
            "微信登录凭证无效，请重新登录。",
        ),
        (
            40163,
            400,
            "wechat_code_used",
            "This WeChat login code was already used. Please sign in again.",
            "该微信登录凭证已被使用，请重新登录。",
        ),
        (
            45011,
            429,
            "wechat_rate_limited",
            "Too many WeChat sign-ins in a short time. Please wait a minute and try again.",
            "短时间内微信登录次数过多，请稍等一分钟后再试。",
        ),
        (
            -1,
            503,
            "wechat_busy",
            "WeChat is busy. Please try again in a moment.",
            "微信系统繁忙，请稍后再试。",
        ),
    ],
)
def test_wechat_errcodes_become_clear_errors_in_both_languages(
    anon, wechat, errcode, status, code, english, chinese
):
    expect_code(wechat, "bad-en", {"errcode": errcode, "errmsg": "whatever"})
    expect_code(wechat, "bad-zh", {"errcode": errcode, "errmsg": "whatever"})

    response = login(anon, "bad-en")
    response_zh = anon.post(
        reverse("api-v1:auth-wechat-login"),
        {"code": "bad-zh"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert response.status_code == status
    assert error(response) == {"code": code, "message": english, "fields": {}}
    assert response_zh.status_code == status
    assert error(response_zh) == {"code": code, "message": chinese, "fields": {}}


def test_wechat_unreachable_is_503(anon, settings, db):
    settings.WECHAT_API_BASE = "http://127.0.0.1:9"  # discard port: connection refused
    response = login(anon, "code")
    assert response.status_code == 503
    assert error(response)["code"] == "wechat_unavailable"


def test_wechat_answering_html_is_503(anon, wechat, db):
    wechat.expect_oneshot_request(JSCODE).respond_with_data("<html>busy</html>", status=502)
    response = login(anon, "code")
    assert response.status_code == 503
    assert error(response)["code"] == "wechat_unavailable"


def test_wechat_answering_json_nested_1000_deep_is_503(anon, wechat, db):
    wechat.expect_oneshot_request(JSCODE).respond_with_data(
        "[" * 1000 + "]" * 1000, content_type="text/plain"
    )
    response = login(anon, "code")
    assert response.status_code == 503
    assert error(response)["code"] == "wechat_unavailable"


def test_wechat_slower_than_the_timeout_is_503(anon, wechat, settings, db):
    import time

    settings.WECHAT_TIMEOUT = 0.2

    def slow(request):
        time.sleep(0.6)
        return WerkzeugResponse(json.dumps({"openid": "late"}), content_type="text/plain")

    wechat.expect_oneshot_request(JSCODE).respond_with_handler(slow)
    response = login(anon, "code")
    assert response.status_code == 503


def test_wechat_not_configured_is_503(anon, settings, db):
    settings.WECHAT_APPID = ""
    response = login(anon, "code")
    assert response.status_code == 503
    assert error(response)["code"] == "wechat_not_configured"


# --- binding --------------------------------------------------------------------------------
def bind_token(openid: str = "o-new-user") -> str:
    return signing.dumps({"openid": openid}, salt=BIND_TOKEN_SALT)


def bind(client, **fields):
    return client.post(
        reverse("api-v1:auth-wechat-bind"), {"bind_token": bind_token(), **fields}, format="json"
    )


def test_binding_with_the_reports_access_code(anon, patient, final_report):
    response = bind(
        anon, patient_id=patient.patient_id, access_code=final_report.access_code.lower()
    )

    assert response.status_code == 200
    assert response.json()["bound"] is True
    account = PatientAccount.objects.get(wechat_openid="o-new-user")
    assert account.patient == patient
    user = account.user
    assert (user.is_staff, user.is_superuser, user.has_usable_password()) == (False, False, False)
    assert list(user.groups.values_list("name", flat=True)) == ["patient"]
    assert AuditEvent.objects.filter(
        action="create", object_type="patients.patientaccount"
    ).exists()


def test_binding_with_phone_digits_and_date_of_birth(anon, patient):
    response = bind(
        anon,
        patient_id=patient.patient_id,
        phone_last4=patient.phone[-4:],
        date_of_birth=patient.date_of_birth.isoformat(),
    )
    assert response.status_code == 200
    assert PatientAccount.objects.get().patient == patient


def test_a_second_binding_of_a_bound_openid_just_signs_in(anon, patient, own_account):
    response = anon.post(
        reverse("api-v1:auth-wechat-bind"),
        {"bind_token": bind_token(OWN_OPENID), "patient_id": "P-anything", "access_code": "X"},
        format="json",
    )
    assert response.status_code == 200
    assert PatientAccount.objects.count() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"access_code": "WRONG234"},
        {"phone_last4": "0000", "date_of_birth": "1970-05-17"},
        {"phone_last4": "PHONE", "date_of_birth": "1971-01-01"},  # right digits, wrong birthday
    ],
    ids=["wrong-code", "wrong-digits", "wrong-birthday"],
)
def test_failed_binding_is_400_audited_and_binds_nothing(anon, patient, final_report, fields):
    if fields.get("phone_last4") == "PHONE":
        fields = {**fields, "phone_last4": patient.phone[-4:]}
    response = bind(anon, patient_id=patient.patient_id, **fields)

    assert response.status_code == 400
    assert error(response) == {
        "code": "binding_failed",
        "message": "These details do not match our records. Check them against your report.",
        "fields": {},
    }
    assert not PatientAccount.objects.exists()
    event = AuditEvent.objects.get(action="login_failed")
    assert (event.patient_ref, event.actor) == (patient.patient_id, None)


def test_an_unknown_patient_id_fails_like_a_wrong_code(anon, patient, final_report):
    response = bind(anon, patient_id="P99999999", access_code=final_report.access_code)
    assert response.status_code == 400
    assert error(response)["code"] == "binding_failed"
    assert AuditEvent.objects.get(action="login_failed").patient_ref == ""


def test_another_patients_access_code_does_not_bind(anon, patient, other_patient, final_report):
    response = bind(anon, patient_id=other_patient.patient_id, access_code=final_report.access_code)
    assert response.status_code == 400
    assert not PatientAccount.objects.exists()


def test_binding_needs_a_code_or_phone_and_birthday(anon, patient):
    response = bind(anon, patient_id=patient.patient_id, phone_last4="8000")
    assert response.status_code == 400
    assert error(response)["code"] == "credentials_missing"


def test_an_expired_or_forged_bind_token_is_refused(anon, patient, final_report):
    response = anon.post(
        reverse("api-v1:auth-wechat-bind"),
        {
            "bind_token": "forged:token",
            "patient_id": patient.patient_id,
            "access_code": final_report.access_code,
        },
        format="json",
    )
    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["bind_token"]
    assert not PatientAccount.objects.exists()


def test_repeated_failures_lock_the_openid_out_even_with_the_right_code(
    anon, patient, final_report, settings
):
    settings.WECHAT_BIND_MAX_FAILURES = 3
    for _ in range(3):
        assert bind(anon, patient_id=patient.patient_id, access_code="WRONG234").status_code == 400

    response = bind(anon, patient_id=patient.patient_id, access_code=final_report.access_code)

    assert response.status_code == 429
    assert error(response)["code"] == "throttled"
    assert response["Retry-After"] == "900"
    assert not PatientAccount.objects.exists()
    assert AuditEvent.objects.filter(action="login_failed").count() == 3


def test_failed_bindings_are_counted_per_client_behind_nginx(anon, patient, final_report, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.WECHAT_BIND_MAX_FAILURES = 3

    def bind_from(address: str, openid: str, code: str):
        return anon.post(
            reverse("api-v1:auth-wechat-bind"),
            {
                "bind_token": bind_token(openid),
                "patient_id": patient.patient_id,
                "access_code": code,
            },
            format="json",
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=address,
        )

    # One client guessing with a new WeChat user and a new left-hand address each time
    guesses = [
        bind_from(f"6.6.6.{i}, 203.0.113.9", f"o-guess-{i}", "WRONG234").status_code
        for i in range(4)
    ]
    # ... while another patient of the same clinic, behind the same nginx, binds normally
    other = bind_from("198.51.100.4", "o-other-client", final_report.access_code)

    assert guesses == [400, 400, 400, 429]
    assert other.status_code == 200
    assert PatientAccount.objects.get().wechat_openid == "o-other-client"
    assert set(
        AuditEvent.objects.filter(action="login_failed").values_list("ip_address", flat=True)
    ) == {"203.0.113.9"}


def test_binding_requests_are_rate_limited_by_scope(anon, patient, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "wechat_bind": "2/hour"}
    settings.WECHAT_BIND_MAX_FAILURES = 100
    codes = [
        bind(anon, patient_id=patient.patient_id, access_code="WRONG234").status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]


# Redis as the cache, on a port where nothing listens: every cache call raises ConnectionError.
REDIS_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}
BINDING_UNAVAILABLE = {
    "en": "Linking your WeChat account is unavailable right now. Please try again in a few minutes.",
    "zh-hans": "暂时无法绑定微信账号，请几分钟后再试。",
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_binding_is_refused_with_503_while_the_failure_counter_is_down(
    anon, patient, final_report, language
):
    users = get_user_model().objects.count()
    with override_settings(CACHES=REDIS_DOWN):
        response = anon.post(
            reverse("api-v1:auth-wechat-bind"),
            {
                "bind_token": bind_token(),
                "patient_id": patient.patient_id,
                "access_code": final_report.access_code,
            },
            format="json",
            HTTP_ACCEPT_LANGUAGE=language,
        )

    assert (response.status_code, response["Retry-After"]) == (503, "60")
    assert error(response) == {
        "code": "binding_unavailable",
        "message": BINDING_UNAVAILABLE[language],
        "fields": {},
    }
    assert not PatientAccount.objects.exists()
    assert get_user_model().objects.count() == users
    assert not AuditEvent.objects.filter(object_type="patients.patientaccount").exists()


def test_a_failure_that_cannot_be_counted_is_audited_and_answers_503(anon, patient, final_report):
    outage = redis.exceptions.ConnectionError("Connection refused")
    with mock.patch("clinic.auth_api.cache.add", side_effect=outage):
        response = bind(anon, patient_id=patient.patient_id, access_code="WRONG234")

    assert response.status_code == 503
    assert error(response)["code"] == "binding_unavailable"
    assert not PatientAccount.objects.exists()
    assert AuditEvent.objects.get(action="login_failed").patient_ref == patient.patient_id


def test_a_disabled_patient_account_cannot_sign_in(anon, wechat, own_account):
    get_user_model().objects.filter(pk=own_account.user_id).update(is_active=False)
    expect_code(wechat, "code-x", {"openid": OWN_OPENID, "session_key": "k"})
    response = login(anon, "code-x")
    assert response.status_code == 403
