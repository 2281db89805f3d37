from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    path("<int:report_id>/", views.report_detail, name="detail"),
    path("print/", views.batch_print, name="batch-print"),
    path("<int:report_id>/pdf", views.report_pdf, name="report-pdf"),
    path("<int:report_id>/summary", views.summary_approve, name="approve-summary"),
    path("records/<int:record_id>/generate", views.report_generate, name="generate"),
]
