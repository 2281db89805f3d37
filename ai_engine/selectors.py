"""Reads of AI results for the UI, the API and reports."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

# results and summary import no torch: web processes read AI results without loading it
# (tests/ai_engine/test_web_imports.py).
from ai_engine.inference.results import (
    ZONE_NAMES,
    AbnormalArea,
    ImageAnalysis,
    Prediction,
    QualityResult,
)
from ai_engine.inference.results import Finding as ResultFinding
from ai_engine.inference.summary import combine_eye_results
from ai_engine.models import TERMINAL_STATUSES, Analysis, AnalysisStatus, Finding
from screening.models import RecordStatus, ScreeningRecord


def record_latest_analyses(*, record: ScreeningRecord) -> list[Analysis]:
    """The latest run per (photo, package) of a record, findings prefetched."""
    latest: dict[tuple[int, int], Analysis] = {}
    analyses: QuerySet[Analysis] = (
        Analysis.objects.filter(image__record=record)
        .select_related("image", "package")
        .prefetch_related(
            Prefetch("findings", queryset=Finding.objects.order_by("-positive", "-probability"))
        )
        .order_by("run")
    )
    for analysis in analyses:
        latest[(analysis.image_id, analysis.package_id)] = analysis
    return sorted(latest.values(), key=lambda a: (a.image.eye, a.image_id, a.model_name))


def record_ai_state(*, record: ScreeningRecord, analyses: list[Analysis]) -> dict[str, Any]:
    """One AI state for a visit (for the pages' status area), and whether polling can stop.

    `analyses` is `record_latest_analyses(record=record)`.
    """
    pending = [a for a in analyses if a.status not in TERMINAL_STATUSES]
    if record.status == RecordStatus.DRAFT:
        state, text = "no_photos", _("Waiting for photos.")
    elif pending:
        running = any(a.status == AnalysisStatus.RUNNING for a in pending)
        state = "running" if running else "queued"
        text = (
            _("AI analysis running (%(done)d of %(total)d done)…")
            if running
            else _("Waiting in the AI queue (%(done)d of %(total)d done)…")
        ) % {"done": len(analyses) - len(pending), "total": len(analyses)}
    elif not analyses:
        state, text = "waiting", _("Photos uploaded; waiting for the AI to start…")
    elif any(a.status == AnalysisStatus.UNGRADABLE for a in analyses):
        state, text = (
            "ungradable",
            _("AI finished: at least one photo is not gradable — please retake it."),
        )
    elif any(a.status == AnalysisStatus.FAILED for a in analyses):
        state, text = (
            "failed",
            _("AI analysis failed for at least one photo; the doctor reviews it without AI."),
        )
    else:
        state, text = "done", _("AI analysis finished; waiting for the doctor's review.")
    return {"state": state, "text": text, "finished": state in ("ungradable", "failed", "done")}


def record_ai_result(*, record: ScreeningRecord, language: str = "zh") -> dict[str, Any]:
    """The record's AI result per eye and combined, in the mini-program's shape.

    `{"eyes": {"OD": {"conclusion", "confidence", "abnormal_areas", "findings", "models",
    "demonstration", ...}}, "combined": {...}, "language": "zh", "pending": bool}` — rebuilt
    from the stored rows with the inference core's own summary rules.
    """
    per_image: dict[int, ImageAnalysis] = {}
    pending = False
    for analysis in record_latest_analyses(record=record):
        if analysis.status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING):
            pending = True
            continue
        image_analysis = per_image.setdefault(
            analysis.image_id,
            ImageAnalysis(source=str(analysis.image_id), eye=analysis.image.eye),
        )
        if analysis.status == AnalysisStatus.FAILED:
            image_analysis.error = analysis.error or "failed"
            continue
        image_analysis.quality = QualityResult(
            score=analysis.quality_score or 0.0,
            gradable=bool(analysis.quality_gradable),
            reasons=list(analysis.quality_reasons),
        )
        card = analysis.package.card
        image_analysis.predictions.append(
            Prediction(
                model_name=analysis.model_name,
                model_version=analysis.model_version,
                task=analysis.package.task,
                demonstration=analysis.demonstration,
                evidence=str(card.get("evidence", "")),
                findings=[
                    ResultFinding(
                        code=finding.label_code,
                        zh=finding.label_zh,
                        en=finding.label_en,
                        probability=finding.probability,
                        threshold=finding.threshold,
                        positive=finding.positive,
                        referable=finding.referable,
                        normal=_is_normal_label(card, finding.label_code),
                        cam_method=finding.cam_method,
                        areas=[
                            AbnormalArea(
                                code, *ZONE_NAMES.get(code, (code, code)), 0.0, 0.0, (0.0, 0.0)
                            )
                            for code in finding.abnormal_areas
                        ],
                    )
                    for finding in analysis.findings.all()
                ],
                referable=any(f.referable and f.positive for f in analysis.findings.all()),
                referable_probability=max(
                    (f.probability for f in analysis.findings.all() if f.referable), default=0.0
                ),
            )
        )
    combined = combine_eye_results(list(per_image.values()), language)
    combined["pending"] = pending
    return combined


def _is_normal_label(card: dict[str, Any], code: str) -> bool:
    return any(
        label.get("code") == code and label.get("normal") for label in card.get("labels", [])
    )
