"""A shadow package's findings are stored but reach no surface: the screening page and its
status poll, the PDF's facts, the staff API (analyses, AI result, heatmaps, re-run), the
mini-program's `me` API and the triage."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from ai_engine.models import Analysis, Finding, PackageState, RecordTriage
from ai_engine.services import triage_update
from reports.facts import report_inputs
from tests.ai_results import add_analysis
from tests.factories import ModelPackageFactory
from tests.reports.conftest import sign

SHADOW_CARD = {
    "labels": [
        {
            "code": "G",
            "zh": "影子青光眼",
            "en": "ShadowGlaucoma",
            "threshold": 0.5,
            "referable": True,
        },
        {"code": "N", "zh": "正常", "en": "Normal", "threshold": 0.5, "normal": True},
    ],
    "evidence": "shadow candidate",
}
SHADOW_FINDINGS = [
    ("G", "影子青光眼", "ShadowGlaucoma", 0.97, 0.5, ["optic_disc"]),
    ("N", "正常", "Normal", 0.03, 0.5, []),
]
MARKERS = ("影子青光眼", "ShadowGlaucoma", "odir-shadow")


@pytest.fixture
def shadowed(analysed_record):
    """The analysed record with a shadow package's urgent-looking glaucoma finding per photo."""
    package = ModelPackageFactory(
        name="odir-shadow", version="9.0", state=PackageState.SHADOW, card=SHADOW_CARD
    )
    for image in analysed_record.images.all():
        analysis = add_analysis(image, package, findings=SHADOW_FINDINGS)
        Analysis.objects.filter(pk=analysis.pk).update(shadow=True)
    return analysed_record


def shadow_analysis() -> Analysis:
    return Analysis.objects.filter(shadow=True).first()


def assert_invisible(text: str) -> None:
    for marker in MARKERS:
        assert marker not in text


def test_the_shadow_runs_exist_for_the_statistics(shadowed):
    assert Analysis.objects.filter(shadow=True).count() == 2
    assert Finding.objects.filter(analysis__shadow=True, positive=True).count() == 2


def test_the_staff_api_shows_no_shadow_analysis(as_doctor, shadowed):
    analyses = as_doctor.get(reverse("api-v1:record-analyses", args=[shadowed.pk]))
    result = as_doctor.get(reverse("api-v1:record-ai-result", args=[shadowed.pk]))

    assert analyses.status_code == result.status_code == 200
    assert [a["model_name"] for a in analyses.json()] == ["odir-demo", "odir-demo"]
    assert_invisible(analyses.content.decode())
    assert_invisible(result.content.decode())
    assert result.json()["eyes"]["OD"]["conclusion"] == "Diabetic retinopathy"


def test_a_shadow_analysis_and_its_heatmap_are_not_found(as_doctor, shadowed):
    analysis = shadow_analysis()
    finding = analysis.findings.get(label_code="G")

    detail = as_doctor.get(reverse("api-v1:analysis-detail", args=[analysis.pk]))
    heatmap = as_doctor.get(reverse("api-v1:finding-heatmap", args=[finding.pk]))
    rerun = as_doctor.post(reverse("api-v1:analysis-rerun", args=[analysis.pk]))

    assert (detail.status_code, heatmap.status_code, rerun.status_code) == (404, 404, 404)
    assert Analysis.objects.filter(shadow=True).count() == 2  # no re-run was queued


def test_the_me_api_shows_no_shadow_finding(as_patient, shadowed, doctor):
    sign(doctor, shadowed)

    body = as_patient.get(
        reverse("api-v1:me-record-detail", args=[shadowed.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    assert body.json()["ai_result"]["eyes"]["OD"]["conclusion"] == "糖尿病视网膜病变"
    assert_invisible(body.content.decode())


def test_the_screening_page_and_its_status_poll_show_no_shadow_finding(client, doctor, shadowed):
    client.force_login(doctor)

    page = client.get(reverse("pages:screening-detail", args=[shadowed.pk]))
    status = client.get(reverse("ai_engine:record-status", args=[shadowed.pk]))

    assert page.status_code == status.status_code == 200
    assert "Diabetic retinopathy" in page.content.decode()
    assert_invisible(page.content.decode())
    assert_invisible(status.content.decode())


def test_the_report_facts_hold_no_shadow_finding(shadowed, doctor):
    sign(doctor, shadowed)

    facts = report_inputs(record=shadowed).facts

    assert_invisible(json.dumps(facts, ensure_ascii=False))
    assert [f["model_name"] for f in facts["eyes"]["OD"]["ai_findings"]] == ["odir-demo"] * 2


def test_the_triage_ignores_shadow_findings(analysed_record):
    RecordTriage.objects.filter(record=analysed_record).delete()
    before = triage_update(record=analysed_record)
    before_view = (before.level, before.reasons)
    package = ModelPackageFactory(
        name="odir-shadow", version="9.0", state=PackageState.SHADOW, card=SHADOW_CARD
    )
    for image in analysed_record.images.all():
        Analysis.objects.filter(
            pk=add_analysis(image, package, findings=SHADOW_FINDINGS).pk
        ).update(shadow=True)

    after = triage_update(record=analysed_record)

    assert (after.level, after.reasons) == before_view
    assert_invisible(json.dumps(after.reasons, ensure_ascii=False))
