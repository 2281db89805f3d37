"""Every API operation as anonymous, administrator, a superuser who is not a doctor, doctor,
technician, the owning patient and another patient: the expected status for each, no leak of
the owner's data in any refusal or in another patient's answers, and refused writes change
nothing. A superuser holds every permission, never the doctor's role: clinical acts are 403."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from ai_engine.models import Analysis, Finding
from core.models import AuditEvent
from patients.models import Patient, PatientAccount
from reports.models import Report
from screening.models import DoctorReview, FundusImage, ScreeningRecord
from screening.services import review_save_draft
from tests.api.conftest import analyse, bearer
from tests.factories import ScreeningRecordFactory, UserFactory
from tests.screening import hostile_files as hf

PERSONAS = ("anon", "admin", "superuser", "doctor", "tech", "owner", "other")
STAFF_READ = {
    "anon": 401,
    "admin": 200,
    "superuser": 200,
    "doctor": 200,
    "tech": 200,
    "owner": 403,
    "other": 403,
}
ME_READ = {
    "anon": 401,
    "admin": 403,
    "superuser": 403,
    "doctor": 403,
    "tech": 403,
    "owner": 200,
    "other": 200,
}
ME_OWN_OBJECT = {**ME_READ, "other": 404}
# URL names outside the matrix, each tested on its own (tests/api/test_auth.py).
PUBLIC_SIGN_IN = {
    "auth-token",
    "auth-token-refresh",
    "auth-logout",
    "auth-wechat-login",
    "auth-wechat-bind",
}


def staff(admin: int, doctor: int, tech: int, superuser: int | None = None) -> dict[str, int]:
    """A superuser may do what an administrator may (and no clinical act) unless said."""
    return {
        "anon": 401,
        "admin": admin,
        "superuser": admin if superuser is None else superuser,
        "doctor": doctor,
        "tech": tech,
        "owner": 403,
        "other": 403,
    }


@dataclass
class World:
    patient: Patient
    signed: ScreeningRecord
    open: ScreeningRecord
    report: Report
    draft: DoctorReview
    analysis: Analysis
    image: FundusImage
    finding: Finding  # with a heatmap


@dataclass(frozen=True)
class Op:
    name: str
    method: str
    args: Any  # World -> list
    expected: dict[str, int]
    body: Any = None  # World -> dict
    multipart: bool = False
    query: str = ""


OPS = [
    Op("patients", "get", lambda w: [], STAFF_READ),
    Op(
        "patients",
        "post",
        lambda w: [],
        staff(201, 403, 201),
        lambda w: {"name": "新患者", "sex": "male", "date_of_birth": "1980-01-01"},
    ),
    Op("patient-detail", "get", lambda w: [w.patient.patient_id], STAFF_READ),
    Op(
        "patient-detail",
        "patch",
        lambda w: [w.patient.patient_id],
        staff(200, 403, 200),
        lambda w: {"notes": "changed"},
    ),
    Op("records", "get", lambda w: [], STAFF_READ),
    Op(
        "records",
        "post",
        lambda w: [],
        staff(201, 403, 201),
        lambda w: {"patient": w.patient.patient_id, "va_od": "0.5"},
    ),
    Op("record-detail", "get", lambda w: [w.signed.pk], STAFF_READ),
    Op(
        "record-detail",
        "patch",
        lambda w: [w.open.pk],
        staff(200, 403, 200),  # measurements are the technicians' (change_screeningrecord)
        lambda w: {"iop_od": "18", "notes": "复测眼压"},
    ),
    Op(
        "record-assign",
        "post",
        lambda w: [w.open.pk],
        staff(200, 200, 403),  # doctors and administrators choose who reads a screening
        lambda w: {"doctor": w.draft.doctor_id},
    ),
    Op("image-file", "get", lambda w: [w.image.pk], STAFF_READ),
    Op("image-file", "get", lambda w: [w.image.pk], STAFF_READ, query="?size=thumb"),
    Op(
        "record-images",
        "post",
        lambda w: [w.open.pk],
        staff(201, 403, 201),
        lambda w: {"eye": "OS", "file": SimpleUploadedFile(*hf.valid_png())},
        multipart=True,
    ),
    Op("record-analyses", "get", lambda w: [w.signed.pk], STAFF_READ),
    Op("record-ai-result", "get", lambda w: [w.signed.pk], STAFF_READ),
    Op("analysis-detail", "get", lambda w: [w.analysis.pk], STAFF_READ),
    Op("analysis-rerun", "post", lambda w: [w.analysis.pk], staff(201, 201, 201)),
    Op("finding-heatmap", "get", lambda w: [w.finding.pk], STAFF_READ),
    Op("worklist", "get", lambda w: [], STAFF_READ),
    Op("record-reviews", "get", lambda w: [w.signed.pk], STAFF_READ),
    Op(
        "record-reviews",
        "post",
        lambda w: [w.open.pk],
        staff(403, 200, 403),  # conclusions are the doctors' alone, superusers' neither
        lambda w: {
            "conclusion_codes": ["normal"],
            "recommendation": "routine",
            "revision": w.draft.revision,
        },
    ),
    Op(
        "record-reviews-amend",
        "post",
        lambda w: [w.signed.pk],
        staff(403, 201, 403),
        lambda w: {
            "conclusion_codes": ["dr_severe"],
            "recommendation": "urgent",
            "amendment_reason": "复核",
            "revision": w.signed.reviews.get().revision,
        },
    ),
    Op(
        "review-sign",
        "post",
        lambda w: [w.draft.pk],
        staff(403, 200, 403),
        lambda w: {"revision": w.draft.revision},
    ),
    Op("record-reports", "get", lambda w: [w.signed.pk], STAFF_READ),
    Op(
        "record-reports-generate",
        "post",
        lambda w: [w.signed.pk],
        staff(202, 202, 403),
        lambda w: {"language": "en"},
    ),
    Op("report-pdf", "get", lambda w: [w.report.pk], STAFF_READ),
    Op(
        "report-approve-summary",
        "post",
        lambda w: [w.report.pk],
        staff(403, 201, 403),
        lambda w: {"text": "医生审核后的说明。"},
    ),
    Op(
        "report-verify",
        "get",
        lambda w: [w.report.verification_code],
        dict.fromkeys(PERSONAS, 200),
    ),
    Op("me", "get", lambda w: [], ME_READ),
    Op("me-follow-up", "get", lambda w: [], ME_READ),
    Op("me-records", "get", lambda w: [], ME_READ),
    Op("me-record-detail", "get", lambda w: [w.signed.pk], ME_OWN_OBJECT),
    Op("me-reports", "get", lambda w: [], ME_READ),
    Op("me-report-pdf", "get", lambda w: [w.report.pk], ME_OWN_OBJECT),
]


@pytest.fixture
def world(
    patient, own_account, other_account, final_report, doctor, technician, photo_file, package
) -> World:
    open_record = ScreeningRecordFactory(patient=patient, operator=technician)
    analyse(open_record, technician, photo_file, package)
    draft = review_save_draft(
        doctor=doctor, record=open_record, conclusion_codes=["cataract"], recommendation="refer"
    )
    return World(
        patient=patient,
        signed=final_report.record,
        open=open_record,
        report=final_report,
        draft=draft,
        analysis=Analysis.objects.filter(image__record=open_record, image__eye="OD").get(),
        image=FundusImage.objects.get(record=final_report.record, eye="OD"),
        finding=Finding.objects.exclude(heatmap="").get(
            analysis__image__record=final_report.record, analysis__image__eye="OD"
        ),
    )


@pytest.fixture
def clients(admin_user, doctor, technician, own_account, other_account):
    from rest_framework.test import APIClient

    return {
        "anon": APIClient(),
        "admin": bearer(admin_user),
        "superuser": bearer(
            UserFactory(username="root", is_superuser=True, is_staff=True, role="administrator")
        ),
        "doctor": bearer(doctor),
        "tech": bearer(technician),
        "owner": bearer(own_account.user),
        "other": bearer(other_account.user),
    }


def snapshot() -> dict[str, Any]:
    return {
        "counts": {
            model.__name__: model.objects.count()
            for model in (
                Patient,
                PatientAccount,
                ScreeningRecord,
                FundusImage,
                Analysis,
                DoctorReview,
                Report,
            )
        },
        "patients": list(Patient.objects.order_by("pk").values()),
        "records": list(ScreeningRecord.objects.order_by("pk").values()),
        "reviews": list(DoctorReview.objects.order_by("pk").values()),
        "writes": AuditEvent.objects.exclude(action__in=["view", "download", "login"]).count(),
    }


def owner_secrets(world: World) -> list[str]:
    patient = world.patient
    return [patient.name, patient.phone, patient.patient_id, world.report.access_code]


@pytest.mark.parametrize("op", OPS, ids=[f"{op.method}-{op.name}{op.query}" for op in OPS])
def test_access(op: Op, world: World, clients, settings):
    """Each persona in turn, each request rolled back, so all seven start from the same state."""
    settings.API_THROTTLE_RATES = {"login": None, "wechat_bind": None, "upload": None}
    url = reverse(f"api-v1:{op.name}", args=op.args(world)) + op.query
    statuses = {}
    for persona in PERSONAS:
        with transaction.atomic():
            before = snapshot()
            response = getattr(clients[persona], op.method)(
                url,
                op.body(world) if op.body else None,
                format="multipart" if op.multipart else "json",
            )
            statuses[persona] = response.status_code
            content = (
                b"".join(response.streaming_content) if response.streaming else response.content
            )
            text = content.decode("utf-8", errors="replace")
            if response.status_code >= 400:
                assert snapshot() == before, persona  # a refused request changes nothing
                assert set(response.json()) == {"error"}, persona
            if response.status_code >= 400 or persona == "other":
                leaked = [secret for secret in owner_secrets(world) if secret in text]
                assert leaked == [], persona
            transaction.set_rollback(True)
    assert statuses == op.expected


def api_operations(patterns) -> set[tuple[str, str]]:
    """(URL name, method) for every handler of every view under the patterns."""
    operations = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            operations |= api_operations(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view = pattern.callback.view_class
            operations |= {
                (pattern.name, method)
                for method in view.http_method_names
                if method not in ("head", "options") and hasattr(view, method)
            }
    return operations


def test_the_matrix_covers_every_api_operation():
    api_resolver = get_resolver().namespace_dict["api-v1"][1]
    operations = {
        (name, method)
        for name, method in api_operations(api_resolver.url_patterns)
        if name not in PUBLIC_SIGN_IN
    }
    assert operations == {(op.name, op.method) for op in OPS}


def test_the_other_patient_sees_empty_lists(world, clients):
    records = clients["other"].get(reverse("api-v1:me-records")).json()
    reports = clients["other"].get(reverse("api-v1:me-reports")).json()
    assert (records["results"], reports["results"]) == ([], [])


def test_unknown_ids_are_404_for_patients_like_foreign_ones(world, clients):
    for name in ("me-record-detail", "me-report-pdf"):
        response = clients["owner"].get(reverse(f"api-v1:{name}", args=[999999]))
        assert response.status_code == 404
