"""Real PDFs, read back with pdftotext; the URL fetcher lets nothing but the report's media in."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from ai_engine.models import ModelPackage
from reports.pdf import DEMONSTRATION_WARNING, RefusedURL, ReportURLFetcher, html_to_pdf
from reports.services import report_approve_summary, report_generate
from screening.models import ScreeningRecord
from tests.ai_results import make_analysed
from tests.conftest import REPO_ROOT
from tests.factories import ModelPackageFactory
from tests.reports.conftest import EVIDENCE, pdf_text, sign


def read_pdf(report, tmp_path: Path) -> str:
    with report.pdf.open("rb") as stored:
        return pdf_text(stored.read(), tmp_path, f"{report.number}-v{report.version}.pdf")


def squash(text: str) -> str:
    """pdftotext -layout spreads table cells with spaces and wraps lines: compare without them."""
    return "".join(text.split())


def test_a_final_report_shows_the_patient_findings_model_and_conclusion(
    signed_record, doctor, tmp_path
):
    report = report_generate(record=signed_record, actor=doctor)
    text = read_pdf(report, tmp_path)
    flat = squash(text)
    patient = signed_record.patient

    assert report.status == "final"
    assert patient.patient_id in text
    assert patient.name in text  # Chinese characters render as text, not tofu
    assert "138****" in text and patient.phone not in text
    with report.pdf.open("rb") as stored:
        in_order = squash(page_text(stored.read(), tmp_path))
    assert "糖尿病视网膜病变" in in_order and "Diabeticretinopathy" in in_order
    assert "83.0%" in text and "50.0%" in text
    assert "odir-demo 1.2.0" in text
    assert squash(EVIDENCE) in flat
    assert "右眼黄斑区可见硬性渗出" in text  # the doctor's own words
    assert "doctor1" in text
    assert squash(DEMONSTRATION_WARNING) in flat
    assert report.number in text and report.verification_code in text
    assert re.findall(r"(\d) / 2\s*$", text, flags=re.MULTILINE) == ["1", "2"]  # every page
    assert "DRAFT" not in text and "草稿" not in text


def test_a_report_before_sign_off_is_a_watermarked_draft(analysed_record, doctor, tmp_path):
    report = report_generate(record=analysed_record, actor=doctor)
    text = read_pdf(report, tmp_path)
    assert report.status == "draft"
    assert report.review_version is None
    assert "草稿 / DRAFT — not reviewed" in text
    assert ScreeningRecord.objects.get(pk=analysed_record.pk).status == "analysed"


def test_no_demonstration_warning_for_a_validated_model(signed_record, doctor, tmp_path):
    ModelPackage.objects.update(demonstration=False)
    for image in signed_record.images.all():
        image.analyses.update(demonstration=False)
    text = read_pdf(report_generate(record=signed_record, actor=doctor), tmp_path)
    assert "演示模型" not in text and "demonstration model" not in text


def test_an_english_report(signed_record, doctor, tmp_path):
    report = report_generate(record=signed_record, actor=doctor, language="en")
    text = read_pdf(report, tmp_path)
    assert report.language == "en"
    assert "Fundus screening report" in text
    assert "Moderate non-proliferative diabetic retinopathy" in text
    assert "You had an eye (fundus) screening" in squash(text) or "You had an eye" in text


def test_text_from_notes_and_summary_is_escaped_and_nothing_is_fetched(
    signed_record, doctor, httpserver, caplog, tmp_path
):
    hostile = f'<img src="file:///etc/passwd"> <img src="{httpserver.url_for("/track.png")}">'
    ScreeningRecord.objects.filter(pk=signed_record.pk).update(notes=hostile)
    report = report_generate(record=signed_record, actor=doctor)
    caplog.set_level(logging.WARNING)

    approved = report_approve_summary(report=report, doctor=doctor, text=f"请复查。{hostile}")

    text = squash(read_pdf(approved, tmp_path))
    assert text.count(squash('<img src="file:///etc/passwd">')) == 2  # shown as text, twice
    assert "root:x:0:0" not in text
    assert httpserver.log == []
    assert "refused to fetch" not in caplog.text  # escaped: never even an <img> to refuse


def test_the_fetcher_refuses_files_outside_the_allow_list_and_the_network(httpserver, tmp_path):
    allowed = tmp_path / "allowed.png"
    Image.new("RGB", (4, 4), (200, 0, 0)).save(allowed)
    httpserver.expect_request("/secret").respond_with_data("secret")
    fetcher = ReportURLFetcher(allowed_files=[allowed])

    assert fetcher.fetch(allowed.as_uri()).read() == allowed.read_bytes()
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
    for url in (
        "file:///etc/passwd",
        (tmp_path / "allowed.png/../../../etc/passwd").as_uri(),
        httpserver.url_for("/secret"),
        "https://example.org/logo.png",
        "ftp://example.org/x",
    ):
        with pytest.raises(RefusedURL):
            fetcher.fetch(url)
    assert httpserver.log == []
    assert len(fetcher.refused) == 5


def test_rendering_html_with_hostile_references_fetches_nothing(httpserver, caplog):
    httpserver.expect_request("/x.png").respond_with_data(
        b"", status=302, headers={"Location": "file:///etc/passwd"}
    )
    html = f"""<html><head><link rel="stylesheet" href="{httpserver.url_for("/style.css")}"></head>
    <body><p>hello</p><img src="file:///etc/passwd"><img src="{httpserver.url_for("/x.png")}">
    <div style="background: url('file:///etc/shadow')"></div></body></html>"""

    rendered = html_to_pdf(html)

    assert rendered.content.startswith(b"%PDF")
    assert set(rendered.refused_urls) == {
        "file:///etc/passwd",
        httpserver.url_for("/x.png"),
        httpserver.url_for("/style.css"),
        "file:///etc/shadow",
    }
    assert httpserver.log == []
    assert "refused to fetch file:///etc/passwd" in caplog.text


def test_photos_are_downscaled_before_embedding(signed_record, doctor, tmp_path):
    # A camera-sized photo (stored directly; uploads of this size are tested in screening).
    image = signed_record.images.get(eye="OD")
    big = Image.new("RGB", (3000, 2000), (150, 60, 30))
    path = tmp_path / "big.jpg"
    big.save(path, quality=85)
    name = default_storage.save("fundus/test/big.jpg", ContentFile(path.read_bytes()))
    type(image).objects.filter(pk=image.pk).update(file=name, sanitized_file=name)

    report = report_generate(record=signed_record, actor=doctor)

    out = tmp_path / "images"
    out.mkdir()
    with report.pdf.open("rb") as stored:
        (tmp_path / "r.pdf").write_bytes(stored.read())
    listing = subprocess.run(
        ["pdfimages", "-list", str(tmp_path / "r.pdf")], capture_output=True, text=True, check=True
    ).stdout
    sizes = [(int(row.split()[3]), int(row.split()[4])) for row in listing.splitlines()[2:]]
    assert (1200, 800) in sizes
    assert max(max(w, h) for w, h in sizes) <= 1200


def test_a_page_as_png_for_a_human_look(signed_record, doctor, tmp_path):
    """Writes tmp_path/page-1.png: open it to check the layout and the Chinese glyphs."""
    report = report_generate(record=signed_record, actor=doctor)
    with report.pdf.open("rb") as stored:
        (tmp_path / "report.pdf").write_bytes(stored.read())
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "60",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            str(tmp_path / "report.pdf"),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    with Image.open(tmp_path / "page-1.png") as page:
        assert page.size == (497, 702)  # A4 at 60 dpi


def test_the_clinic_logo_and_details_are_in_the_header(signed_record, doctor, settings, tmp_path):
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (300, 100), (31, 93, 140, 255)).save(logo)
    settings.CLINIC_LOGO = str(logo)
    settings.CLINIC_NAME = "光明眼科诊所"
    settings.CLINIC_ADDRESS = "北京市朝阳区示例路 1 号"
    settings.CLINIC_PHONE = "010-12345678"

    report = report_generate(record=signed_record, actor=doctor)

    text = read_pdf(report, tmp_path)
    assert "光明眼科诊所" in text and "北京市朝阳区示例路 1 号" in text and "010-12345678" in text
    with report.pdf.open("rb") as stored:
        (tmp_path / "logo.pdf").write_bytes(stored.read())
    listing = subprocess.run(
        ["pdfimages", "-list", str(tmp_path / "logo.pdf")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert any(row.split()[3:5] == ["300", "100"] for row in listing.splitlines()[2:])


DEMO_CARD = json.loads(
    (REPO_ROOT / "ai_engine" / "packages" / "ophai-demo-screening" / "model.json").read_text(
        encoding="utf-8"
    )
)
# The bundled demonstration model's three classes, each eye with one positive finding.
CATARACT_OD = [
    ("C", "白内障", "Cataract", 0.62, 0.31, []),
    ("G", "青光眼", "Glaucoma", 0.25, 0.34, []),
    ("N", "正常眼底", "Normal fundus", 0.13, 0.28, []),
]
GLAUCOMA_OS = [
    ("G", "青光眼", "Glaucoma", 0.71, 0.34, ["视盘 optic disc"]),
    ("N", "正常眼底", "Normal fundus", 0.2, 0.28, []),
    ("C", "白内障", "Cataract", 0.09, 0.31, []),
]


def page_count(content: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(content)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    return int(re.search(r"^Pages:\s+(\d+)$", info.stdout, flags=re.MULTILINE).group(1))


def page_text(content: bytes, tmp_path: Path, page: int | None = None) -> str:
    """Text in reading order (not -layout, which interleaves the two eyes' columns)."""
    path = tmp_path / "pages.pdf"
    path.write_bytes(content)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(
        ["pdftotext", *pages, str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_standard_two_eye_report_is_two_pages_and_ends_with_signature_and_verification(
    record, technician, doctor, photo_file, language, tmp_path
):
    """Both eyes photographed and analysed by the bundled demonstration model, a positive finding
    with a heatmap in each, screening notes, a signed review: two pages, and the verification
    block stays with the doctor's signature on the last one."""
    package = ModelPackageFactory(
        name=DEMO_CARD["name"], version=DEMO_CARD["version"], task="multiclass", card=DEMO_CARD
    )
    ScreeningRecord.objects.filter(pk=record.pk).update(notes="2型糖尿病 12 年，近半年视物模糊")
    analysed = make_analysed(
        record, technician, photo_file, package, od=CATARACT_OD, os_=GLAUCOMA_OS
    )
    sign(
        doctor,
        analysed,
        conclusion_codes=["cataract", "glaucoma_suspect"],
        conclusion_text="右眼晶状体混浊，左眼视盘杯盘比增大",
    )

    report = report_generate(record=analysed, actor=doctor, language=language)

    with report.pdf.open("rb") as stored:
        content = stored.read()
    assert page_count(content, tmp_path) == 2
    last = squash(page_text(content, tmp_path, 2))
    assert report.verification_code in last
    assert "https://clinic.example.org/api/v1/reports/verify/" in last
    assert "doctor1" in last  # the signature


def test_the_pdf_has_a_per_eye_conclusion_table(analysed_record, doctor, tmp_path):
    sign(
        doctor,
        analysed_record,
        conclusion_codes_od=["dr_moderate"],
        conclusion_text_od="黄斑区硬性渗出",
        recommendation_od="refer",
        conclusion_codes_os=["normal"],
        recommendation_os="routine",
    )
    report = report_generate(record=analysed_record, actor=doctor)
    flat = squash(read_pdf(report, tmp_path))

    assert report.language == "zh-hans"
    table = flat[flat.index("眼别结论ICD-10处理建议") : flat.index("给患者的说明")]
    # pdftotext wraps the table's cells: each cell's text, in the order of its row.
    for cell in (
        "右眼(OD)中度非增殖期糖尿病视网膜病变E11.32型糖尿病伴有眼的并发症转诊至眼科医生",
        "黄斑区硬性渗出H36.0糖尿病性视网膜病变",
        "左眼(OS)未见异常Z01.0眼和视力检查（未见异常）12个月后常规筛查",
    ):
        assert cell in table
