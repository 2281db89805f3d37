from django.urls import path

from screening import views

app_name = "screening"
urlpatterns = [
    path("images/<int:image_id>/file", views.fundus_image_file, name="fundus-image-file"),
]
