from django.urls import path

from patients import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_new, name="create"),
    path("<str:patient_id>/", views.patient_detail, name="detail"),
    path("<str:patient_id>/edit/", views.patient_edit, name="edit"),
]
