"""Staff web UI of reports: the report page (summary editor, PDF preview, versions), the
permission-checked, audited PDF, and queueing a new version."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from core.conflicts import StaleVersion
from core.media import private_file_response
from core.roles import user_may
from core.tasks import enqueue_on_commit
from core.web import add_service_errors, staff_view
from patients.services import patient_record_view
from reports.api import ON_DEMAND_TASK
from reports.forms import SummaryForm
from reports.llm import fallback_reason_text
from reports.models import Report, ReportLanguage
from reports.selectors import report_list
from reports.services import report_approve_summary, report_record_download
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
