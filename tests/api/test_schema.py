"""The OpenAPI contract: the schema and offline Swagger UI are served, and schemathesis
fuzzes every operation in-process (WSGI) as staff and as a patient — no 5xx, and every
response matches the schema. Bounded: 5 derandomised examples per operation and persona."""

from __future__ import annotations

import base64
import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Built at import from the same generator /api/schema/ serves (no database needed), so that
# pytest collects one test per operation.
# Rendered to JSON and back, as the endpoint serves it: lazy translations become plain strings.
SCHEMA = json.loads(
    OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
)
schema = schemathesis.openapi.from_dict(SCHEMA)
schema.app = get_wsgi_application()
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
FUZZ = hypothesis_settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_the_schema_and_the_docs_are_served_without_a_cdn(client, db):
    schema_response = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema_response.status_code == 200
    assert b"openapi: 3" in schema_response.content
    assert b"/api/v1/me/reports/" in schema_response.content
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html and "jsdelivr" not in html


def test_every_operation_has_an_error_schema_and_an_operation_id():
    raw = SCHEMA
    operations = [
        (path, method, operation)
        for path, item in raw["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) == 37
    for path, method, operation in operations:
        assert operation["operationId"], (path, method)
        errors = [code for code in operation["responses"] if code.startswith("4")]
        assert errors, (path, method)


@pytest.fixture
def fuzz_world(httpserver, db, own_account, other_account, signed_record, settings):
    settings.API_THROTTLE_RATES = {"login": None, "wechat_bind": None, "upload": None}
    # A WeChat stand-in that refuses every code (a 503 for "unavailable" counts as a 5xx)
    httpserver.expect_request("/sns/jscode2session").respond_with_json(
        {"errcode": 40029, "errmsg": "invalid code"}
    )
    settings.WECHAT_API_BASE = httpserver.url_for("/")
    # Rendering a report PDF per operation would dominate the run: the data are a signed,
    # analysed screening of the owning patient (reports are fuzzed on their error paths).
    return signed_record


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Django's own test client stops each request from closing the database connection; the
    WSGI app called directly would close it (inside the test's transaction) on PostgreSQL."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def bearer_header(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


@schema.parametrize()
@FUZZ
def test_fuzz_as_staff(case, fuzz_world, admin_user):
    case.call_and_validate(headers=bearer_header(admin_user), checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_fuzz_as_patient(case, fuzz_world, own_account):
    case.call_and_validate(headers=bearer_header(own_account.user), checks=CHECKS)


# --- explicit hostile cases, through the same checks ----------------------------------------
NESTED_1000 = b"[" * 1000 + b"]" * 1000  # 2 KB; json raises RecursionError at this depth
CRAFTED_CURSOR = base64.b64encode(b"p=' OR 1=1").decode()
JSON_BODY_OPERATIONS = [
    (path, method.upper())
    for path, item in SCHEMA["paths"].items()
    for method, operation in item.items()
    if "application/json" in operation.get("requestBody", {}).get("content", {})
]
CURSOR_OPERATIONS = [
    (path, method.upper())
    for path, item in SCHEMA["paths"].items()
    for method, operation in item.items()
    if any(p["name"] == "cursor" for p in operation.get("parameters", []))
]


def path_parameters(path: str, record, report_id: int) -> dict[str, object]:
    known = {
        "record_id": record.pk,
        "patient_id": record.patient.patient_id,
        "analysis_id": record.images.first().analyses.first().pk,
        "review_id": record.reviews.first().pk,
        "report_id": report_id,
    }
    return {name: value for name, value in known.items() if f"{{{name}}}" in path}


def test_the_cursor_lists_are_the_ones_the_hostile_suite_tries():
    from tests.api.test_hostile_requests import CURSOR_LISTS

    assert sorted(path for path, _ in CURSOR_OPERATIONS) == sorted(CURSOR_LISTS.values())


@pytest.mark.parametrize(("path", "method"), JSON_BODY_OPERATIONS)
def test_a_body_nested_1000_deep_is_a_documented_400(path, method, fuzz_world, admin_user, doctor):
    clinical = "review" in path or "approve-summary" in path
    # No report exists in this world: report paths answer 404 before reading the body.
    case = schema[path][method].Case(
        path_parameters=path_parameters(path, fuzz_world, report_id=999_999),
        body=NESTED_1000,
        media_type="application/json",
    )

    response = case.call_and_validate(
        headers=bearer_header(doctor if clinical else admin_user), checks=CHECKS
    )

    expected = 404 if "{report_id}" in path else 400
    assert response.status_code == expected, response.text[:300]
    if expected == 400:
        assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize(("path", "method"), CURSOR_OPERATIONS)
def test_a_crafted_cursor_is_a_documented_400(path, method, fuzz_world, admin_user, own_account):
    user = own_account.user if path.startswith("/api/v1/me/") else admin_user
    case = schema[path][method].Case(query={"cursor": CRAFTED_CURSOR})

    response = case.call_and_validate(headers=bearer_header(user), checks=CHECKS)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
