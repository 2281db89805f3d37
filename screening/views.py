"""Staff web UI for screenings: new visit, photo upload, the screening page, the review.

The web UI composes what every app wrote about a visit (photos, AI results, reports) on one
page, so these views read ai_engine's models, and reports' only when that app is installed.
The one-way import rule of DESIGN §1 binds models, services and tasks; writes here still go
only through each app's services.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ai_engine.views import latest_analyses_by_image, record_ai_state
from clinic.media import private_file_response
from clinic.tasks import enqueue_on_commit
from clinic.web import add_service_errors, staff_view
from patients.models import Patient
from patients.services import patient_record_view
from screening.forms import RecordForm, ReviewForm
from screening.models import DoctorReview, Eye, FundusImage, RecordStatus, ScreeningRecord
from screening.services import (
    MEASUREMENT_FIELDS,
    image_delete,
    image_record_view,
    image_upload,
    record_create,
    record_update,
    review_save_draft,
    review_sign,
)
from screening.thumbnails import thumbnail_for

REPORT_TASK = "reports.tasks.generate_report_on_demand"


@login_required
def fundus_image_file(request: HttpRequest, image_id: int) -> HttpResponse:
    if not request.user.has_perm("screening.view_fundusimage"):
        raise PermissionDenied
    image = get_object_or_404(FundusImage.objects.select_related("record__patient"), pk=image_id)
    if request.GET.get("size") == "thumb":
        # Previews appear on pages whose opening is already audited.
        return private_file_response(thumbnail_for(image))
    image_record_view(actor=request.user, image=image)
    return private_file_response(image.file.name)


def _record_or_404(record_id: int) -> ScreeningRecord:
    return get_object_or_404(
        ScreeningRecord.objects.select_related("patient", "operator"), pk=record_id
    )


# --- a new visit and its measurements -------------------------------------------------------
@staff_view("screening.add_screeningrecord")
def record_new(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = get_object_or_404(Patient, patient_id=patient_id)
    form = RecordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            record = record_create(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Screening saved. Now upload the photos of each eye."))
            return redirect("screening:photos", record_id=record.pk)
    return render(
        request, "screening/record_form.html", {"form": form, "patient": patient, "record": None}
    )


@staff_view("screening.change_screeningrecord")
def record_edit(request: HttpRequest, record_id: int) -> HttpResponse:
    record = _record_or_404(record_id)
    initial = {name: getattr(record, name) for name in MEASUREMENT_FIELDS if name != "screened_at"}
    form = RecordForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            record_update(actor=request.user, record=record, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Measurements saved."))
            return redirect("screening:detail", record_id=record.pk)
    return render(
        request,
        "screening/record_form.html",
        {"form": form, "patient": record.patient, "record": record},
    )


# --- photos ---------------------------------------------------------------------------------
def _images_by_eye(images) -> list[tuple[str, str, list[FundusImage]]]:
    return [
        (eye, label, [image for image in images if image.eye == eye]) for eye, label in Eye.choices
    ]


@staff_view("screening.view_screeningrecord", "screening.add_fundusimage")
def record_photos(request: HttpRequest, record_id: int) -> HttpResponse:
    record = _record_or_404(record_id)
    images = list(record.images.all())
    return render(
        request,
        "screening/record_photos.html",
        {
            "record": record,
            "eyes": _images_by_eye(images),
            "max_bytes": settings.FUNDUS_UPLOAD_MAX_BYTES,
            "max_megabytes": settings.FUNDUS_UPLOAD_MAX_BYTES // (1024 * 1024),
            "ai_state": record_ai_state(record, latest_analyses_by_image(images)),
        },
    )


@require_POST
@login_required
def image_upload_json(request: HttpRequest, record_id: int) -> JsonResponse:
    """One photo from the upload page's XMLHttpRequest; errors come back in the active language."""
    if not request.user.has_perm("screening.add_fundusimage"):
        return JsonResponse(
            {"error": _("You do not have permission to upload photos.")}, status=403
        )
    record = _record_or_404(record_id)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return JsonResponse({"error": _("Choose a photo to upload.")}, status=400)
    try:
        image = image_upload(
            actor=request.user,
            record=record,
            eye=request.POST.get("eye", ""),
            uploaded_file=uploaded,
        )
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse(
        {
            "id": image.pk,
            "eye": image.eye,
            "eye_label": str(image.get_eye_display()),
            "name": image.original_name,
            "width": image.width,
            "height": image.height,
            "thumb_url": reverse("screening:fundus-image-file", args=[image.pk]) + "?size=thumb",
            "message": _("Uploaded: %(name)s (%(width)d × %(height)d)")
            % {"name": image.original_name, "width": image.width, "height": image.height},
        },
        status=201,
    )


