"""One decision rule for every surface: a multiclass model's result is its most probable label,
shown without thresholds; a positive "normal" label is never a finding; triage counts each eye
once, from the photo its results come from."""

from __future__ import annotations

import pytest

from ai_engine.inference.results import Finding, decide, decision_rule
from ai_engine.models import AnalysisStatus, RecordTriage
from ai_engine.services import triage_update
from screening.services import image_upload
from tests.ai_results import MULTICLASS_NORMAL_WINS, add_analysis, multiclass_package
from tests.factories import ModelPackageFactory


def _findings(rows, *, stored_positive: bool) -> list[Finding]:
    return [
        Finding(
            code=code,
            zh=zh,
            en=en,
            probability=p,
            threshold=t,
            positive=stored_positive,
            referable=code != "N",
            normal=code == "N",
        )
        for code, zh, en, p, t, _areas in rows
    ]


def test_a_multiclass_result_is_its_argmax_and_shows_no_threshold():
    # Whatever the rows say (here: all positive), the rule decides.
    decided = decide("multiclass", _findings(MULTICLASS_NORMAL_WINS, stored_positive=True))

    assert decision_rule("multiclass") == "argmax"
    assert [(f.code, f.positive, f.outcome, f.shown_threshold) for f in decided] == [
        ("N", True, "normal", None),
        ("G", False, "negative", None),
        ("C", False, "negative", None),
    ]
    assert [f.abnormal for f in decided] == [False, False, False]
    assert decided[1].to_dict()["threshold"] is None
    assert decided[1].to_dict()["decision"] == "argmax"


def test_a_multilabel_result_follows_its_thresholds_and_normal_is_no_finding():
    decided = decide("multilabel", _findings(MULTICLASS_NORMAL_WINS, stored_positive=False))

    assert decision_rule("multilabel") == "threshold"
    assert [(f.code, f.positive, f.outcome, f.shown_threshold) for f in decided] == [
        ("N", True, "normal", 0.28),
        ("G", True, "abnormal", 0.34),
        ("C", False, "negative", 0.31),
    ]


@pytest.fixture
def package(db):
    return multiclass_package()


def test_triage_of_a_multiclass_normal_result_lists_no_finding(
    record, technician, photo_file, package
):
    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    add_analysis(image, package, findings=MULTICLASS_NORMAL_WINS)

    triage = triage_update(record=record)

    assert (triage.level, triage.reasons) == ("none", [])


def test_an_ungradable_eye_is_one_reason_and_a_good_retake_clears_it(
    record, technician, photo_file, package
):
    second = ModelPackageFactory(name="second-model", version="1.0", card={})
    noise = image_upload(
        actor=technician, record=record, eye="OS", uploaded_file=photo_file(seed=1)
    )
    add_analysis(noise, package, status=AnalysisStatus.UNGRADABLE, quality=0.0)
    add_analysis(noise, second, status=AnalysisStatus.UNGRADABLE, quality=0.0)

    triage = triage_update(record=record)
    assert [(r["code"], r["eye"]) for r in triage.reasons] == [("ungradable", "OS")]

    retake = image_upload(
        actor=technician, record=record, eye="OS", uploaded_file=photo_file(seed=2)
    )
    add_analysis(retake, package, findings=MULTICLASS_NORMAL_WINS)
    add_analysis(retake, second, findings=[])

    triage_update(record=record)
    assert RecordTriage.objects.get(record=record).reasons == []


def test_a_replaced_photo_takes_the_record_back_through_the_ai(
    record, technician, photo_file, package
):
    from ai_engine.selectors import record_ai_state, record_latest_analyses
    from ai_engine.services import record_finish_analysis, record_start_analysis
    from screening.services import image_replace
    from tests.ai_results import MULTICLASS_GLAUCOMA, make_retaken

    make_retaken(record, technician, photo_file, package)
    assert [(r["code"], r["eye"]) for r in record.triage.reasons] == [
        ("referable_finding", "OS")  # the gradable photo, not the newer noise photo
    ]
    new = image_replace(actor=technician, image=record.good_os, uploaded_file=photo_file(seed=7))
    record.refresh_from_db()
    assert record.status == "images_uploaded"

    record_start_analysis(record=record)
    add_analysis(new, package, findings=MULTICLASS_GLAUCOMA)
    record_finish_analysis(record=record)

    record.refresh_from_db()
    assert record.status == "analysed"
    state = record_ai_state(record=record, analyses=record_latest_analyses(record=record))
    assert (state["state"], state["finished"]) == ("done", True)
    assert [(r["code"], r["eye"]) for r in RecordTriage.objects.get(record=record).reasons] == [
        ("referable_finding", "OS")
    ]
