from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from paylinks.api import urls as api_urls
from paylinks.api.schema import DocsView
from paylinks.views import profile
from reports import api as reports_api

# Password reset needs email; without EMAIL_URL its pages don't exist (and the login page has no
# "Forgot your password?" link, which shows exactly when `password_reset` can be reversed).
PASSWORD_RESET_VIEWS = {
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
account_urls = [
    pattern
    for pattern in auth_urls.urlpatterns
    if settings.PASSWORD_RESET or getattr(pattern, "name", "") not in PASSWORD_RESET_VIEWS
]

# The REST API (README "REST API"): paylinks' endpoints and the dashboard's summary, one
# namespace; its OpenAPI description and Swagger UI beside it.
api_v1 = [*api_urls.urlpatterns, *reports_api.api_urlpatterns]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", DocsView.as_view(url_name="api_schema"), name="api_docs"),
    path("admin/", admin.site.urls),
    path("accounts/", include(account_urls)),
    path("profile/", profile.profile_page, name="profile"),
    path("profile/language/", profile.set_language, name="set_language"),
    path("", include("reports.urls")),
    path("", include("paylinks.urls")),
]

handler400 = "paylinks.api.errors.bad_request"

if settings.PAYLINKS_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
