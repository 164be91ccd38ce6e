from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("paylinks.urls")),
]

if settings.PAYLINKS_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
