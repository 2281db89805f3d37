"""AI results through the API: analyses with model identity and evidence, re-runs, the
per-record summary in the mini-program's shape, and the worklist."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ai_engine.models import Analysis, AnalysisStatus
from core.models import AuditEvent
from screening.models import RecordStatus, ScreeningRecord
from tests.api.conftest import analyse
from tests.factories import PatientFactory, ScreeningRecordFactory
from tests.reports.conftest import EVIDENCE


def test_analyses_carry_model_version_demonstration_flag_and_evidence(
    as_doctor, doctor, analysed_record
):
    response = as_doctor.get(reverse("api-v1:record-analyses", args=[analysed_record.pk]))

    assert response.status_code == 200
    od, os_ = response.json()
    assert (od["eye"], od["model_name"], od["model_version"], od["demonstration"]) == (
        "OD",
        "odir-demo",
        "1.2.0",
        True,
    )
    assert od["evidence"] == EVIDENCE
    assert (od["status"], od["quality_score"], od["quality_gradable"]) == ("done", 0.86, True)
    assert [(f["label_code"], f["positive"], f["abnormal_areas"]) for f in od["findings"]] == [
        ("D", True, ["黄斑区 macula"]),
        ("N", False, []),
    ]
    assert od["findings"][0]["has_heatmap"] is True
    assert os_["eye"] == "OS"
    assert AuditEvent.objects.get(action="view").actor == doctor


def test_an_analysis_by_id(as_tech, analysed_record):
    analysis = Analysis.objects.filter(image__eye="OS").get()
    body = as_tech.get(reverse("api-v1:analysis-detail", args=[analysis.pk])).json()
    assert (body["id"], body["eye"], body["findings"][0]["label_code"]) == (analysis.pk, "OS", "N")


def test_staff_rerun_an_analysis(
    as_tech, technician, analysed_record, settings, django_capture_on_commit_callbacks
):
    analysis = Analysis.objects.filter(image__eye="OD").get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = as_tech.post(reverse("api-v1:analysis-rerun", args=[analysis.pk]))

    assert response.status_code == 201
    body = response.json()
    assert (body["run"], body["status"], body["findings"]) == (2, "queued", [])
    assert Analysis.objects.get(pk=body["id"]).requested_by == technician
    assert len(callbacks) == 1


def test_a_running_analysis_cannot_be_rerun(as_doctor, analysed_record):
    analysis = Analysis.objects.filter(image__eye="OD").get()
    Analysis.objects.filter(pk=analysis.pk).update(status=AnalysisStatus.RUNNING)
    response = as_doctor.post(reverse("api-v1:analysis-rerun", args=[analysis.pk]))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_finished"
    assert Analysis.objects.count() == 2


def test_the_ai_result_in_the_mini_programs_shape_in_both_languages(as_doctor, analysed_record):
    url = reverse("api-v1:record-ai-result", args=[analysed_record.pk])

    english = as_doctor.get(url).json()
    chinese = as_doctor.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").json()

    assert english["language"] == "en"
    assert english["pending"] is False
    od = english["eyes"]["OD"]
    assert (od["conclusion"], od["confidence"], od["referable"]) == (
        "Diabetic retinopathy",
        0.83,
        False,
    )
    assert od["abnormal_areas"] == ["黄斑区 macula"]
    assert od["models"] == [
        {"name": "odir-demo", "version": "1.2.0", "demonstration": True, "evidence": EVIDENCE}
    ]
    assert english["eyes"]["OS"]["conclusion"] == "Normal"
    assert chinese["language"] == "zh"
    assert chinese["eyes"]["OD"]["conclusion"] == "糖尿病视网膜病变"
    # "N" means normal even where a card does not flag it: never listed as a finding
    assert chinese["combined"]["conclusion"] == "右眼：糖尿病视网膜病变"


def test_the_worklist_orders_by_triage_priority_then_age_with_reasons(
    as_doctor, technician, photo_file, package
):
    patients = PatientFactory.create_batch(4)
    records = [ScreeningRecordFactory(patient=p, operator=technician) for p in patients]
    analyse(records[0], technician, photo_file, package, priority=1, level="routine")
    analyse(records[1], technician, photo_file, package, priority=3, level="urgent")
    analyse(records[2], technician, photo_file, package, priority=1, level="routine")
    analyse(records[3], technician, photo_file, package, priority=3, level="urgent")
    waiting = ScreeningRecordFactory(operator=technician)  # draft: not in the worklist
    ScreeningRecord.objects.filter(pk=waiting.pk).update(status=RecordStatus.DRAFT)

    response = as_doctor.get(reverse("api-v1:worklist"))
    chinese = as_doctor.get(reverse("api-v1:worklist"), HTTP_ACCEPT_LANGUAGE="zh-hans").json()

    results = response.json()["results"]
    assert [r["id"] for r in results] == [
        records[1].pk,
        records[3].pk,
        records[0].pk,
        records[2].pk,
    ]
    assert results[0]["triage"] == {
        "level": "urgent",
        "level_label": "Urgent",
        "priority": 3,
        "reasons": [
            {
                "code": "referable_finding",
                "eye": "OD",
                "text": "OD: referable finding: Diabetic retinopathy (p=0.83)",
            }
        ],
        "updated_at": results[0]["triage"]["updated_at"],
    }
    assert "糖尿病视网膜病变" in chinese["results"][0]["triage"]["reasons"][0]["text"]


def test_the_worklist_pages_with_constant_queries(as_doctor, technician, photo_file, package):
    for priority in (1, 2, 3, 2, 1):
        record = ScreeningRecordFactory(operator=technician)
        analyse(record, technician, photo_file, package, priority=priority)

    def page(params):
        with CaptureQueriesContext(connection) as queries:
            body = as_doctor.get(reverse("api-v1:worklist"), params).json()
        return body, len(queries)

    first, first_queries = page({"page_size": 2})
    from tests.api.test_patients import cursor_of

    second, second_queries = page({"page_size": 2, "cursor": cursor_of(first["next"])})
    third, _ = page({"page_size": 2, "cursor": cursor_of(second["next"])})
    everything, all_queries = page({"page_size": 50})

    ids = [r["id"] for r in first["results"] + second["results"] + third["results"]]
    assert ids == [r["id"] for r in everything["results"]]
    assert [r["triage"]["priority"] for r in everything["results"]] == [3, 2, 2, 1, 1]
    # user, 2× permissions, page (patient and triage joined), audit insert
    assert first_queries == second_queries == all_queries == 5


def test_the_ai_result_uses_each_eyes_gradable_photo_and_the_argmax_rule(
    as_doctor, record, technician, photo_file
):
    from tests.ai_results import make_retaken, multiclass_package

    make_retaken(record, technician, photo_file, multiclass_package())

    result = as_doctor.get(reverse("api-v1:record-ai-result", args=[record.pk])).json()

    od, os_ = result["eyes"]["OD"], result["eyes"]["OS"]
    assert (od["conclusion"], od["confidence"], od["abnormal_codes"]) == ("Normal fundus", 0.45, [])
    assert [(f["code"], f["outcome"], f["threshold"]) for f in od["findings"]] == [
        ("N", "normal", None),
        ("G", "negative", None),
        ("C", "negative", None),
    ]
    assert (os_["conclusion"], os_["gradable"], os_["photos"], os_["quality_reasons"]) == (
        "Glaucoma",
        True,
        1,
        [],
    )
    assert result["combined"]["conclusion"] == "Left eye: Glaucoma"
    assert result["combined"]["ungradable_eyes"] == []


def test_analyses_show_a_multiclass_result_by_its_rule(as_doctor, record, technician, photo_file):
    from tests.ai_results import make_retaken, multiclass_package

    make_retaken(record, technician, photo_file, multiclass_package())

    analyses = as_doctor.get(reverse("api-v1:record-analyses", args=[record.pk])).json()

    od = next(a for a in analyses if a["eye"] == "OD")
    assert [
        (f["label_code"], f["threshold"], f["decision"], f["positive"], f["outcome"])
        for f in od["findings"]
    ] == [
        ("N", None, "argmax", True, "normal"),
        ("G", None, "argmax", False, "negative"),
        ("C", None, "argmax", False, "negative"),
    ]


def test_the_ai_result_carries_each_eyes_dr_grade_referable_and_oedema(
    as_doctor, record, technician, photo_file
):
    from tests.ai_results import make_diabetic

    # OD: argmax R3 with oedema; OS: argmax R1 but P(>=R2) 0.35 reaches the card's 0.30
    make_diabetic(
        record,
        technician,
        photo_file,
        od={"dr": (0.05, 0.05, 0.2, 0.55, 0.15), "dme": 0.62},
        os_={"dr": (0.2, 0.45, 0.25, 0.07, 0.03), "dme": 0.1},
    )
    url = reverse("api-v1:record-ai-result", args=[record.pk])
    english = as_doctor.get(url).json()
    od, os_ = english["eyes"]["OD"], english["eyes"]["OS"]
    assert {
        k: od[k] for k in ("dr_grade", "dr_grade_text", "referable", "dme", "vision_threatening")
    } == {
        "dr_grade": 3,
        "dr_grade_text": "Severe non-proliferative diabetic retinopathy (R3)",
        "referable": True,
        "dme": True,
        "vision_threatening": True,
    }
    assert (od["p_referable"], od["p_dme"], od["dr_decision"]) == (0.9, 0.62, "referable_threshold")
    assert (od["conclusion"], od["confidence"]) == (
        "Diabetic macular oedema, Severe non-proliferative diabetic retinopathy",
        0.62,
    )
    assert od["abnormal_areas"] == ["macula"]
    assert (os_["dr_grade"], os_["referable"], os_["dme"], os_["vision_threatening"]) == (
        1,
        True,
        False,
        False,
    )
    assert os_["p_referable"] == 0.35 and os_["p_dme"] == 0.1
    assert english["combined"]["vision_threatening"] is True
    chinese = as_doctor.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert chinese["eyes"]["OS"]["dr_grade_text"] == "轻度非增殖期糖尿病视网膜病变 (R1)"


def test_an_eye_without_a_dr_reading_has_null_dr_fields(as_doctor, analysed_record):
    od = as_doctor.get(reverse("api-v1:record-ai-result", args=[analysed_record.pk])).json()[
        "eyes"
    ]["OD"]
    assert (od["dr_grade"], od["dr_grade_text"], od["p_referable"], od["dme"], od["p_dme"]) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert od["vision_threatening"] is False


def test_the_schema_documents_the_dr_fields_of_the_ai_result(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    eye = schema["components"]["schemas"]["EyeSummary"]["properties"]
    for field in ("dr_grade", "dr_grade_text", "p_referable", "dme", "p_dme", "vision_threatening"):
        assert field in eye, field
    assert "中度非增殖期糖尿病视网膜病变 (R2)" in eye["dr_grade_text"]["description"]
