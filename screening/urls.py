from django.urls import path

from screening import views

# The screening page, the upload page and the review POST are the site shell's
# (clinic/pages/urls.py: pages:screening-detail, pages:screening-photos, pages:screening-review).
app_name = "screening"
urlpatterns = [
    path("images/<int:image_id>/file", views.fundus_image_file, name="fundus-image-file"),
    path("images/<int:image_id>/delete", views.image_remove, name="image-delete"),
    path("images/<int:image_id>/replace", views.image_replace_view, name="image-replace"),
    path("images/<int:image_id>/choose", views.image_choose_view, name="image-choose"),
    path("recall/", views.recall_list_view, name="recall"),
    path("recall/<int:record_id>/", views.recall_detail, name="recall-detail"),
    path("new/<str:patient_id>/", views.record_new, name="create"),
    path("<int:record_id>/edit/", views.record_edit, name="edit"),
    path("<int:record_id>/photos/upload", views.image_upload_json, name="image-upload"),
]
