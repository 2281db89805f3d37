"""Reads of AI results for the UI, the API and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

# results and summary import no torch: web processes read AI results without loading it
# (tests/ai_engine/test_web_imports.py).
from ai_engine.inference.diabetic import EyeDiabetic, eye_diabetic
from ai_engine.inference.results import (
    ZONE_NAMES,
    AbnormalArea,
    ImageAnalysis,
    Prediction,
    QualityResult,
    decide,
    decision_rule,
    is_normal_label,
)
from ai_engine.inference.results import Finding as ResultFinding
from ai_engine.inference.summary import combine_eye_results
from ai_engine.models import (
    TERMINAL_STATUSES,
    Analysis,
    AnalysisStatus,
    Finding,
    ModelPackage,
    PackageState,
)
from screening.models import Eye, FundusImage, RecordStatus, ScreeningRecord


def active_diagnosis_packages() -> list[ModelPackage]:
    """Active packages whose findings are shown: one analysis per photo each."""
    return [
        p for p in ModelPackage.objects.filter(state=PackageState.ACTIVE) if not p.is_quality_model
    ]


def shadow_packages() -> list[ModelPackage]:
    """Shadow packages: they analyse every new photo, and nobody but the statistics sees it."""
    return [
        p for p in ModelPackage.objects.filter(state=PackageState.SHADOW) if not p.is_quality_model
    ]


def active_quality_packages() -> list[ModelPackage]:
    """Active quality models (card role "quality"): run inside every analysis, after the
    heuristic gate; they get no analysis rows of their own."""
    return [p for p in ModelPackage.objects.filter(state=PackageState.ACTIVE) if p.is_quality_model]


def record_latest_analyses(*, record: ScreeningRecord) -> list[Analysis]:
    """The latest run per (photo, package) of a record, findings prefetched; shadow runs never."""
    latest: dict[tuple[int, int], Analysis] = {}
    analyses: QuerySet[Analysis] = (
        Analysis.objects.visible()
        .filter(image__record=record)
        .select_related("image", "package")
        .prefetch_related(
            Prefetch("findings", queryset=Finding.objects.order_by("-positive", "-probability"))
        )
        .order_by("run")
    )
    for analysis in analyses:
        latest[(analysis.image_id, analysis.package_id)] = analysis
    return sorted(latest.values(), key=lambda a: (a.image.eye, a.image_id, a.model_name))


def analysis_decision(analysis: Analysis) -> str:
    """The decision rule of the analysis's model (``argmax`` or ``threshold``)."""
    return decision_rule(analysis.package.task)


def analysis_findings(analysis: Analysis) -> list[ResultFinding]:
    """The analysis's findings as its model's decision rule reads them, most probable first.

    Every surface (screening page, PDF, triage, summary, API) shows these, never the rows'
    own ``positive`` and ``threshold``: a multiclass model's result is its most probable label
    and shows no threshold; a normal label is never a positive finding (``Finding.outcome``).
    """
    labels = analysis.package.card.get("labels", [])
    rows = sorted(analysis.findings.all(), key=lambda f: (-f.probability, f.label_code))
    return decide(
        analysis.package.task,
        [
            ResultFinding(
                code=row.label_code,
                zh=row.label_zh,
                en=row.label_en,
                probability=row.probability,
                threshold=row.threshold,
                positive=row.positive,
                referable=row.referable,
                normal=is_normal_label(row.label_code, labels),
                cam_method=row.cam_method,
                areas=[
                    AbnormalArea(code, *ZONE_NAMES.get(code, (code, code)), 0.0, 0.0, (0.0, 0.0))
                    for code in row.abnormal_areas
                ],
            )
            for row in rows
        ],
    )


