from django.urls import path

from reports import api

urlpatterns = [
    path("records/<int:record_id>/reports/", api.ReportListApi.as_view(), name="record-reports"),
    path(
        "records/<int:record_id>/reports/generate/",
        api.ReportGenerateApi.as_view(),
        name="record-reports-generate",
    ),
    path("reports/verify/<str:code>/", api.ReportVerifyApi.as_view(), name="report-verify"),
    path("reports/<int:report_id>/pdf/", api.ReportPdfApi.as_view(), name="report-pdf"),
    path(
        "reports/<int:report_id>/approve-summary/",
        api.ReportApproveSummaryApi.as_view(),
        name="report-approve-summary",
    ),
]
