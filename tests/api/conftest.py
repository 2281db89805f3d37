"""Fixtures for the REST API: clients per persona (JWT), patient accounts, a WeChat stand-in,
and a screening with photos, AI findings, a signed review and a final report."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from patients.services import patient_account_create
from reports.models import Report
from reports.services import report_generate
from tests.ai_results import make_analysed as analyse
from tests.factories import PatientFactory, ScreeningRecordFactory
from tests.reports.conftest import sign

OWN_OPENID = "o-own-patient-openid-0001"
OTHER_OPENID = "o-other-patient-openid-02"


@pytest.fixture(autouse=True)
def _quiet_hooks_and_fresh_throttles(settings):
    """No AI task, report task or webhook unless a test asks; throttles and lockouts reset."""
    settings.FUNDUS_ANALYSIS_TASK = ""
    settings.REVIEW_SIGNED_TASK = ""
    settings.REPORT_FINAL_TASK = ""
    settings.REPORT_WEBHOOK_URL = ""
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.WECHAT_APPID = "wx-test-app"
    settings.WECHAT_SECRET = "wechat-test-secret"
    settings.API_THROTTLE_RATES = {
        "login": "1000/minute",
        "wechat_bind": "1000/minute",
        "upload": "1000/minute",
    }
    cache.clear()
    yield
    cache.clear()


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def as_admin(admin_user):
    return bearer(admin_user)


@pytest.fixture
def as_doctor(doctor):
    return bearer(doctor)


@pytest.fixture
def as_tech(technician):
    return bearer(technician)


@pytest.fixture
def own_account(patient):
    return patient_account_create(patient=patient, wechat_openid=OWN_OPENID)


@pytest.fixture
def other_patient(db, technician):
    return PatientFactory(created_by=technician, name="另一位患者", phone="13900009999")


@pytest.fixture
def other_account(other_patient):
    return patient_account_create(patient=other_patient, wechat_openid=OTHER_OPENID)


@pytest.fixture
def as_patient(own_account):
    return bearer(own_account.user)


@pytest.fixture
def as_other_patient(other_account):
    return bearer(other_account.user)


@pytest.fixture
def package(db):
    from tests.factories import ModelPackageFactory
    from tests.reports.conftest import EVIDENCE

    return ModelPackageFactory(card={"evidence": EVIDENCE})


@pytest.fixture
def analysed_record(record, technician, photo_file, package):
    analyse(record, technician, photo_file, package)
    return record


@pytest.fixture
def signed_record(analysed_record, doctor):
    sign(doctor, analysed_record)
    analysed_record.refresh_from_db()
    return analysed_record


@pytest.fixture
def final_report(signed_record, doctor) -> Report:
    report = report_generate(record=signed_record, actor=doctor)
    assert report.status == "final"
    return report


@pytest.fixture
def draft_report(patient, technician, doctor, photo_file, package) -> Report:
    """A second screening of the same patient, analysed but not signed: its report is a draft."""
    record = ScreeningRecordFactory(patient=patient, operator=technician)
    analyse(record, technician, photo_file, package)
    report = report_generate(record=record, actor=doctor)
    assert report.status == "draft"
    return report


@pytest.fixture
def other_record(other_patient, technician):
    return ScreeningRecordFactory(patient=other_patient, operator=technician)