@dataclass
class EyePhotos:
    """One eye's photos: the one its report, summary, triage and API use, and the history."""

    eye: str
    chosen: FundusImage | None = None
    chosen_by_doctor: bool = False
    analyses: list[Analysis] = field(default_factory=list)  # the chosen photo's, per package
    photos: list[FundusImage] = field(default_factory=list)  # every photo, newest first

    @property
    def history(self) -> list[FundusImage]:
        return [photo for photo in self.photos if photo != self.chosen]

    @property
    def pending(self) -> bool:
        return any(not a.is_terminal for a in self.analyses)

    @property
    def gradable(self) -> bool | None:
        """True with a gradable result, False when every finished analysis said not gradable,
        None while nothing is known (no photo, still running, or failed)."""
        finished = [a for a in self.analyses if a.status != AnalysisStatus.FAILED and a.is_terminal]
        if any(a.status == AnalysisStatus.DONE for a in finished):
            return True
        return False if finished and not self.pending else None


def _has_gradable_result(analyses: list[Analysis]) -> bool:
    """Done means gradable: the engine stores an ungradable photo's analysis as UNGRADABLE."""
    return any(a.status == AnalysisStatus.DONE for a in analyses)


def record_eye_photos(
    *, record: ScreeningRecord, analyses: list[Analysis] | None = None
) -> dict[str, EyePhotos]:
    """Per eye, the photo that speaks for it: the doctor's choice, else the newest gradable
    photo with AI results, else the newest photo; replaced photos only as history.

    `analyses` is `record_latest_analyses(record=record)` when the caller has it already.
    """
    if analyses is None:
        analyses = record_latest_analyses(record=record)
    by_image: dict[int, list[Analysis]] = {}
    for analysis in analyses:
        by_image.setdefault(analysis.image_id, []).append(analysis)
    images = sorted(record.images.all(), key=lambda i: (i.uploaded_at, i.pk), reverse=True)
    eyes: dict[str, EyePhotos] = {}
    for eye in Eye.values:
        photos = [image for image in images if image.eye == eye]
        current = [image for image in photos if image.superseded_by_id is None]
        chosen = next((image for image in current if image.chosen_for_report), None)
        by_doctor = chosen is not None
        if chosen is None:
            chosen = next(
                (i for i in current if _has_gradable_result(by_image.get(i.pk, []))),
                current[0] if current else None,
            )
        eyes[eye] = EyePhotos(
            eye=eye,
            chosen=chosen,
            chosen_by_doctor=by_doctor,
            analyses=by_image.get(chosen.pk, []) if chosen is not None else [],
            photos=photos,
        )
    return eyes


def record_ai_state(*, record: ScreeningRecord, analyses: list[Analysis]) -> dict[str, Any]:
    """One AI state for a visit (for the pages' status area), and whether polling can stop.

    `analyses` is `record_latest_analyses(record=record)`. A retake asks no more once its eye
    has a gradable photo: the state follows the photos each eye's results come from.
    """
    current = {i.pk for i in record.images.all() if i.superseded_by_id is None}
    analyses = [a for a in analyses if a.image_id in current]
    pending = [a for a in analyses if a.status not in TERMINAL_STATUSES]
    eyes = record_eye_photos(record=record, analyses=analyses)
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
    elif record.is_locked:  # signed: no retake or review is asked for any more
        state, text = "done", _("AI analysis finished; the doctor has signed the review.")
    elif any(e.gradable is False for e in eyes.values()):
        state, text = (
            "ungradable",
            _("AI finished: at least one photo is not gradable — please retake it."),
        )
    elif any(a.status == AnalysisStatus.FAILED for e in eyes.values() for a in e.analyses):
        state, text = (
            "failed",
            _("AI analysis failed for at least one photo; the doctor reviews it without AI."),
        )
    else:
        state, text = "done", _("AI analysis finished; waiting for the doctor's review.")
    return {
        "state": state,
        "text": text,
        "finished": state in ("ungradable", "failed", "done"),
        # Signing queues the report; the pages keep asking until the status says "reported".
        "awaiting_report": record.status == RecordStatus.REVIEWED,
    }


