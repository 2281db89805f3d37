"""Staff web UI for screenings: a new visit, its measurements, photo upload, removal and files.

The screening page and the upload page show AI results and reports too, so they live in the
site shell (clinic/pages/screening.py), which may import the later apps.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.profiles import va_notation_for
from core.web import add_service_errors, staff_view
from patients.models import Patient
from screening.forms import RecordForm
from screening.media import ImageSize, fundus_image_response
from screening.models import FundusImage, ScreeningRecord
from screening.services import (
    DuplicatePhotoHeld,
    image_choose_for_report,
    image_delete,
    image_replace,
    image_upload,
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
