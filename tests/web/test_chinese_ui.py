"""Every staff page, the admin and a report PDF in Chinese: no English-only text, no raw codes.

The pages are rendered as a clinic sees them after a day's work: a screening with AI results
(named heatmap zones, an ungradable retake), a signed review, a generated report, a refused
duplicate upload, an API list in the audit log. Only what a reader sees is checked: text and
the attributes read aloud or shown (title, placeholder, aria-label, alt), not markup.
"""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from ai_engine.models import AnalysisStatus, TriageLevel
from ai_engine.monitoring import STAGE_ORDER
from ai_engine.wording import ABNORMAL_AREAS, QUALITY_REASONS
from core.models import AuditEvent
from reports.models import ReportStatus
from reports.services import report_generate
from screening.models import ConclusionCode, Recommendation, RecordStatus
from screening.services import image_upload, review_save_draft, review_sign
from tests.conftest import REPO_ROOT
from tests.factories import ModelPackageFactory, UserFactory
from tests.web.conftest import add_analysis

DEMO_CARD = json.loads(
    (REPO_ROOT / "ai_engine" / "packages" / "ophai-demo-screening" / "model.json").read_text(
        encoding="utf-8"
    )
)
CATARACT = [
    ("C", "白内障", "Cataract", 0.62, 0.31, ["vascular_arcade", "macula"]),
    ("N", "正常眼底", "Normal fundus", 0.13, 0.28, []),
]

# Strings that once reached the Chinese UI in English.
ENGLISH_ONLY = (
    "This photo was already uploaded",
    "no LLM configured",
    "Summary:",
    "template",
    "Demonstration model:",
    "held-out",
    "Axes",
    "AXES",
    "Access attempts",
    "Access failures",
    "Access logs",
    "Token Blacklist",
    "Blacklisted Tokens",
    "Outstanding Tokens",
    "Django Q2",
    "patients)",
    "Intended use",
)
# The PDF's safety marks are bilingual on purpose (reports.pdf): "模板生成 / template".
BILINGUAL_MARKS = ("模板生成 / template", "demonstration model — not for diagnosis")


def raw_codes() -> set[str]:
    """Internal codes a reader must never see: zones, quality reasons, statuses, choices."""
    codes = set(ABNORMAL_AREAS) | set(QUALITY_REASONS)
    for choices in (
        RecordStatus,
        AnalysisStatus,
        ReportStatus,
        TriageLevel,
        ConclusionCode,
        Recommendation,
        AuditEvent.Action,
    ):
        codes |= set(choices.values)
    codes |= {"patients.patient", "screening.screeningrecord", "screening.fundusimage"}
    codes |= {"reports.report", "screening.doctorreview", "auth.user"}
    codes |= set(STAGE_ORDER)
    return codes


class VisibleText(HTMLParser):
    """The text a reader sees or hears: data outside script/style, plus shown attributes."""

    SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden += 1
        for name, value in attrs:
            if name in self.SHOWN_ATTRIBUTES and value:
                self.parts.append(value)
            if tag == "input" and name == "value" and ("type", "submit") in attrs and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return "\n".join(part.strip() for part in parser.parts if part.strip())


def problems(text: str) -> list[str]:
    for mark in BILINGUAL_MARKS:
        text = text.replace(mark, "")
    found = [f"English: {s!r}" for s in ENGLISH_ONLY if s in text]
    for code in sorted(raw_codes()):
        if re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w-])", text):
            found.append(f"raw code: {code!r}")
    return found


