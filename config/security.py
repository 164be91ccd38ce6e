"""What every response and every login goes through besides the views: headers and throttling.

The Content-Security-Policy comes from django-csp and the login throttle from django-axes, both
configured in config/settings.py; this module holds the small pieces they leave to the project.
"""

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers


class SecurityHeadersMiddleware:
    """Permissions-Policy on every response; no-store on everything a signed-in person is shown.

    It sits outside WhiteNoise, so static files get the Permissions-Policy too but stay cacheable:
    WhiteNoise answers them before AuthenticationMiddleware gives the request a user.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # Invoices, clients' names and CSV exports stay out of the browser's and any
            # proxy's cache, where the next person at a shared desk PC could find them.
            add_never_cache_headers(response)
        return response


def client_ip(request: HttpRequest) -> str | None:
    """The address login throttling counts: the caller's, as the nearest trusted proxy saw it.

    Each of TRUSTED_PROXY_COUNT proxies appends the address it was called from to
    X-Forwarded-For; what a caller put there themselves comes before those and is ignored.
    """
    remote = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if not hops:
        return remote
    forwarded = [
        address.strip()
        for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if address.strip()
    ]
    if len(forwarded) < hops:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-hops]))
    except ValueError:
        return remote


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The page a locked-out person sees instead of the login form's answer."""
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": settings.LOGIN_LOCKOUT_MINUTES, "attempts": settings.LOGIN_FAILURE_LIMIT},
        status=429,
    )
