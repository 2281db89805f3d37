from django.urls import path

from screening import views

app_name = "screening"
urlpatterns = [
    path("images/<int:image_id>/file", views.fundus_image_file, name="fundus-image-file"),
    path("images/<int:image_id>/delete", views.image_remove, name="image-delete"),
    path("new/<str:patient_id>/", views.record_new, name="create"),
    path("<int:record_id>/", views.record_detail, name="detail"),
    path("<int:record_id>/edit/", views.record_edit, name="edit"),
    path("<int:record_id>/photos/", views.record_photos, name="photos"),
    path("<int:record_id>/photos/upload", views.image_upload_json, name="image-upload"),
    path("<int:record_id>/review", views.review_submit, name="review"),
    path("<int:record_id>/reports/generate", views.report_generate, name="report-generate"),
]
