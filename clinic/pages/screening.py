"""The screening page (photos, AI results, the review, reports) and the photo upload page.

The review is posted here because a refused review is shown back on the whole page.
"""

from __future__ import annotations

import json
from collections import defaultdict

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ai_engine.inference.diabetic import EyeDiabetic, is_dr_card
from ai_engine.models import Analysis
from ai_engine.selectors import (
    analysis_decision,
    analysis_findings,
    record_ai_state,
    record_diabetic_eyes,
    record_eye_photos,
    record_latest_analyses,
)
from ai_engine.wording import diabetic_eye_view
from clinic.diabetic import compare_eyes
from clinic.pages.viewer import viewer_json, viewer_photo
from core.conflicts import StaleVersion
from core.roles import Role, user_may
from core.web import add_service_errors, staff_view
from patients.services import patient_record_view
from reports.selectors import report_list
from screening import icd10
from screening.forms import ReviewForm, dme_choice, icd10_codes_text
from screening.models import DoctorReview, Eye, FundusImage, RecordStatus, ScreeningRecord
from screening.selectors import staff_with_role
from screening.services import (
    record_assign,
    record_may_assign,
    review_save_and_sign,
    review_save_draft,
)


def _images_by_eye(images) -> list[tuple[str, str, list[FundusImage]]]:
    return [
        (eye, label, [image for image in images if image.eye == eye]) for eye, label in Eye.choices
    ]


def _record_for_page(record_id: int) -> ScreeningRecord:
    return get_object_or_404(
        ScreeningRecord.objects.select_related(
            "patient", "operator", "triage", "assigned_doctor"
        ).prefetch_related(
            Prefetch("images", queryset=FundusImage.objects.order_by("eye", "uploaded_at"))
        ),
        pk=record_id,
    )


# --- the photo upload page ------------------------------------------------------------------
@staff_view("screening.view_screeningrecord", "screening.add_fundusimage")
def record_photos(request: HttpRequest, record_id: int) -> HttpResponse:
    record = get_object_or_404(
        ScreeningRecord.objects.select_related("patient", "operator"), pk=record_id
    )
    images = list(record.images.all())
    return render(
        request,
        "pages/screening_photos.html",
        {
            "nav_section": "screening",
            "record": record,
            "eyes": _images_by_eye(images),
            "max_bytes": settings.FUNDUS_UPLOAD_MAX_BYTES,
            "max_megabytes": settings.FUNDUS_UPLOAD_MAX_BYTES // (1024 * 1024),
            "ai_state": record_ai_state(
                record=record, analyses=record_latest_analyses(record=record)
            ),
        },
    )


