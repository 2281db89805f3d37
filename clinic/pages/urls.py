"""URLs of the composed pages; their paths sit beside the apps' own (included after them)."""

from django.urls import path

from clinic.pages import compare, my_settings, operations, patient, screening

app_name = "pages"
urlpatterns = [
    path("operations/", operations.operations, name="operations"),
    path("my-settings/", my_settings.my_settings, name="my-settings"),
    path("patients/<str:patient_id>/", patient.patient_detail, name="patient-detail"),
    path("patients/<str:patient_id>/compare/", compare.compare_visits, name="patient-compare"),
    path("screening/<int:record_id>/", screening.record_detail, name="screening-detail"),
    path("screening/<int:record_id>/photos/", screening.record_photos, name="screening-photos"),
    path("screening/<int:record_id>/review", screening.review_submit, name="screening-review"),
    path(
        "screening/<int:record_id>/assign", screening.record_assign_submit, name="screening-assign"
    ),
]
