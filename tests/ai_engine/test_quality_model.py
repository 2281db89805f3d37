"""A quality model (card role "quality") gates every diagnosis: upload → task → page and API."""

from pathlib import Path

import pytest
from django.urls import reverse

from ai_engine.models import Analysis, AnalysisStatus
from ai_engine.selectors import record_ai_result
from tests.ai_engine.inference.conftest import quality_card_dict, tiny_model


@pytest.fixture
def right_eye(shared_data) -> Path:
    return shared_data / "reference" / "odir_11_right.jpg"


@pytest.fixture
def quality_package(db, tmp_path_factory):
    """An active tiny quality model refusing at P(reject) >= the given threshold."""
    from ai_engine.inference.package import write_package
    from ai_engine.services import package_register

    def make(reject_threshold: float):
        folder = tmp_path_factory.mktemp("quality") / "tiny-quality"
        card = quality_card_dict(reject_threshold=reject_threshold)
        write_package(folder, tiny_model(card), card)
        return package_register(path=folder, activate=True)

    return make


def test_a_photo_the_quality_model_rejects_gets_no_diagnosis_on_page_and_api(
    active_package,
    quality_package,
    record,
    upload_photo,
    right_eye,
    client,
    technician,
    django_capture_on_commit_callbacks,
):
    gate = quality_package(reject_threshold=1e-6)  # any photo reaches it
    with django_capture_on_commit_callbacks(execute=True):
        image = upload_photo(record, "OD", right_eye)
    analysis = Analysis.objects.get(image=image)  # one analysis: the quality model has none
    assert analysis.package == active_package
    assert not Analysis.objects.filter(package=gate).exists()
    assert (analysis.status, analysis.quality_gradable) == (AnalysisStatus.UNGRADABLE, False)
    assert analysis.quality_reasons == ["quality_model"]  # the heuristic gate let it through
    assert analysis.findings.count() == 0
    verdict = analysis.result["quality"]["model"]
    assert (verdict["name"], verdict["rejected"]) == ("tiny-quality", True)
    assert verdict["p_reject"] >= 1e-6
    eye = record_ai_result(record=record, language="en")["eyes"]["OD"]
    assert (eye["findings"], eye["confidence"], eye["referable"]) == ([], None, False)
    assert eye["conclusion"] == "Image quality insufficient, please retake"
    client.force_login(technician)
    url = reverse("pages:screening-detail", args=[record.pk])
    html = client.get(url).content.decode()
    assert "Please retake this photo." in html
    assert "The image-quality model judges the photo ungradable" in html
    assert "tiny-quality" not in html  # the gate is not a finding
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "图像质量模型判定该照片不可判读" in client.get(url).content.decode()


def test_a_photo_the_quality_model_accepts_is_diagnosed_with_its_verdict_kept(
    active_package,
    quality_package,
    record,
    upload_photo,
    right_eye,
    django_capture_on_commit_callbacks,
):
    quality_package(reject_threshold=0.999999)  # no photo reaches it
    with django_capture_on_commit_callbacks(execute=True):
        image = upload_photo(record, "OD", right_eye)
    analysis = Analysis.objects.get(image=image)
    assert (analysis.status, analysis.quality_reasons) == (AnalysisStatus.DONE, [])
    assert analysis.findings.count() == 8
    verdict = analysis.result["quality"]["model"]
    assert verdict["rejected"] is False
    assert set(verdict["probabilities"]) == {"good", "usable", "reject"}
    assert abs(sum(verdict["probabilities"].values()) - 1.0) < 1e-4


def test_a_quality_model_that_cannot_load_fails_the_analysis_instead_of_skipping_the_gate(
    active_package,
    quality_package,
    record,
    upload_photo,
    right_eye,
    django_capture_on_commit_callbacks,
):
    gate = quality_package(reject_threshold=0.5)
    (Path(gate.path) / "model.safetensors").write_bytes(b"tampered")
    with django_capture_on_commit_callbacks(execute=True):
        image = upload_photo(record, "OD", right_eye)
    analysis = Analysis.objects.get(image=image)
    assert analysis.status == AnalysisStatus.FAILED
    assert "tiny-quality 0.1 (quality model)" in analysis.error
    assert analysis.findings.count() == 0
