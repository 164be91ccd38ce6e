"""The URLs of the sandbox served on its own (sandbox/server_settings.py): only it, at /sandbox/."""

from django.urls import include, path

urlpatterns = [path("sandbox/", include("sandbox.urls"))]
