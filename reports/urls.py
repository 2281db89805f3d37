from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    path("<int:report_id>/pdf", views.report_pdf, name="report-pdf"),
]
