"""Errors raised outside a view (middleware, session save) answer like errors in a view: a lost
database is a 503 "please retry", anything else a static 500 that shows no traceback."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.test import Client

from core.errors import MESSAGES, SERVER_ERROR_MESSAGES, STORAGE_MESSAGES
from core.media import MediaStorageUnavailable
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SECRET = "secret-detail-that-must-not-leak"


@pytest.fixture
def browser() -> Client:
    return Client(raise_request_exception=False)


def _fail_when_saving_an_existing_session(self, must_create=False):
    """The database goes away after the view: the session's final save at the end fails."""
    if not must_create:
        raise OperationalError("server closed the connection unexpectedly")
    return original_save(self, must_create=must_create)


original_save = SessionStore.save


def test_losing_the_database_while_the_session_is_saved_answers_the_503_page(browser):
    UserFactory(username="tech9", password="pw-123456789", role="technician")
    with mock.patch.object(SessionStore, "save", _fail_when_saving_an_existing_session):
        response = browser.post("/login/", {"username": "tech9", "password": "pw-123456789"})

    assert (response.status_code, response["Retry-After"], response["Cache-Control"]) == (
        503,
        "30",
        "no-store",
    )
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert MESSAGES["zh"] in page and MESSAGES["en"] in page


@pytest.mark.parametrize(
    ("accept_language", "message"), [("zh-hans", MESSAGES["zh"]), ("en", MESSAGES["en"])]
)
def test_an_authentication_middleware_database_error_on_the_api_answers_503_json(
    browser, accept_language, message
):
    failure = OperationalError("could not connect to server")
    with mock.patch.object(AuthenticationMiddleware, "process_request", side_effect=failure):
        response = browser.get("/api/v1/patients/", HTTP_ACCEPT_LANGUAGE=accept_language)

    assert (response.status_code, response["Retry-After"], response["Cache-Control"]) == (
        503,
        "30",
        "no-store",
    )
    assert response.json() == {
        "error": {"code": "database_unavailable", "message": message, "fields": {}}
    }


@pytest.mark.parametrize(
    ("path", "accept", "expected"),
    [
        (
            "/api/v1/patients/",
            "*/*",
            {
                "error": {
                    "code": "media_storage_unavailable",
                    "message": STORAGE_MESSAGES["en"],
                    "fields": {},
                }
            },
        ),
        ("/screening/1/photos/upload", "application/json", {"error": STORAGE_MESSAGES["en"]}),
    ],
)
def test_an_unreachable_media_bucket_outside_a_view_answers_503_too(
    browser, path, accept, expected
):
    failure = MediaStorageUnavailable("bucket ophai-media: connection refused")
    with mock.patch.object(XFrameOptionsMiddleware, "process_response", side_effect=failure):
        response = browser.get(path, HTTP_ACCEPT=accept, HTTP_ACCEPT_LANGUAGE="en")

    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert response.json() == expected


def test_an_unrelated_middleware_error_is_a_static_500_page_without_the_traceback(browser):
    with mock.patch.object(
        XFrameOptionsMiddleware, "process_response", side_effect=RuntimeError(SECRET)
    ):
        response = browser.get("/login/")

    page = response.content.decode()
    assert (response.status_code, response["Content-Type"]) == (500, "text/html; charset=utf-8")
    assert SERVER_ERROR_MESSAGES["zh"] in page and SERVER_ERROR_MESSAGES["en"] in page
    assert SECRET not in page and "Traceback" not in page
    assert not response.has_header("Retry-After")


def test_an_unrelated_error_on_the_api_is_a_500_in_the_error_shape(browser):
    with mock.patch.object(
        AuthenticationMiddleware, "process_request", side_effect=RuntimeError(SECRET)
    ):
        response = browser.get("/api/v1/patients/")

    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "server_error", "message": SERVER_ERROR_MESSAGES["en"], "fields": {}}
    }
    assert SECRET not in response.content.decode()


def test_the_error_pages_make_no_database_query(browser, django_assert_num_queries):
    failure = OperationalError("could not connect to server")
    with (
        mock.patch.object(AuthenticationMiddleware, "process_request", side_effect=failure),
        django_assert_num_queries(0),
    ):
        assert browser.get("/").status_code == 503
