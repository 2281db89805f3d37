from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clinic import health, views
from core.api import CanReadApiDocs
from core.branding import clinic_name

admin.site.site_header = _("OphAI Clinic administration")
admin.site.site_title = _("OphAI Clinic")
admin.site.index_title = lazy(clinic_name, str)()

urlpatterns = [
    # The staff web UI; /admin/ stays for administrators.
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("worklist/assign/", views.worklist_assign, name="worklist-assign"),
    path("statistics/", views.statistics, name="statistics"),
    path("statistics/export/<str:table>/", views.statistics_export, name="statistics-export"),
    path("patients/", include("patients.urls")),
    path("ai/", include("ai_engine.urls")),
    path("healthz", health.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (admin, API docs, PDFs).
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("clinic/favicon.svg"), permanent=True),
        name="favicon",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    # The audit log moved from clinic to core (issue #16); bookmarks of its old addresses still work.
    re_path(
        r"^admin/clinic/auditevent/(?P<rest>.*)$",
        RedirectView.as_view(
            url="/admin/core/auditevent/%(rest)s", permanent=True, query_string=True
        ),
    ),
    path("admin/", admin.site.urls),
    path("screening/", include("screening.urls")),
    path("reports/", include("reports.urls")),
    # Pages composed from several apps (patient, screening); after the apps' own URLs, so
    # /patients/new/ stays the registration form.
    path("", include("clinic.pages.urls")),
    path("api/v1/", include("clinic.api_urls")),
    # OpenAPI 3 schema and Swagger UI (assets from drf-spectacular-sidecar: no CDN)
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[CanReadApiDocs]),
        name="api-schema",
    ),
    # The split view serves its start-up script as a file: no inline script (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", permission_classes=[CanReadApiDocs]
        ),
        name="api-docs",
    ),
]

# API paths that match no route still answer in the API's error shape.
handler404 = "core.api.not_found"
# Static, no database: a lost database anywhere in the request answers 503, anything else 500.
handler500 = "core.errors.server_error"