def record_ai_result(*, record: ScreeningRecord, language: str = "zh") -> dict[str, Any]:
    """The record's AI result per eye and combined, in the mini-program's shape.

    `{"eyes": {"OD": {"conclusion", "confidence", "abnormal_areas", "findings", "models",
    "demonstration", ...}}, "combined": {...}, "language": "zh", "pending": bool}` — rebuilt
    from the stored rows of each eye's photo (``record_eye_photos``) with the inference core's
    own summary and decision rules.
    """
    per_image: dict[int, ImageAnalysis] = {}
    pending = False
    analyses = record_latest_analyses(record=record)
    for eye_photos in record_eye_photos(record=record, analyses=analyses).values():
        for analysis in eye_photos.analyses:
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
            findings = analysis_findings(analysis)
            image_analysis.predictions.append(
                Prediction(
                    model_name=analysis.model_name,
                    model_version=analysis.model_version,
                    task=analysis.package.task,
                    demonstration=analysis.demonstration,
                    evidence=str(analysis.package.card.get("evidence", "")),
                    findings=findings,
                    referable=any(f.referable and f.positive for f in findings),
                    referable_probability=max(
                        (f.probability for f in findings if f.referable), default=0.0
                    ),
                )
            )
    combined = combine_eye_results(list(per_image.values()), language)
    combined["pending"] = pending
    diabetic = record_diabetic_eyes(record=record, analyses=analyses)
    for eye, summary in combined["eyes"].items():
        _add_diabetic_fields(summary, diabetic.get(eye), language)
    eyes = [summary for summary in combined["eyes"].values()]
    combined["combined"]["referable"] = any(summary["referable"] for summary in eyes)
    combined["combined"]["vision_threatening"] = any(
        summary.get("vision_threatening") for summary in eyes
    )
    return combined


def _add_diabetic_fields(
    summary: dict[str, Any], diabetic: EyeDiabetic | None, language: str
) -> None:
    """The eye's DR grade and macular oedema as the mini-program reads them; ``referable`` is
    the DR / DME decision by the card's rule or another model's referable finding, so the two
    never disagree."""
    dr = diabetic.dr if diabetic is not None else None
    dme = diabetic.dme if diabetic is not None else None
    diabetic_models = {a.model_name for a in (dr, dme) if a is not None}
    other_referable = any(
        f.get("referable") and f.get("positive") and not f.get("normal")
        for f in summary.get("findings", [])
        if f.get("model") not in diabetic_models
    )
    summary.update(
        dr_grade=dr.grade if dr else None,
        dr_grade_text=dr.words(language) if dr else None,
        dr_grade_probability=round(dr.grade_probability, 4) if dr else None,
        dr_decision=dr.decision if dr else None,
        p_referable=round(dr.p_referable, 4) if dr else None,
        referable=other_referable or bool(diabetic and diabetic.referable),
        dme=dme.positive if dme else None,
        p_dme=round(dme.probability, 4) if dme else None,
        vision_threatening=bool(diabetic and diabetic.vision_threatening),
    )


def record_diabetic_eyes(
    *, record: ScreeningRecord, analyses: list[Analysis] | None = None
) -> dict[str, EyeDiabetic]:
    """Per eye, the DR grade and macular oedema of the photo that speaks for it
    (``record_eye_photos``), from its finished analyses; models that did not read the photo
    (ungradable, failed, still running) give nothing."""
    eyes = record_eye_photos(record=record, analyses=analyses)
    return {eye: analyses_diabetic(eye, photos.analyses) for eye, photos in eyes.items()}


def analyses_diabetic(eye: str, analyses: list[Analysis]) -> EyeDiabetic:
    """One photo's finished analyses → the eye's DR grade and macular oedema."""
    results = [
        (
            analysis.package.card or {},
            {row.label_code: row.probability for row in analysis.findings.all()},
            {
                "model_name": analysis.model_name,
                "model_version": analysis.model_version,
                "demonstration": analysis.demonstration,
            },
        )
        for analysis in analyses
        if analysis.status == AnalysisStatus.DONE
    ]
    return eye_diabetic(eye, results)
