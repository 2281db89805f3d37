from django.urls import path

from patients import views

# The patient page (history, trends, reports) is the site shell's: pages:patient-detail.
app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_new, name="create"),
    path("<str:patient_id>/edit/", views.patient_edit, name="edit"),
]
