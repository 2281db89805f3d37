"""The REST API, mounted at /api/v1/: each app contributes its own `api_urls` module."""

from django.urls import include, path

from clinic import auth_api, me_api

app_name = "api-v1"
urlpatterns = [
    # sign-in
    path("auth/token/", auth_api.StaffTokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", auth_api.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout/", auth_api.TokenLogoutApi.as_view(), name="auth-logout"),
    path("auth/wechat/login/", auth_api.WeChatLoginApi.as_view(), name="auth-wechat-login"),
    path("auth/wechat/bind/", auth_api.WeChatBindApi.as_view(), name="auth-wechat-bind"),
    # the signed-in patient (mini-program)
    path("me/", me_api.MeApi.as_view(), name="me"),
    path("me/follow-up/", me_api.MeFollowUpApi.as_view(), name="me-follow-up"),
    path("me/records/", me_api.MeRecordListApi.as_view(), name="me-records"),
    path(
        "me/records/<int:record_id>/", me_api.MeRecordDetailApi.as_view(), name="me-record-detail"
    ),
    path("me/reports/", me_api.MeReportListApi.as_view(), name="me-reports"),
    path("me/reports/<int:report_id>/pdf/", me_api.MeReportPdfApi.as_view(), name="me-report-pdf"),
    # staff
    path("", include("patients.api_urls")),
    path("", include("screening.api_urls")),
    path("", include("ai_engine.api_urls")),
    path("", include("reports.api_urls")),
]
