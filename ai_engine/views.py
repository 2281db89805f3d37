"""Staff web UI of the AI engine: heatmaps (private media), model cards, live status, re-runs."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ai_engine.inference.diabetic import is_dr_card
from ai_engine.inference.results import DECISION_ARGMAX, decision_rule
from ai_engine.models import Analysis, Finding, ModelPackage
from ai_engine.selectors import record_ai_state, record_latest_analyses
from core.media import private_file_response
from core.web import staff_view
from screening.models import ScreeningRecord


@staff_view("screening.view_screeningrecord", "ai_engine.view_analysis")
def record_status(request: HttpRequest, record_id: int) -> JsonResponse:
    """Polled every 2 s by the upload and screening pages until the analyses are finished."""
    record = get_object_or_404(ScreeningRecord, pk=record_id)
    images = list(record.images.all())
    analyses = record_latest_analyses(record=record)
    state = record_ai_state(record=record, analyses=analyses)
    return JsonResponse(
        {
            "record": {
                "id": record.pk,
                "status": record.status,
                "status_label": str(record.get_status_display()),
            },
            **state,
            "images": [
                {
                    "id": image.pk,
                    "eye": image.eye,
                    "analyses": [
                        {
                            "id": analysis.pk,
                            "model": f"{analysis.model_name} {analysis.model_version}",
                            "demonstration": analysis.demonstration,
                            "status": analysis.status,
                            "status_label": str(analysis.get_status_display()),
                            "positive": [
                                finding.label_code
                                for finding in analysis.findings.all()
                                if finding.positive
                            ],
                        }
                        for analysis in analyses
                        if analysis.image_id == image.pk
                    ],
                }
                for image in images
            ],
        }
    )


@staff_view("ai_engine.view_finding", "screening.view_fundusimage")
def heatmap_file(request: HttpRequest, finding_id: int) -> HttpResponse:
    finding = get_object_or_404(Finding, pk=finding_id, analysis__shadow=False)
    # Heatmaps show on the screening page, whose opening is already audited.
    return private_file_response(finding.heatmap.name)


@staff_view("ai_engine.view_modelpackage")
def model_card(request: HttpRequest, package_id: int) -> HttpResponse:
    package = get_object_or_404(ModelPackage, pk=package_id)
    card = package.card or {}
    validation = card.get("validation") or {}
    scalar_metrics = {k: v for k, v in validation.items() if not isinstance(v, dict | list)}
    per_label = {k: v for k, v in validation.items() if isinstance(v, dict)}
    other_metrics = {k: v for k, v in validation.items() if isinstance(v, list)}
    return render(
        request,
        "ai_engine/model_card.html",
        {
            "package": package,
            "card": card,
            "labels": card.get("labels") or [],
            "argmax": decision_rule(package.task) == DECISION_ARGMAX,
            "dr_operating_point": _dr_operating_point(card),
            "intended_use": package.intended_use_in(get_language() or "zh-hans"),
            "evidence": package.evidence_in(get_language() or "zh-hans"),
            "scalar_metrics": scalar_metrics,
            "per_label": per_label,
            "other_metrics": other_metrics,
        },
    )


def _dr_operating_point(card: dict) -> str:
    """A DR grading card's rule for "referable" and "vision-threatening", in words."""
    grading = card.get("dr_grading") if is_dr_card(card) else None
    if not grading:
        return ""
    values = {
        "from": grading.get("referable_from", 2),
        "severe": grading.get("vision_threatening_from", 3),
        "t": grading.get("referable_threshold"),
    }
    if values["t"] is None:
        return (
            _(
                "Referable when the most probable grade is R%(from)s or worse; vision-threatening "
                "from R%(severe)s or with macular oedema."
            )
            % values
        )
    values["t"] = f"{float(values['t']):.2f}"
    return (
        _(
            "Screening operating point: referable when P(≥R%(from)s) ≥ %(t)s (chosen on validation, "
            "sensitivity first); vision-threatening from R%(severe)s or with macular oedema."
        )
        % values
    )


@require_POST
@staff_view("ai_engine.rerun_analysis")
def rerun(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = get_object_or_404(
        Analysis.objects.visible().select_related("image__record__patient", "package"),
        pk=analysis_id,
    )
    record = analysis.image.record
    from ai_engine.services import analysis_rerun  # the engine's services import its task chain

    try:
        analysis_rerun(analysis=analysis, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("A new AI analysis of this photo was requested."))
    return redirect(
        reverse("pages:screening-detail", args=[record.pk]) + f"#image-{analysis.image_id}"
    )
