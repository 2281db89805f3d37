"""Staff web UI for screenings: a new visit, its measurements, photo upload, removal and files.

The screening page and the upload page show AI results and reports too, so they live in the
site shell (clinic/pages/screening.py), which may import the later apps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.api import audit_list_read
from core.profiles import va_notation_for
from core.roles import user_may
from core.tabular import Table, UnknownFormat, export_format, table_response
from core.web import add_service_errors, staff_view
from patients.models import Patient
from screening.forms import RecallFilterForm, RecallMarkForm, RecordForm
from screening.media import ImageSize, fundus_image_response
from screening.models import (
    ConclusionCode,
    DoctorReview,
    FundusImage,
    RecallStatus,
    ScreeningRecord,
)
from screening.selectors import recall_contacts, recall_get, recall_list
from screening.services import (
    DuplicatePhotoHeld,
    follow_up_mark,
    image_choose_for_report,
    image_delete,
    image_replace,
    image_upload,
    recall_export_record,
    recall_page_view,
    record_create,
    record_update,
)


@login_required
def fundus_image_file(request: HttpRequest, image_id: int) -> HttpResponse:
    if not request.user.has_perm("screening.view_fundusimage"):
        raise PermissionDenied
    image = get_object_or_404(FundusImage.objects.select_related("record__patient"), pk=image_id)
    size = ImageSize.THUMB if request.GET.get("size") == "thumb" else ImageSize.FULL
    # Previews appear on pages whose opening is already audited.
    return fundus_image_response(
        actor=request.user,
        image=image,
        size=size,
        audit_preview=False,
        original=request.GET.get("original") == "1",
    )


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
            return redirect("pages:screening-photos", record_id=record.pk)
    return render(
        request, "screening/record_form.html", {"form": form, "patient": patient, "record": None}
    )


@staff_view("screening.change_screeningrecord")
def record_edit(request: HttpRequest, record_id: int) -> HttpResponse:
    record = _record_or_404(record_id)
    initial = RecordForm.initial_for(record, va_notation_for(request.user))
    form = RecordForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            record_update(actor=request.user, record=record, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Measurements saved."))
            return redirect("pages:screening-detail", record_id=record.pk)
    return render(
        request,
        "screening/record_form.html",
        {"form": form, "patient": record.patient, "record": record},
    )


# --- photos ---------------------------------------------------------------------------------
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
            confirm_duplicate=request.POST.get("confirm_duplicate") == "1",
        )
    except DuplicatePhotoHeld as exc:
        # upload.js shows the message with a button that sends the photo again, confirmed.
        return JsonResponse(
            {"error": " ".join(exc.messages), "code": "duplicate", "confirm": True}, status=409
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
    return redirect("pages:screening-photos", record_id=record_id)


@require_POST
@staff_view("screening.view_screeningrecord", "screening.add_fundusimage")
def image_replace_view(request: HttpRequest, image_id: int) -> HttpResponse:
    """A technician's retake of one photo; the old photo stays as history."""
    image = get_object_or_404(FundusImage.objects.select_related("record__patient"), pk=image_id)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        messages.error(request, _("Choose a photo to upload."))
    else:
        try:
            new = image_replace(actor=request.user, image=image, uploaded_file=uploaded)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request,
                _("Photo %(old)s replaced by photo %(new)s; the AI analyses the new one.")
                % {"old": image.pk, "new": new.pk},
            )
            image_id = new.pk
    return redirect(
        reverse("pages:screening-detail", args=[image.record_id]) + f"#image-{image_id}"
    )


@require_POST
@staff_view("screening.view_screeningrecord", "screening.change_doctorreview")
def image_choose_view(request: HttpRequest, image_id: int) -> HttpResponse:
    """The doctor picks this photo for its eye's report ("automatic" posts reset=1)."""
    image = get_object_or_404(FundusImage.objects.select_related("record__patient"), pk=image_id)
    reset = request.POST.get("reset") == "1"
    try:
        image_choose_for_report(
            doctor=request.user,
            record=image.record,
            eye=image.eye,
            image=None if reset else image,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("The report uses the newest gradable photo of this eye again.")
            if reset
            else _("The report uses photo %(number)s for this eye.") % {"number": image.pk},
        )
    return redirect(
        reverse("pages:screening-detail", args=[image.record_id]) + f"#image-{image.pk}"
    )


# --- follow-up recall -----------------------------------------------------------------------
RECALL_PAGE_SIZE = 25


def may_see_contact(user) -> bool:
    """Full phone numbers for staff who may correct patients' details (the patients API's
    rule): the front desk and administrators call patients; doctors see them masked."""
    return user_may(user, "patients.change_patient")


@dataclass
class RecallRow:
    """One recall as the list, its page and its export show it."""

    review: DoctorReview
    overdue_days: int
    conclusions: list[str]
    icd10: list[str]
    dr_grades: str
    status_label: str

    @property
    def patient(self) -> Patient:
        return self.review.record.patient


