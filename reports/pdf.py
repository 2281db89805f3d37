"""Rendering a report to PDF with WeasyPrint, fetching nothing but the report's own media.

Photos and heatmaps are downscaled here (≤ 1200 px JPEG) and embedded as `data:` URIs; the
URL fetcher serves `data:` URIs and the explicitly allowed files of this report, and refuses
everything else (other files, http(s), ftp…) without following any redirect.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import mimetypes
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import segno
import weasyprint
from django.conf import settings
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from PIL import Image, ImageFile, ImageOps
from weasyprint.urls import URLFetcher, URLFetcherResponse

from ai_engine.wording import RESEARCH_ONLY, area_text, dr_rule_words, quality_reason_text
from core.branding import Letterhead, letterhead
from core.profiles import clinic_va_notation
from reports.facts import ReportInputs
from reports.models import Report
from screening.thumbnails import to_display_rgb

logger = logging.getLogger(__name__)

# WeasyPrint's import sets this process-wide Pillow flag to True, which would let truncated
# photos through the upload validator (screening.uploads refuses to run with it). Everything
# WeasyPrint decodes here is a JPEG we have just encoded, so the strict default is safe.
ImageFile.LOAD_TRUNCATED_IMAGES = False

MAX_IMAGE_SIDE = 1200
JPEG_QUALITY = 80
# Safety marks are always bilingual, whatever the report's language or catalogue state.
DRAFT_WATERMARK = "草稿 / DRAFT — not reviewed"
DEMONSTRATION_WARNING = "演示模型——不可用于诊断 / demonstration model — not for diagnosis"
SUMMARY_MARK_APPROVED = "AI 起草、医生审核 / AI-drafted, doctor-approved"
SUMMARY_MARK_UNAPPROVED = "AI 起草，医生尚未审核 / AI-drafted, not yet approved by the doctor"
SUMMARY_MARK_TEMPLATE = "模板生成 / template"
SUMMARY_MARK_TEMPLATE_APPROVED = "模板生成、医生审核 / template, doctor-approved"


class RefusedURL(ValueError):
    """A resource the report may not load."""


class ReportURLFetcher(URLFetcher):
    """Serves `data:` URIs and the allowed files only; never the network, never redirects."""

    def __init__(self, *, allowed_files: Iterable[str | Path] = ()) -> None:
        super().__init__(timeout=1, allowed_protocols=("data", "file"), allow_redirects=False)
        self.allowed_files = {Path(p).resolve() for p in allowed_files}
        self.refused: list[str] = []

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = Path(url2pathname(urlsplit(url).path)).resolve()
            if path in self.allowed_files and path.is_file():
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(
                    url, path.read_bytes(), headers={"Content-Type": content_type}
                )
        self.refused.append(url)
        logger.warning("Report rendering refused to fetch %s", url[:200])
        raise RefusedURL(f"refused: {url[:200]}")


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    refused_urls: tuple[str, ...] = ()
    pages: int | None = None


def html_to_pdf(html: str, *, allowed_files: Iterable[str | Path] = ()) -> RenderedPdf:
    fetcher = ReportURLFetcher(allowed_files=allowed_files)
    document = weasyprint.HTML(string=html, url_fetcher=fetcher, base_url=None)
    # The images are JPEGs encoded above: optimise losslessly, do not re-encode them.
    content = document.write_pdf(optimize_images=True)
    return RenderedPdf(content=content, refused_urls=tuple(fetcher.refused))


def render_report_pdf(*, report: Report, inputs: ReportInputs) -> RenderedPdf:
    """The PDF of `report` (saved row: its ID and codes are printed), in its language."""
    with translation.override(report.language):
        html = render_to_string("reports/report.html", report_context(report=report, inputs=inputs))
    return html_to_pdf(html, allowed_files=_local_paths(inputs.media_names()))


def render_reports_pdf(items: Iterable[tuple[Report, ReportInputs]]) -> RenderedPdf:
    """Several reports as one PDF: each laid out on its own (its own header, footer and page
    numbers, starting on a new page), then their pages written as one document."""
    head = letterhead()
    allowed: list[Path] = []
    rendered = []
    fetcher = ReportURLFetcher()
    for report, inputs in items:
        with translation.override(report.language):
            html = render_to_string(
                "reports/report.html", report_context(report=report, inputs=inputs, head=head)
            )
        allowed += _local_paths(inputs.media_names())
        fetcher.allowed_files = {path.resolve() for path in allowed}
        rendered.append(weasyprint.HTML(string=html, url_fetcher=fetcher, base_url=None).render())
    if not rendered:
        raise ValueError("no reports to render")
    pages = [page for document in rendered for page in document.pages]
    content = rendered[0].copy(pages).write_pdf(optimize_images=True)
    return RenderedPdf(content=content, refused_urls=tuple(fetcher.refused), pages=len(pages))


def report_context(
    *, report: Report, inputs: ReportInputs, head: Letterhead | None = None
) -> dict[str, Any]:
    record = report.record
    patient = record.patient
    review = inputs.review
    facts = inputs.facts
    zh = report.language == "zh-hans"
    embedded = images_data_uris(inputs.media_names())
    eyes = []
    for eye, label in (("OD", _("Right eye (OD)")), ("OS", _("Left eye (OS)"))):
        values = facts["eyes"][eye]
        media = inputs.media[eye]
        eyes.append(
            {
                "code": eye,
                "label": label,
                "values": values,
                "photo": embedded.get(media.photo, ""),
                "heatmap": embedded.get(media.heatmap, ""),
                "models": _models(values["ai_findings"], zh=zh),
                "diabetic": _diabetic(values.get("diabetic"), zh=zh),
                "quality_reasons": [
                    quality_reason_text(code)
                    for code in (values.get("quality") or {}).get("reasons", [])
                ],
            }
        )
    demonstration = any(m["demonstration"] for eye in eyes for m in eye["models"])
    diabetic_models = list(
        {
            (m["name"], m["version"]): m
            for eye in eyes
            if eye["diabetic"]
            for m in eye["diabetic"]["models"]
        }.values()
    )
    # Each model's evidence once, though it read both eyes.
    models = list({(m["name"], m["version"]): m for eye in eyes for m in eye["models"]}.values())
    verify_url = verification_url(report)
    return {
        "report": report,
        "lang_attr": "zh-CN" if zh else "en",
        "clinic": _clinic(head or letterhead()),
        "patient": {
            "patient_id": patient.patient_id,
            "name": patient.name,
            "sex": patient.get_sex_display(),
            "age": facts["patient"]["age"],
            "phone": patient.masked_phone,
        },
        "record": record,
        "operator": _person(record.operator),
        "eyes": eyes,
        "va_notation": clinic_va_notation(),
        "any_corrected": any(eye["values"].get("corrected_visual_acuity") for eye in eyes),
        "any_pinhole": any(eye["values"].get("pinhole_visual_acuity") for eye in eyes),
        "models": models,
        "diabetic": any(eye["diabetic"] for eye in eyes),
        "diabetic_models": diabetic_models,
        "diabetic_demonstration": any(m["demonstration"] for m in diabetic_models),
        "research_only": RESEARCH_ONLY,
        "triage": _triage(facts.get("triage")),
        "review": review,
        "review_facts": facts.get("doctor_review"),
        "previous_visit": inputs.previous_visit,
        "doctor": _person(review.doctor) if review else "",
        "signature": signature_data_uri(report.signature_name, report.signature_sha256)
        if review
        else "",
        "summary_mark": _summary_mark(report),
        "demonstration": demonstration,
        "draft_watermark": DRAFT_WATERMARK,
        "demonstration_warning": DEMONSTRATION_WARNING,
        "verify_url": verify_url,
        "qr": segno.make(verify_url, error="m").svg_data_uri(scale=3, border=1),
        "generated_at": timezone.localtime(report.generated_at),
    }


def verification_url(report: Report) -> str:
    path = reverse("api-v1:report-verify", args=[report.verification_code])
    return f"{settings.REPORT_VERIFY_BASE_URL.rstrip('/')}{path}"


def image_data_uri(name: str, *, max_side: int = MAX_IMAGE_SIDE) -> str:
    """A stored image, downscaled to ≤ max_side px, as a JPEG data: URI ("" if unreadable)."""
    try:
        with default_storage.open(name, "rb") as stored, Image.open(stored) as image:
            image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale, fast
            if image.mode in ("RGB", "L"):
                # Shrink before anything else: every other step then works on ~1 MP, not 15.
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                small = to_display_rgb(ImageOps.exif_transpose(image))
            else:  # alpha, 16-bit, palette, CMYK: flatten to 8-bit RGB first
                small = to_display_rgb(ImageOps.exif_transpose(image))
                small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        logger.warning("Report image %s could not be embedded: %s", name, exc)
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def images_data_uris(names: Iterable[str]) -> dict[str, str]:
    """Several images at once: Pillow releases the GIL while decoding and resizing."""
    unique = list(dict.fromkeys(name for name in names if name))
    if len(unique) <= 1:
        return {name: image_data_uri(name) for name in unique}
    with ThreadPoolExecutor(max_workers=min(4, len(unique))) as pool:
        return dict(zip(unique, pool.map(image_data_uri, unique), strict=True))


def _clinic(head: Letterhead) -> dict[str, str]:
    logo = head.logo_png
    return {
        "name": head.name,
        "address": head.address,
        "phone": head.phone,
        "website": head.website,
        "logo": "data:image/png;base64," + base64.b64encode(logo).decode("ascii") if logo else "",
    }


def signature_data_uri(name: str, sha256: str) -> str:
    """The signature image a report recorded, if its stored bytes still match the recorded
    hash ("" otherwise: no signature is better than another one)."""
    if not name:
        return ""
    try:
        with default_storage.open(name, "rb") as stored:
            data = stored.read()
    except OSError as exc:
        logger.warning("Signature image %s could not be read: %s", name, exc)
        return ""
    if hashlib.sha256(data).hexdigest() != sha256:
        logger.warning("Signature image %s does not match its recorded SHA-256", name)
        return ""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _local_paths(names: Iterable[str]) -> list[Path]:
    paths = []
    for name in names:
        try:
            paths.append(Path(default_storage.path(name)))
        except NotImplementedError:  # remote storage (S3): nothing local to allow
            continue
    return paths


def _models(findings: list[dict[str, Any]], *, zh: bool) -> list[dict[str, Any]]:
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for finding in findings:
        key = (finding["model_name"], finding["model_version"])
        model = models.setdefault(
            key,
            {
                "name": finding["model_name"],
                "version": finding["model_version"],
                "demonstration": finding["demonstration"],
                "evidence": finding.get("evidence_zh" if zh else "evidence_en")
                or finding["evidence"],
                # argmax: the most probable label is the result and no threshold is shown
                "argmax": finding.get("decision") == "argmax",
                "findings": [],
            },
        )
        threshold = finding.get("threshold")
        model["findings"].append(
            {
                **finding,
                "label": finding["label_zh"] if zh else finding["label_en"],
                "other_label": finding["label_en"] if zh else finding["label_zh"],
                "areas": [area_text(code) for code in finding["abnormal_areas"]],
                "probability_pct": f"{finding['probability'] * 100:.1f}%",
                "threshold_pct": "" if threshold is None else f"{threshold * 100:.1f}%",
            }
        )
    return list(models.values())


def _diabetic(fact: dict[str, Any] | None, *, zh: bool) -> dict[str, Any] | None:
    """One eye's DR grade and macular oedema (``reports.facts._diabetic_fact``) in the report's
    language, with the rule the DR model used and the models that produced them."""
    if not fact:
        return None
    lang = "zh" if zh else "en"
    other = "en" if zh else "zh"
    dr, dme = fact.get("dr"), fact.get("dme")
    models = [
        {
            "name": part["model_name"],
            "version": part["model_version"],
            "demonstration": part["demonstration"],
            "evidence": part.get(f"evidence_{lang}", ""),
        }
        for part in (dr, dme)
        if part
    ]
    return {
        "referable": fact["referable"],
        "vision_threatening": fact["vision_threatening"],
        "models": models,
        "dr": None
        if dr is None
        else {
            "grade": dr["grade"],
            "text": dr[f"grade_text_{lang}"],
            "other_text": dr[f"grade_text_{other}"],
            "probability_pct": f"{dr['grade_probability'] * 100:.1f}%",
            "p_referable": f"{dr['p_referable']:.2f}",
            "referable_from": dr["referable_from"],
            "rule": dr_rule_words(
                grade=dr["grade"],
                referable_from=dr["referable_from"],
                p_referable=dr["p_referable"],
                threshold=dr["referable_threshold"],
                referable=dr["referable"],
            ),
        },
        "dme": None
        if dme is None
        else {
            "positive": dme["positive"],
            "text": dme[f"text_{lang}"],
            "probability_pct": f"{dme['probability'] * 100:.1f}%",
            "threshold_pct": f"{dme['threshold'] * 100:.1f}%",
        },
    }


def _triage(triage: dict[str, Any] | None) -> dict[str, Any] | None:
    if triage is None:
        return None
    from ai_engine.models import TriageLevel

    return {
        "level": triage["level"],
        "label": str(dict(TriageLevel.choices).get(triage["level"], triage["level"])),
        "reasons": [_triage_reason_text(reason) for reason in triage["reasons"]],
    }


def _triage_reason_text(reason: dict[str, Any]) -> str:
    try:
        from ai_engine.triage import triage_reason_text
    except ImportError:  # the engine's wording is not there: show the reason's code
        return _triage_reason_code(reason)
    try:
        return str(triage_reason_text(reason))
    except (KeyError, TypeError, ValueError):  # parameters the wording does not expect
        return _triage_reason_code(reason)


def _triage_reason_code(reason: dict[str, Any]) -> str:
    return " ".join(part for part in (reason.get("eye", ""), reason.get("code", "")) if part)


def _summary_mark(report: Report) -> str:
    approved = report.summary_approved_by_id is not None
    if report.summary_is_template:
        return SUMMARY_MARK_TEMPLATE_APPROVED if approved else SUMMARY_MARK_TEMPLATE
    return SUMMARY_MARK_APPROVED if approved else SUMMARY_MARK_UNAPPROVED


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
