"""Permission-checked, audited delivery of report PDFs to staff."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from clinic.media import private_file_response
from reports.models import Report
from reports.services import report_record_download


@login_required
def report_pdf(request: HttpRequest, report_id: int) -> HttpResponse:
    if not request.user.has_perm("reports.view_report"):
        raise PermissionDenied
    report = get_object_or_404(Report.objects.select_related("record__patient"), pk=report_id)
    response = private_file_response(report.pdf.name, download_name=report.download_name)
    report_record_download(report=report, actor=request.user)
    return response
