from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path

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

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(account_urls)),
    path("", include("reports.urls")),
    path("", include("paylinks.urls")),
]

if settings.PAYLINKS_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
