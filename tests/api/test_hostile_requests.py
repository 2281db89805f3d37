"""Hostile request bodies and cursors: a 400 in the API's error shape, never a 500.

A JSON body of 1,000 nested brackets (2 KB) reaches the parser before any sign-in check; a
hand-made pagination cursor reaches the database filter of every list.
"""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse

from core.api import JSON_MAX_DEPTH
from patients.models import Patient

NESTED_1000 = b"[" * 1000 + b"]" * 1000
TOO_DEEP = {
    "code": "parse_error",
    "message": f"The JSON body is nested more than {JSON_MAX_DEPTH} levels deep.",
    "fields": {},
}
SIGN_IN = [
    "auth-token",
    "auth-token-refresh",
    "auth-logout",
    "auth-wechat-login",
    "auth-wechat-bind",
]


def nested_object(depth: int) -> bytes:
    """{"name": {"name": … 1 …}} with `depth` objects."""
    return b'{"name":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("name", SIGN_IN)
def test_a_body_nested_1000_deep_is_400_before_signing_in(anon, db, name):
    response = anon.post(reverse(f"api-v1:{name}"), NESTED_1000, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": TOO_DEEP}


def test_a_body_nested_1000_deep_is_400_for_staff_and_creates_nothing(as_admin):
    response = as_admin.post(
        reverse("api-v1:patients"), NESTED_1000, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {"error": TOO_DEEP}
    assert not Patient.objects.exists()


def test_the_limit_is_64_levels(anon, db):
    url = reverse("api-v1:auth-token")

    at_limit = anon.post(url, nested_object(JSON_MAX_DEPTH), content_type="application/json")
    past_limit = anon.post(url, nested_object(JSON_MAX_DEPTH + 1), content_type="application/json")

    # 64 levels parse (and are then refused by the serializer: no username or password)
    assert at_limit.status_code == 400
    assert at_limit.json()["error"]["code"] == "required"
    assert past_limit.status_code == 400
    assert past_limit.json() == {"error": TOO_DEEP}


def test_the_message_is_translated(anon, db):
    response = anon.post(
        reverse("api-v1:auth-token"),
        NESTED_1000,
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert response.json()["error"]["message"] == f"JSON 请求体的嵌套超过 {JSON_MAX_DEPTH} 层。"


def cursor(querystring: str) -> str:
    return base64.b64encode(querystring.encode()).decode()


CRAFTED_CURSORS = {
    "sql-in-position": cursor("p=' OR 1=1"),
    "sql-in-reversed-position": cursor("r=1&p=' OR 1=1"),
    "nul-in-position": cursor("p=%00"),
    "text-offset": cursor("o=x&p=1"),
    "not-base64": "abc",
}
INVALID_CURSOR = {
    "code": "invalid_cursor",
    "message": "Invalid cursor",
    "fields": {"cursor": ["Invalid cursor"]},
}


# Every list with a cursor, staff's and a patient's (tests/api/test_schema.py checks that the
# schema names no other).
CURSOR_LISTS = {
    "patients": "/api/v1/patients/",
    "records": "/api/v1/records/",
    "worklist": "/api/v1/worklist/",
    "me-records": "/api/v1/me/records/",
    "me-reports": "/api/v1/me/reports/",
}


@pytest.mark.parametrize("crafted", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
def test_a_crafted_cursor_is_400_on_every_list(as_admin, as_patient, signed_record, crafted):
    for name, url in CURSOR_LISTS.items():
        client = as_patient if name.startswith("me-") else as_admin

        response = client.get(url, {"cursor": crafted})

        assert (name, response.status_code) == (name, 400)
        assert response.json() == {"error": INVALID_CURSOR}


def test_a_cursor_the_api_handed_out_still_works(as_admin, technician):
    from tests.factories import PatientFactory

    PatientFactory.create_batch(3, created_by=technician)
    first = as_admin.get(reverse("api-v1:patients"), {"page_size": 2}).json()

    second = as_admin.get(first["next"])

    assert second.status_code == 200
    assert len(first["results"]) + len(second.json()["results"]) == 3
