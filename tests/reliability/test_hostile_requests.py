"""Hostile requests against every API operation: deeply nested JSON bodies and hand-made
pagination cursors. Each must be answered 400 in the API's error shape (or refused earlier,
401/403/404, for callers who may not use the operation) and change nothing; none may be a 500.

The operations come from the OpenAPI schema, so a new operation is covered without editing
this file. Counts go to the reliability summary table.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from django.core.cache import cache
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from patients.models import Patient, PatientAccount
from patients.services import patient_account_create
from reports.models import Report
from screening.models import DoctorReview, ScreeningRecord
from tests.ai_results import make_analysed
from tests.api.test_hostile_requests import CRAFTED_CURSORS, cursor
from tests.factories import ModelPackageFactory, ScreeningRecordFactory
from tests.reliability.tally import TALLY, note
from tests.reports.conftest import sign

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = [
    (path, method, operation)
    for path, item in SCHEMA["paths"].items()
    for method, operation in item.items()
]
JSON_BODY_OPERATIONS = [
    (path, method)
    for path, method, operation in OPERATIONS
    if "application/json" in operation.get("requestBody", {}).get("content", {})
]
CURSOR_OPERATIONS = [
    path
    for path, method, operation in OPERATIONS
    if any(p["name"] == "cursor" for p in operation.get("parameters", []))
]

BODIES = {
    "arrays nested 1,000 deep (2 KB)": b"[" * 1000 + b"]" * 1000,
    "objects nested 1,000 deep": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "arrays nested 100,000 deep (200 KB)": b"[" * 100_000 + b"]" * 100_000,
    "objects nested 65 deep": b'{"a":' * 65 + b"1" + b"}" * 65,
}


CURSORS = {
    **CRAFTED_CURSORS,
    "a date as the position": cursor("p=2026-01-01"),
    "a negative offset": cursor("o=-5&p=1"),
    "a text direction": cursor("r=yes"),
    "not ASCII": base64.b64encode("p=眼".encode()).decode(),
}


@pytest.fixture(autouse=True)
def _no_hooks_no_throttles(settings):
    settings.FUNDUS_ANALYSIS_TASK = ""
    settings.REVIEW_SIGNED_TASK = ""
    settings.REPORT_FINAL_TASK = ""
    settings.LLM_BASE_URL = ""
    # Many requests from one address: the rate limits would answer 429 before the parser.
    settings.API_THROTTLE_RATES = {}
    settings.AXES_FAILURE_LIMIT = 10_000
    cache.clear()


@pytest.fixture
def signed_record(patient, technician, doctor, photo_file) -> ScreeningRecord:
    """A screening with a photo, an analysis and a signed review."""
    record = ScreeningRecordFactory(patient=patient, operator=technician)
    make_analysed(record, technician, photo_file, ModelPackageFactory())
    sign(doctor, record)
    return record


@pytest.fixture
def own_account(patient) -> PatientAccount:
    return patient_account_create(patient=patient, wechat_openid="o-hostile-requests-01")


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def path_for(path: str, record: ScreeningRecord) -> str:
    values = {
        "record_id": record.pk,
        "patient_id": record.patient.patient_id,
        "analysis_id": record.images.first().analyses.first().pk,
        "review_id": record.reviews.first().pk,
        "report_id": 999_999,  # no report in this world: refused (404) before the body
        "image_id": record.images.first().pk,
    }
    return path.format(**values)


def rows() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (Patient, PatientAccount, ScreeningRecord, DoctorReview, Report)
    )


def error_shaped(response) -> bool:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return set(error) == {"code", "message", "fields"} and bool(error["message"])


def test_nested_json_bodies_on_every_operation(signed_record, admin_user, doctor, own_account):
    personas: dict[str, Callable[[str], APIClient]] = {
        "anonymous": lambda path: client_for(None),
        "staff": lambda path: client_for(
            doctor if ("review" in path or "approve-summary" in path) else admin_user
        ),
        "patient": lambda path: client_for(own_account.user),
    }
    before = rows()
    mishandled = []
    statuses: dict[int, int] = {}
    for path, method in JSON_BODY_OPERATIONS:
        url = path_for(path, signed_record)
        for persona, client in personas.items():
            for label, body in BODIES.items():
                response = getattr(client(path), method)(url, body, content_type="application/json")
                TALLY.nested_json_tried += 1
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                parsed = response.status_code == 400 and (
                    response.json()["error"]["code"] == "parse_error"
                )
                refused_first = response.status_code in (401, 403, 404)
                if (parsed or refused_first) and error_shaped(response):
                    TALLY.nested_json_handled += 1
                else:
                    mishandled.append(f"{method.upper()} {path} as {persona}: {label} → "
                                      f"{response.status_code} {response.content[:120]!r}")  # fmt: skip
    note(
        f"[hostile requests] {len(JSON_BODY_OPERATIONS)} JSON operations × "
        f"{len(personas)} callers × {len(BODIES)} nested bodies: statuses {dict(sorted(statuses.items()))}, "
        f"{len(mishandled)} mishandled"
    )
    assert mishandled == []
    assert rows() == before


def test_crafted_cursors_on_every_list(signed_record, admin_user, own_account):
    staff, patient = client_for(admin_user), client_for(own_account.user)
    mishandled = []
    for path in CURSOR_OPERATIONS:
        client = patient if path.startswith("/api/v1/me/") else staff
        for label, crafted in CURSORS.items():
            response = client.get(path_for(path, signed_record), {"cursor": crafted})
            TALLY.crafted_cursors_tried += 1
            if (
                response.status_code == 400
                and error_shaped(response)
                and response.json()["error"]["code"] == "invalid_cursor"
            ):
                TALLY.crafted_cursors_handled += 1
            else:
                mishandled.append(f"GET {path}: {label} → {response.status_code}")
    note(
        f"[hostile requests] {len(CURSOR_OPERATIONS)} lists × {len(CURSORS)} crafted cursors: "
        f"{len(mishandled)} mishandled"
    )
    assert mishandled == []
