"""Who calls the API: an API key (`Authorization: Api-Key <key>`) or a signed-in person's
session, and how often they may.

An API key acts as its own user, a member of the key's practice with the key's role
(paylinks/api/models.py), so every query below is scoped exactly as the pages scope a person.
"""

from typing import cast

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_api_key.permissions import KeyParser

from paylinks.api.models import APIKey

KEYWORD = "Api-Key"


class APIKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <prefix>.<secret>`. Unknown, revoked and expired keys get a 401;
    a request without the header is left to the session."""

    def authenticate(self, request: Request):
        key = KeyParser().get(request)
        if key is None:
            return None
        try:
            api_key = cast(APIKey, APIKey.objects.get_from_key(key))
        except APIKey.DoesNotExist:
            raise AuthenticationFailed(_("This API key is unknown or has been revoked.")) from None
        if api_key.has_expired:
            raise AuthenticationFailed(_("This API key has expired."))
        user = api_key.user
        if user is None or not user.is_active or not api_key.practice.is_active:
            raise AuthenticationFailed(_("This API key can no longer be used."))
        return user, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


def caller(request: Request) -> str:
    """Whose request it is, for rate limits and Idempotency-Keys: the API key, or the person."""
    if isinstance(request.auth, APIKey):
        return f"key:{request.auth.prefix}"
    return f"user:{request.user.pk}"


class PerKeyThrottle(SimpleRateThrottle):
    """API_REQUESTS_PER_MINUTE per API key or person, counted in the shared cache."""

    scope = "api"

    def get_rate(self) -> str:
        return f"{settings.API_REQUESTS_PER_MINUTE}/min"

    def get_cache_key(self, request: Request, view) -> str:
        who = caller(request) if request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": who}


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = APIKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "An API key of a practice, made in admin (*API keys*) or with "
                "`manage.py create_api_key`, sent as `Authorization: Api-Key <key>`."
            ),
        }
