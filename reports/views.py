"""Staff web UI of reports: the report page (summary editor, PDF preview, versions), the
permission-checked, audited PDF, and queueing a new version."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from core.conflicts import StaleVersion
from core.media import private_file_response
from core.roles import user_may
from core.tasks import enqueue_on_commit
from core.web import add_service_errors, staff_view
from patients.services import patient_record_view
from reports.api import ON_DEMAND_TASK
from reports.forms import BatchPrintForm, SummaryForm
from reports.llm import fallback_reason_text
from reports.models import Report, ReportLanguage
from reports.selectors import report_list, reports_final_on
from reports.services import (
    BatchPrint,
    NothingToPrint,
    report_approve_summary,
    report_batch_print,
    report_record_download,
)
from screening.models import ScreeningRecord


@xframe_options_sameorigin  # previewed inline on the report page
@staff_view("reports.view_report")
def report_pdf(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(Report.objects.select_related("record__patient"), pk=report_id)
    response = private_file_response(report.pdf.name, download_name=report.download_name)
    report_record_download(report=report, actor=request.user)
    return response


def _report_for_page(report_id: int) -> Report:
    return get_object_or_404(
        Report.objects.select_related(
            "record__patient", "record__operator", "generated_by", "summary_approved_by"
        ),
        pk=report_id,
    )


def _page_context(request: HttpRequest, report: Report, form: SummaryForm | None = None) -> dict:
    versions = list(report_list(record=report.record))
    # The service approves only the newest version of a language; older ones are read-only.
    newer = next(
        (
            other
            for other in versions
            if other.language == report.language and other.version > report.version
        ),
        None,
    )
    can_approve = user_may(request.user, "reports.approve_summary") and newer is None
    if form is None and can_approve:
        form = SummaryForm(initial={"text": report.summary_final})
    return {
        "nav_section": "screening",
        "report": report,
        "record": report.record,
        "patient": report.record.patient,
        "versions": versions,
        "newer": newer,
        "can_approve": can_approve,
        "summary_form": form,
        "fallback_reason": fallback_reason_text(report.summary_fallback_reason),
    }


@staff_view("reports.view_report", "screening.view_screeningrecord", "patients.view_patient")
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_for_page(report_id)
    patient_record_view(actor=request.user, patient=report.record.patient)
    return render(request, "reports/report_detail.html", _page_context(request, report))


@require_POST
@staff_view("reports.view_report", "reports.approve_summary")
def summary_approve(request: HttpRequest, report_id: int) -> HttpResponse:
    """The doctor's text becomes the summary of a new version (rendered now); the draft stays."""
    report = _report_for_page(report_id)
    form = SummaryForm(request.POST)
    if form.is_valid():
        try:
            approved = report_approve_summary(
                report=report, doctor=request.user, text=form.cleaned_data["text"]
            )
        except StaleVersion as exc:
            # A newer version exists (another approval, a new signature): show that one.
            messages.error(request, " ".join(exc.messages))
            return redirect("reports:detail", report_id=exc.current.pk)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Summary approved: version %(version)d was rendered.")
                % {"version": approved.version},
            )
            return redirect("reports:detail", report_id=approved.pk)
    context = _page_context(request, report, form=form)
    return render(request, "reports/report_detail.html", context, status=400)


@require_POST
@staff_view("screening.view_screeningrecord", "reports.add_report")
def report_generate(request: HttpRequest, record_id: int) -> HttpResponse:
    """Queue a new report version; a worker renders it (its task checks permission again)."""
    record = get_object_or_404(ScreeningRecord, pk=record_id)
    language = request.POST.get("language") or ReportLanguage.ZH_HANS.value
    if language not in dict(settings.LANGUAGES):
        language = ReportLanguage.ZH_HANS.value
    enqueue_on_commit(ON_DEMAND_TASK, record.pk, request.user.pk, language)
    messages.success(
        request, _("A new report version is being generated; reload the page in a moment.")
    )
    return redirect(reverse("pages:screening-detail", args=[record.pk]) + "#reports")


@staff_view("reports.view_report")
def batch_print(request: HttpRequest) -> HttpResponse:
    """A day's final reports: the list (GET) and all of them as one PDF to print (POST)."""
    if request.method == "POST":
        form = BatchPrintForm(request.POST)
        if form.is_valid():
            return _batch_print_pdf(request, form.cleaned_data["day"], form.cleaned_data["part"])
        day, status = timezone.localdate(), 400
    else:
        chosen = BatchPrintForm(request.GET)
        day = chosen.cleaned_data["day"] if chosen.is_valid() else timezone.localdate()
        form, status = BatchPrintForm(initial={"day": day}), 200
    reports = reports_final_on(day=day)
    size = settings.REPORT_BATCH_MAX
    parts = [
        {"number": n + 1, "first": start + 1, "last": min(start + size, len(reports))}
        for n, start in enumerate(range(0, len(reports), size))
    ]
    context = {
        "nav_section": "screening",
        "form": form,
        "day": day,
        "reports": reports,
        "parts": parts,
    }
    return render(request, "reports/batch_print.html", context, status=status)


def _batch_print_pdf(request: HttpRequest, day, part: int | None) -> HttpResponse:
    """All the day's final reports, or part `part` of them (REPORT_BATCH_MAX each)."""
    reports = reports_final_on(day=day)
    label = day.isoformat()
    if part:
        size = settings.REPORT_BATCH_MAX
        reports = reports[(part - 1) * size : part * size]
        label = f"{label} ({part})"
    try:
        batch = report_batch_print(reports=reports, actor=request.user, label=label)
    except NothingToPrint as exc:
        messages.warning(request, " ".join(exc.messages))
        return redirect(reverse("reports:batch-print") + f"?day={day.isoformat()}")
    batch_print_messages(request, batch)
    return batch_pdf_response(batch, filename=f"reports-{day.isoformat()}.pdf")


def batch_print_messages(request: HttpRequest, batch: BatchPrint) -> None:
    """What was left out of a batch, shown on the next page the user opens."""
    if batch.changed:
        messages.warning(
            request,
            ngettext(
                "%(count)d report was left out because its screening changed after it was "
                "rendered (%(numbers)s); generate a new version to print it.",
                "%(count)d reports were left out because their screenings changed after they "
                "were rendered (%(numbers)s); generate new versions to print them.",
                len(batch.changed),
            )
            % {
                "count": len(batch.changed),
                "numbers": ", ".join(report.number for report in batch.changed),
            },
        )
    if batch.drafts:
        messages.warning(
            request,
            ngettext(
                "%(count)d draft report was left out: only final reports are printed.",
                "%(count)d draft reports were left out: only final reports are printed.",
                batch.drafts,
            )
            % {"count": batch.drafts},
        )


def batch_pdf_response(batch: BatchPrint, *, filename: str) -> HttpResponse:
    response = HttpResponse(batch.content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