@pytest.fixture
def clinic_day(settings, db, technician, doctor, patient, record, photo_file):
    """A record analysed by the demonstration model (OS ungradable), signed and reported."""
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.FUNDUS_ANALYSIS_TASK = ""
    settings.REVIEW_SIGNED_TASK = ""
    settings.REPORT_FINAL_TASK = ""
    package = ModelPackageFactory(
        name=DEMO_CARD["name"], version=DEMO_CARD["version"], task="multiclass", card=DEMO_CARD
    )
    od = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=1))
    os_ = image_upload(actor=technician, record=record, eye="OS", uploaded_file=photo_file(seed=2))
    analysed = add_analysis(od, package, findings=CATARACT)
    # Timings as the engine stores them, for the operations page.
    type(analysed).objects.filter(pk=analysed.pk).update(
        device="cpu",
        finished_at=timezone.now(),
        timings={stage: 0.01 for stage in STAGE_ORDER},
    )
    add_analysis(os_, package, status=AnalysisStatus.UNGRADABLE, reasons=["no_fundus"])
    review = review_save_draft(
        doctor=doctor,
        record=record,
        conclusion_codes=["cataract"],
        conclusion_text="右眼晶状体混浊",
        recommendation="refer",
        follow_up_months=3,
    )
    review_sign(doctor=doctor, review=review)
    report = report_generate(record=record, actor=doctor, language="zh-hans")
    return {
        "record": record,
        "report": report,
        "package": package,
    }


def chinese_client(client, settings, user):
    settings.LANGUAGE_CODE = "zh-hans"
    client.cookies["django_language"] = "zh-hans"
    client.force_login(user)
    return client


def test_a_duplicate_upload_is_refused_in_chinese(client, settings, technician, record, photo_file):
    settings.FUNDUS_ANALYSIS_TASK = ""
    chinese_client(client, settings, technician)
    url = reverse("screening:image-upload", args=[record.pk])
    assert client.post(url, {"eye": "OD", "file": photo_file(seed=5)}).status_code == 201

    response = client.post(url, {"eye": "OS", "file": photo_file(seed=5)})

    assert response.status_code == 400
    image = record.images.get()
    assert response.json() == {
        "error": f"这张照片已上传到本次筛查（右眼 (OD)，照片 ID {image.pk}）。"
    }


def test_every_staff_page_is_chinese_without_raw_codes(client, settings, clinic_day, doctor):
    record = clinic_day["record"]
    patient = record.patient
    report = clinic_day["report"]
    # A mini-program list leaves "list (N patients)" in the audit log, seen in the admin.
    admin = UserFactory(username="admin2", role="administrator", is_superuser=True)
    chinese_client(client, settings, admin)
    assert client.get("/api/v1/patients/").status_code == 200
    pages = [
        "/",
        reverse("patients:list"),
        reverse("patients:create"),
        reverse("pages:patient-detail", args=[patient.patient_id]),
        reverse("screening:create", args=[patient.patient_id]),
        reverse("pages:screening-detail", args=[record.pk]),
        reverse("pages:screening-photos", args=[record.pk]),
        reverse("reports:detail", args=[report.pk]),
        reverse("statistics"),
        reverse("pages:operations"),
        reverse("admin:index"),
        reverse("admin:core_auditevent_changelist"),
        reverse(
            "admin:core_auditevent_change",
            args=[AuditEvent.objects.filter(changes__has_key="listed_patients").get().pk],
        ),
        reverse("admin:reports_report_change", args=[report.pk]),
        reverse("admin:ai_engine_analysis_changelist"),
        reverse("admin:ai_engine_modelpackage_changelist"),
    ]
    found = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        text = visible_text(response.content.decode())
        if problems(text):
            found[path] = problems(text)
    # The summary editor is a clinical act: a doctor's page, not an administrator's.
    client.force_login(doctor)
    summary = reverse("admin:reports_report_summary", args=[report.pk])
    response = client.get(summary)
    assert response.status_code == 200, summary
    if problems(visible_text(response.content.decode())):
        found[summary] = problems(visible_text(response.content.decode()))
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)


def test_the_chinese_report_pdf_has_no_english_only_text_or_raw_codes(clinic_day, tmp_path):
    report = clinic_day["report"]
    path = tmp_path / "report.pdf"
    with report.pdf.open("rb") as stored:
        path.write_bytes(stored.read())
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert problems(text) == []
    flat = "".join(text.split())
    assert "血管弓" in flat and "黄斑" in flat  # the zones, named
    assert "照片中未见眼底" in flat  # the quality reason, named
    assert "宏平均F1" in flat  # the model card's Chinese evidence line