@require_POST
@staff_view("screening.delete_fundusimage")
def image_remove(request: HttpRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(FundusImage.objects.select_related("record__patient"), pk=image_id)
    record_id = image.record_id
    try:
        image_delete(actor=request.user, image=image)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Photo removed."))
    return redirect("screening:photos", record_id=record_id)


# --- the screening page ---------------------------------------------------------------------
def _review_initial(review: DoctorReview | None) -> dict:
    if review is None:
        return {}
    return {
        "conclusion_codes": review.conclusion_codes,
        "conclusion_text": review.conclusion_text,
        "recommendation": review.recommendation,
        "recommendation_text": review.recommendation_text,
        "follow_up_months": review.follow_up_months,
        "follow_up_date": review.follow_up_date,
    }


def _review_state(
    reviews: list[DoctorReview],
) -> tuple[DoctorReview | None, DoctorReview | None, bool]:
    """(open draft, latest signed review, whether the next signature is an amendment)."""
    latest = reviews[0] if reviews else None
    draft = latest if latest is not None and not latest.is_signed else None
    signed = next((review for review in reviews if review.is_signed), None)
    is_amendment = latest is not None and (latest.is_signed or latest.supersedes_id is not None)
    return draft, signed, is_amendment


def _reports_context(request: HttpRequest, record: ScreeningRecord) -> dict:
    if not apps.is_installed("reports"):
        return {"reports_installed": False}
    from reports.selectors import report_list  # an optional, later app

    return {
        "reports_installed": True,
        "reports": list(report_list(record=record)),
        "can_generate_report": request.user.has_perm("reports.add_report"),
    }


def _detail_context(
    request: HttpRequest, record: ScreeningRecord, review_form: ReviewForm | None = None
) -> dict:
    images = list(record.images.all())
    analyses = latest_analyses_by_image(images)
    for image in images:
        image.latest_analyses = analyses[image.pk]
        image.heatmap_findings = [
            finding
            for analysis in analyses[image.pk]
            for finding in analysis.findings.all()
            if finding.heatmap
        ]
    reviews = list(record.reviews.select_related("doctor").order_by("-version"))
    draft, signed, is_amendment = _review_state(reviews)
    user = request.user
    # A refused submission is shown back with its errors, even on a screening without photos.
    can_review = user.has_perm("screening.change_doctorreview") and (
        record.status != RecordStatus.DRAFT or review_form is not None
    )
    if review_form is None and can_review:
        review_form = ReviewForm(
            initial=_review_initial(draft or signed), is_amendment=is_amendment
        )
    return {
        "record": record,
        "patient": record.patient,
        "triage": getattr(record, "triage", None),
        "eyes": _images_by_eye(images),
        "has_images": bool(images),
        "ai_state": record_ai_state(record, analyses),
        "reviews": reviews,
        "draft": draft,
        "signed": signed,
        "is_amendment": is_amendment,
        "review_form": review_form,
        "can_review": can_review,
        "can_sign": user.has_perm("screening.sign_doctorreview"),
        "can_upload": user.has_perm("screening.add_fundusimage") and not record.is_locked,
        "can_edit": user.has_perm("screening.change_screeningrecord") and not record.is_locked,
        "can_rerun": user.has_perm("ai_engine.rerun_analysis") and not record.is_locked,
        **_reports_context(request, record),
    }


def _record_for_page(record_id: int) -> ScreeningRecord:
    return get_object_or_404(
        ScreeningRecord.objects.select_related("patient", "operator", "triage").prefetch_related(
            Prefetch("images", queryset=FundusImage.objects.order_by("eye", "uploaded_at"))
        ),
        pk=record_id,
    )


@staff_view("screening.view_screeningrecord", "patients.view_patient")
def record_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    record = _record_for_page(record_id)
    patient_record_view(actor=request.user, patient=record.patient)
    return render(request, "screening/record_detail.html", _detail_context(request, record))


@require_POST
@staff_view("screening.view_screeningrecord", "screening.change_doctorreview")
def review_submit(request: HttpRequest, record_id: int) -> HttpResponse:
    """Save the draft, or save and sign it ("sign" also needs the sign permission)."""
    record = _record_for_page(record_id)
    signing = request.POST.get("action") == "sign"
    if signing and not request.user.has_perm("screening.sign_doctorreview"):
        raise PermissionDenied
    reviews = list(record.reviews.order_by("-version"))
    _draft, _signed, is_amendment = _review_state(reviews)
    form = ReviewForm(request.POST, is_amendment=is_amendment)
    if form.is_valid():
        try:
            with transaction.atomic():
                review = review_save_draft(doctor=request.user, record=record, **form.cleaned_data)
                if signing:
                    review_sign(doctor=request.user, review=review)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if signing:
                messages.success(
                    request, _("Review version %(version)d signed.") % {"version": review.version}
                )
            else:
                messages.success(request, _("Draft saved."))
            return redirect(reverse("screening:detail", args=[record.pk]) + "#review")
    context = _detail_context(request, record, review_form=form)
    return render(request, "screening/record_detail.html", context, status=400)


@require_POST
@staff_view("screening.view_screeningrecord", "reports.add_report")
def report_generate(request: HttpRequest, record_id: int) -> HttpResponse:
    """Queue a new report version; the reports app renders it (its task checks permission again)."""
    if not apps.is_installed("reports"):
        raise PermissionDenied
    record = get_object_or_404(ScreeningRecord, pk=record_id)
    language = request.POST.get("language") or "zh-hans"
    if language not in dict(settings.LANGUAGES):
        language = "zh-hans"
    enqueue_on_commit(REPORT_TASK, record.pk, request.user.pk, language)
    messages.success(
        request, _("A new report version is being generated; reload the page in a moment.")
    )
    return redirect(reverse("screening:detail", args=[record.pk]) + "#reports")
