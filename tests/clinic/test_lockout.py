"""Brute-force lockout (django-axes) on the web, admin and API sign-ins, audited."""

from core.models import AuditEvent

PASSWORD = "correct horse battery staple"


def fail(client, url: str, username: str, times: int, **extra) -> list[int]:
    return [
        client.post(
            url, {"username": username, "password": "wrong"}, REMOTE_ADDR="10.0.0.7", **extra
        ).status_code
        for _ in range(times)
    ]


def test_the_web_sign_in_locks_after_five_failures_even_for_the_right_password(
    client, doctor, settings
):
    statuses = fail(client, "/login/", "doctor1", 5)
    assert statuses == [200, 200, 200, 200, 429]
    locked = client.post(
        "/login/", {"username": "doctor1", "password": PASSWORD}, REMOTE_ADDR="10.0.0.7"
    )
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    # Five wrong passwords, then the right one refused while locked: six failed sign-ins.
    assert AuditEvent.objects.filter(action="login_failed", object_repr="doctor1").count() == 6


def test_another_address_is_not_locked_out(client, doctor):
    fail(client, "/login/", "doctor1", 5)
    other = client.post(
        "/login/", {"username": "doctor1", "password": PASSWORD}, REMOTE_ADDR="10.0.0.8"
    )
    assert other.status_code == 302
    assert AuditEvent.objects.filter(action="login", actor=doctor).count() == 1


def test_the_admin_sign_in_shares_the_counter(client, doctor):
    fail(client, "/login/", "doctor1", 3)
    statuses = fail(client, "/admin/login/", "doctor1", 2)
    assert statuses[-1] == 429


def test_the_api_token_endpoint_answers_429_with_an_error_body(client, doctor, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}),
            "login": "100/minute",
        },
    }
    statuses = [
        client.post(
            "/api/v1/auth/token/",
            {"username": "doctor1", "password": "wrong"},
            content_type="application/json",
            REMOTE_ADDR="10.0.0.9",
        ).status_code
        for _ in range(5)
    ]
    assert statuses[:4] == [401, 401, 401, 401]
    locked = client.post(
        "/api/v1/auth/token/",
        {"username": "doctor1", "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR="10.0.0.9",
    )
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "locked_out"