# --- the screening page ---------------------------------------------------------------------
def _review_initial(review: DoctorReview | None, latest: DoctorReview | None) -> dict:
    revision = {"revision": latest.revision} if latest is not None else {}
    if review is None:
        return revision
    return {
        **revision,
        "conclusion_codes": review.conclusion_codes,
        "conclusion_text": review.conclusion_text,
        "recommendation": review.recommendation,
        "recommendation_text": review.recommendation_text,
        "follow_up_months": review.follow_up_months,
        "follow_up_date": review.follow_up_date,
        "dr_grade_od": review.dr_grade_od,
        "dr_grade_os": review.dr_grade_os,
        "dme_od": dme_choice(review.dme_od),
        "dme_os": dme_choice(review.dme_os),
        "conclusion_codes_od": review.conclusion_codes_od,
        "conclusion_codes_os": review.conclusion_codes_os,
        "diagnosis_codes_od": icd10_codes_text(review.diagnosis_codes_od),
        "diagnosis_codes_os": icd10_codes_text(review.diagnosis_codes_os),
        "conclusion_text_od": review.conclusion_text_od,
        "conclusion_text_os": review.conclusion_text_os,
        "recommendation_od": review.recommendation_od,
        "recommendation_os": review.recommendation_os,
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


def _eyes_for_page(
    record: ScreeningRecord, analyses: list[Analysis], diabetic: dict[str, EyeDiabetic]
) -> list[tuple]:
    """Per eye: (code, label, photos with the one the report uses first, whether the doctor
    chose it). Each analysis carries its findings as the model's decision rule reads them; the
    photo that speaks for the eye carries its DR grade and macular oedema (``diabetic``)."""
    by_image: dict[int, list[Analysis]] = defaultdict(list)
    for analysis in analyses:
        analysis.decision = analysis_decision(analysis)
        analysis.decided_findings = analysis_findings(analysis)
        analysis.is_dr = is_dr_card(analysis.package.card or {})
        by_image[analysis.image_id].append(analysis)
    eyes = []
    selection = record_eye_photos(record=record, analyses=analyses)
    for eye, label in Eye.choices:
        photos = selection[eye]
        ordered = ([photos.chosen] if photos.chosen else []) + photos.history
        for image in ordered:
            image.is_chosen = image == photos.chosen
            image.diabetic = diabetic_eye_view(diabetic[eye]) if image.is_chosen else None
            image.latest_analyses = by_image[image.pk]
            image.heatmap_findings = [
                finding
                for analysis in by_image[image.pk]
                for finding in analysis.findings.all()
                if finding.heatmap
            ]
        eyes.append((eye, label, ordered, photos.chosen_by_doctor))
    return eyes


def _viewer_photos(eyes: list[tuple]) -> str:
    """The page's photos for the viewer, in page order; each photo learns its place."""
    photos = []
    for _eye, label, images, _chosen_by_doctor in eyes:
        for image in images:
            image.viewer_index = len(photos)
            caption = f"{label} · " + _("Photo %(number)s") % {"number": image.pk}
            photos.append(viewer_photo(image, caption, image.heatmap_findings))
    return viewer_json(photos)


def _detail_context(
    request: HttpRequest,
    record: ScreeningRecord,
    review_form: ReviewForm | None = None,
    conflict: DoctorReview | None = None,
) -> dict:
    images = list(record.images.all())
    analyses = record_latest_analyses(record=record)
    diabetic = record_diabetic_eyes(record=record, analyses=analyses)
    reviews = list(record.reviews.select_related("doctor").order_by("-version"))
    draft, signed, is_amendment = _review_state(reviews)
    eyes = _eyes_for_page(record, analyses, diabetic)
    user = request.user
    # A refused submission is shown back with its errors, even on a screening without photos.
    can_review = user_may(user, "screening.change_doctorreview") and (
        record.status != RecordStatus.DRAFT or review_form is not None
    )
    if review_form is None and can_review:
        review_form = ReviewForm(
            initial=_review_initial(draft or signed, reviews[0] if reviews else None),
            is_amendment=is_amendment,
        )
    return {
        "nav_section": "screening",
        "record": record,
        "patient": record.patient,
        "triage": getattr(record, "triage", None),
        "eyes": eyes,
        "viewer_photos": _viewer_photos(eyes),
        "has_images": bool(images),
        "ai_state": record_ai_state(record=record, analyses=analyses),
        "reviews": reviews,
        # The review area compares the latest review's per-eye DR grade and DME with the AI's.
        "dr_review": reviews[0] if reviews else None,
        "dr_comparison": compare_eyes(diabetic, reviews[0] if reviews else None),
        "draft": draft,
        "signed": signed,
        "is_amendment": is_amendment,
        "review_form": review_form,
        "icd10_choices": icd10.choices() if review_form is not None else [],
        "icd10_defaults_json": json.dumps(icd10.DEFAULT_CODES),
        "conflict": conflict,
        # A signed review's amendment form stays folded until the doctor asks for it.
        "amend_folded": signed is not None and draft is None,
        "can_review": can_review,
        "can_sign": user_may(user, "screening.sign_doctorreview"),
        "can_upload": user.has_perm("screening.add_fundusimage") and not record.is_locked,
        "can_choose_photo": user_may(user, "screening.change_doctorreview")
        and not record.is_locked,
        "can_edit": user.has_perm("screening.change_screeningrecord") and not record.is_locked,
        "can_rerun": user.has_perm("ai_engine.rerun_analysis") and not record.is_locked,
        "reports": list(report_list(record=record)),
        "can_generate_report": user.has_perm("reports.add_report"),
        "assign_doctors": list(staff_with_role(role=Role.DOCTOR))
        if record_may_assign(user) and not record.is_locked
        else [],
    }


@staff_view("screening.view_screeningrecord", "patients.view_patient")
def record_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    record = _record_for_page(record_id)
    patient_record_view(actor=request.user, patient=record.patient)
    return render(request, "pages/screening_detail.html", _detail_context(request, record))


@require_POST
@staff_view("screening.view_screeningrecord", "screening.change_doctorreview")
def review_submit(request: HttpRequest, record_id: int) -> HttpResponse:
    """Save the draft, or save and sign it ("sign" also needs the sign permission), as the
    doctor saw the review (the form's revision); a stale form is shown back with the current
    review and nothing is written."""
    record = _record_for_page(record_id)
    signing = request.POST.get("action") == "sign"
    if signing and not user_may(request.user, "screening.sign_doctorreview"):
        raise PermissionDenied
    reviews = list(record.reviews.order_by("-version"))
    _draft, _signed, is_amendment = _review_state(reviews)
    form = ReviewForm(request.POST, is_amendment=is_amendment)
    if form.is_valid():
        write = review_save_and_sign if signing else review_save_draft
        try:
            review = write(doctor=request.user, record=record, **form.cleaned_data)
        except StaleVersion as exc:
            # The doctor keeps what they typed, now against the current review they are shown.
            data = request.POST.copy()
            data["revision"] = exc.current.revision if exc.current is not None else ""
            form = ReviewForm(data, is_amendment=_review_state([exc.current])[2])
            form.is_valid()
            form.add_error(None, exc.messages)
            context = _detail_context(request, record, review_form=form, conflict=exc.current)
            return render(request, "pages/screening_detail.html", context, status=409)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if signing:
                messages.success(
                    request, _("Review version %(version)d signed.") % {"version": review.version}
                )
            else:
                messages.success(request, _("Draft saved."))
            return redirect(reverse("pages:screening-detail", args=[record.pk]) + "#review")
    context = _detail_context(request, record, review_form=form)
    return render(request, "pages/screening_detail.html", context, status=400)


@require_POST
@staff_view("screening.view_screeningrecord", "patients.view_patient")
def record_assign_submit(request: HttpRequest, record_id: int) -> HttpResponse:
    """Put the screening on one doctor's worklist, or back on everyone's ("none")."""
    record = get_object_or_404(ScreeningRecord.objects.select_related("patient"), pk=record_id)
    if not record_may_assign(request.user):
        raise PermissionDenied
    choice = request.POST.get("doctor") or ""
    doctor = None
    if choice != "none":
        doctor = (
            staff_with_role(role=Role.DOCTOR).filter(pk=int(choice)).first()
            if choice.isdigit()
            else None
        )
        if doctor is None:
            messages.error(request, _("Choose the doctor to assign the screening to."))
            return redirect("pages:screening-detail", record.pk)
    try:
        record_assign(actor=request.user, record=record, doctor=doctor)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if doctor is None:
            messages.success(request, _("The screening is back on every doctor's worklist."))
        else:
            messages.success(
                request,
                _("Assigned to %(doctor)s.")
                % {"doctor": doctor.get_full_name() or doctor.get_username()},
            )
    return redirect("pages:screening-detail", record.pk)
