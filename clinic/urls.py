from django.contrib import admin
from django.urls import include, path
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from clinic.branding import clinic_name

admin.site.site_header = _("OphAI Clinic administration")
admin.site.site_title = _("OphAI Clinic")
admin.site.index_title = lazy(clinic_name, str)()

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("screening/", include("screening.urls")),
    path("reports/", include("reports.urls")),
    path("api/v1/", include("clinic.api_urls")),
]
