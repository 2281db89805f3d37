"""The REST API, mounted at /api/v1/: each app contributes its own `api_urls` module."""

from django.urls import include, path

app_name = "api-v1"
urlpatterns = [
    path("", include("reports.api_urls")),
]