def _recall_row(review: DoctorReview, today: dt.date) -> RecallRow:
    labels = dict(ConclusionCode.choices)
    codes = [*review.conclusion_codes, *review.conclusion_codes_od, *review.conclusion_codes_os]
    grades = [
        f"{eye}: {label}"
        for eye, label in (
            ("OD", review.get_dr_grade_od_display()),
            ("OS", review.get_dr_grade_os_display()),
        )
        if label
    ]
    return RecallRow(
        review=review,
        overdue_days=max((today - review.recall_date).days, 0),
        conclusions=[str(labels.get(code, code)) for code in dict.fromkeys(codes)],
        icd10=list(dict.fromkeys([*review.diagnosis_codes_od, *review.diagnosis_codes_os])),
        dr_grades="; ".join(grades),
        status_label=str(RecallStatus(review.recall_status).label),
    )


def _recall_table(rows: list[RecallRow], *, full_phone: bool) -> Table:
    table = Table(
        title=_("Follow-up recall"),
        columns=[
            _("Follow-up date"),
            _("Days overdue"),
            _("Status"),
            _("Patient ID"),
            _("Name"),
            _("Sex"),
            _("Age"),
            _("Phone"),
            _("Conclusion"),
            _("ICD-10 codes"),
            _("DR grade"),
            _("Recommendation"),
            _("Doctor's follow-up date"),
            _("Screened at"),
            _("Last contact"),
            _("Note"),
        ],
    )
    for row in rows:
        review, patient = row.review, row.patient
        table.add(
            [
                review.recall_date,
                row.overdue_days,
                row.status_label,
                patient.patient_id,
                patient.name,
                str(patient.get_sex_display()),
                patient.age,
                patient.phone if full_phone else patient.masked_phone,
                "; ".join(row.conclusions),
                "; ".join(row.icd10),
                row.dr_grades,
                str(review.get_recommendation_display()),
                review.follow_up_date,
                review.record.screened_at,
                review.last_contact_at,
                review.last_note or "",
            ]
        )
    return table


@staff_view("screening.view_followupcontact")
def recall_list_view(request: HttpRequest) -> HttpResponse:
    """Patients whose follow-up is due or overdue; ``?format=csv|xlsx`` downloads the list."""
    form = RecallFilterForm(request.GET or None)
    filters = {}
    if form.is_bound and form.is_valid():
        filters = {name: value for name, value in form.cleaned_data.items() if value}
    reviews: QuerySet[DoctorReview] = (
        recall_list(**filters) if not form.is_bound or form.is_valid() else recall_list().none()
    )
    today = timezone.localdate()
    if "format" in request.GET:
        try:
            fmt = export_format(request.GET["format"])
        except UnknownFormat:
            return HttpResponseBadRequest(_("Unknown export format."))
        rows = [_recall_row(review, today) for review in reviews]
        full_phone = may_see_contact(request.user)
        response = table_response(
            _recall_table(rows, full_phone=full_phone), fmt, f"recall-{today.isoformat()}"
        )
        recall_export_record(
            actor=request.user,
            patient_refs=[row.patient.patient_id for row in rows],
            filters=sorted(filters),
            fmt=fmt,
            full_phone=full_phone,
        )
        return response
    page = Paginator(reviews, RECALL_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [_recall_row(review, today) for review in page.object_list]
    audit_list_read(
        actor=request.user,
        object_type="screening.followupcontact",
        patient_refs=[row.patient.patient_id for row in rows],
        filters=sorted(filters),
    )
    query = urlencode(
        [(key, value) for key, value in request.GET.items() if key not in ("page", "format")]
    )
    return render(
        request,
        "screening/recall_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "query": query,
            "today": today,
            "may_mark": user_may(request.user, "screening.add_followupcontact"),
            "nav_section": "recall",
        },
    )


@staff_view("screening.view_followupcontact")
def recall_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    """One recall: the patient's phone (in full for staff who call), its history, the marks."""
    try:
        review = recall_get(record_id=record_id)
    except DoctorReview.DoesNotExist:
        raise Http404 from None
    form = RecallMarkForm(request.POST or None)
    if request.method == "POST":
        if not user_may(request.user, "screening.add_followupcontact"):
            raise PermissionDenied
        if form.is_valid():
            try:
                follow_up_mark(actor=request.user, review=review, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("Recall of %(patient)s marked: %(status)s.")
                    % {
                        "patient": review.record.patient.name,
                        "status": dict(form.fields["status"].choices)[form.cleaned_data["status"]],
                    },
                )
                back = request.POST.get("next", "")
                if not url_has_allowed_host_and_scheme(
                    back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
                ):
                    back = reverse("screening:recall-detail", args=[record_id])
                return redirect(back)
    full_phone = may_see_contact(request.user)
    recall_page_view(actor=request.user, review=review, full_phone=full_phone)
    return render(
        request,
        "screening/recall_detail.html",
        {
            "row": _recall_row(review, timezone.localdate()),
            "review": review,
            "patient": review.record.patient,
            "full_phone": full_phone,
            "contacts": recall_contacts(review=review),
            "form": form,
            "may_mark": user_may(request.user, "screening.add_followupcontact"),
            "nav_section": "recall",
        },
        status=400 if request.method == "POST" else 200,
    )
