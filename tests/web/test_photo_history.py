"""The screening page per eye: the photo the report uses, retakes as history, "replace this photo"
for technicians, the doctor's choice, a findings table that follows the model's decision rule,
and status labels that follow the photos."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from core.models import AuditEvent
from screening.models import FundusImage, RecordStatus, ScreeningRecord
from tests.ai_results import make_retaken, multiclass_package


@pytest.fixture
def package(db):
    return multiclass_package()


@pytest.fixture
def retaken_record(record, technician, photo_file, package):
    return make_retaken(record, technician, photo_file, package)


def page(client, record) -> str:
    response = client.get(reverse("pages:screening-detail", args=[record.pk]))
    assert response.status_code == 200
    return response.content.decode()


def article(html: str, image: FundusImage) -> str:
    return re.search(rf'<article[^>]*id="image-{image.pk}".*?</article>', html, re.S).group(0)


def test_a_multiclass_table_shows_the_argmax_rule_and_no_threshold(client, doctor, retaken_record):
    client.force_login(doctor)
    html = page(client, retaken_record)
    od = article(html, retaken_record.images.get(eye="OD"))

    assert "Decision rule: the most probable label is the result (no thresholds)." in od
    assert "Threshold" not in od and "0.34" not in od and "0.28" not in od
    rows = [
        re.sub(r"<[^>]+>|\s+", " ", row).split() for row in re.findall(r"<tr>.*?</tr>", od, re.S)
    ]
    assert rows == [
        ["Finding", "Probability", "Result", "Areas"],
        ["Normal", "fundus", "0.45", "no", "abnormality", "–"],
        ["Glaucoma", "0.41", "negative", "optic", "disc"],
        ["Cataract", "0.14", "negative", "–"],
    ]
    assert "pill-positive" not in od
    assert "OD:" not in html.split('class="triage"')[1].split("</div>")[0]  # no OD reason


def test_the_page_uses_the_gradable_photo_and_keeps_the_retake_as_history(
    client, doctor, retaken_record
):
    client.force_login(doctor)
    html = page(client, retaken_record)
    good = article(html, retaken_record.good_os)
    noise = article(html, retaken_record.noise_os)

    assert "Used for the report" in good
    assert "Not used for the report" in noise
    assert html.index(f'id="image-{retaken_record.good_os.pk}"') < html.index(
        '<details class="photo-history"><summary>1 other photo of this eye (history)'
    )
    assert "Please retake this photo." not in html
    assert "please retake it" not in html  # the AI state follows the eye's photo
    assert "photo not gradable" not in html  # nor does the triage ask for a retake


def test_a_technician_replaces_a_photo_and_the_old_one_stays_as_history(
    client, technician, retaken_record, photo_file
):
    client.force_login(technician)
    noise = retaken_record.noise_os
    response = client.post(
        reverse("screening:image-replace", args=[noise.pk]), {"file": photo_file(seed=9)}
    )

    new = FundusImage.objects.latest("pk")
    assert response.status_code == 302
    assert response["Location"].endswith(f"#image-{new.pk}")
    noise.refresh_from_db()
    assert (noise.superseded_by_id, new.eye, new.record_id) == (new.pk, "OS", retaken_record.pk)
    assert list(
        AuditEvent.objects.filter(object_type="screening.fundusimage")
        .order_by("pk")
        .values_list("action", "object_id", "changes__superseded_by")
    )[-2:] == [("create", str(new.pk), None), ("update", str(noise.pk), [None, new.pk])]
    retaken_record.refresh_from_db()
    assert retaken_record.status == RecordStatus.IMAGES_UPLOADED  # a new photo awaits the AI
    html = page(client, retaken_record)
    assert f"Replaced by photo {new.pk}" in article(html, noise)
    assert f'action="{reverse("screening:image-replace", args=[noise.pk])}"' not in html


def test_a_replaced_photo_cannot_be_replaced_again(client, technician, retaken_record, photo_file):
    client.force_login(technician)
    noise = retaken_record.noise_os
    client.post(reverse("screening:image-replace", args=[noise.pk]), {"file": photo_file(seed=9)})
    count = FundusImage.objects.count()

    response = client.post(
        reverse("screening:image-replace", args=[noise.pk]),
        {"file": photo_file(seed=10)},
        follow=True,
    )

    assert FundusImage.objects.count() == count
    assert f"Photo {noise.pk} was already replaced by photo" in response.content.decode()


def test_a_doctor_may_not_replace_photos(client, doctor, retaken_record, photo_file):
    client.force_login(doctor)
    noise = retaken_record.noise_os
    response = client.post(
        reverse("screening:image-replace", args=[noise.pk]), {"file": photo_file(seed=9)}
    )
    assert response.status_code == 403
    assert FundusImage.objects.count() == 3
    noise.refresh_from_db()
    assert noise.superseded_by_id is None


def test_the_doctor_chooses_the_report_photo_and_a_technician_may_not(
    client, doctor, technician, retaken_record
):
    noise = retaken_record.noise_os
    url = reverse("screening:image-choose", args=[noise.pk])
    client.force_login(technician)
    assert client.post(url).status_code == 403
    assert not FundusImage.objects.filter(chosen_for_report=True).exists()

    client.force_login(doctor)
    response = client.post(url)

    assert response.status_code == 302
    noise.refresh_from_db()
    assert noise.chosen_for_report is True
    html = page(client, retaken_record)
    assert "chosen by the doctor" in article(html, noise)
    assert "Please retake this photo." in article(html, noise)  # the chosen photo is ungradable


def test_the_status_endpoint_carries_the_record_status_for_the_pills(
    client, doctor, retaken_record
):
    client.force_login(doctor)
    html = page(client, retaken_record)
    assert 'data-record-status="analysed"' in html

    ScreeningRecord.objects.filter(pk=retaken_record.pk).update(status=RecordStatus.REVIEWED)
    data = client.get(reverse("ai_engine:record-status", args=[retaken_record.pk])).json()

    assert data["record"]["status"] == "reviewed"
    assert data["record"]["status_label"] == "Reviewed"
    assert (data["state"], data["awaiting_report"]) == ("done", True)
    assert data["text"] == "AI analysis finished; the doctor has signed the review."


def test_a_multiclass_model_card_shows_its_rule_not_thresholds(client, doctor, package):
    client.force_login(doctor)
    html = client.get(reverse("ai_engine:model-card", args=[package.pk])).content.decode()

    assert "Decision rule: the most probable label is the result (no thresholds)." in html
    assert "Threshold" not in html and "0.34" not in html


def test_the_photo_history_speaks_chinese(client, doctor, retaken_record):
    client.force_login(doctor)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = page(client, retaken_record)

    assert "用于报告" in html and "未用于报告" in html
    assert "该眼其他照片 1 张（历史）" in html
    assert "决策规则：概率最高的类别即为结果（不使用阈值）。" in html
    assert "未见异常" in html and ">阈值<" not in html
