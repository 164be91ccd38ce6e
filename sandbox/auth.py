"""OAuth2 client credentials and legacy API tokens, as Provet Cloud answers them."""

import base64
import binascii
import secrets
from datetime import timedelta
from urllib.parse import unquote

from django.http import HttpRequest

from sandbox import clock
from sandbox.models import AccessToken, Installation

TOKEN_LIFETIME = 36000  # seconds: Provet's access tokens live 10 hours
SCOPE = "restapi"


class NotAuthenticated(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def issue_token(installation: Installation) -> dict:
    token = AccessToken.objects.create(
        installation=installation,
        key=secrets.token_urlsafe(30),
        expires_at=clock.now() + timedelta(seconds=TOKEN_LIFETIME),
    )
    return {
        "access_token": token.key,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "scope": SCOPE,
    }


def client_credentials(request: HttpRequest) -> tuple[str, str]:
    """The client id and secret from HTTP Basic, else from the form body."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        client_id, _, client_secret = decoded.partition(":")
        return unquote(client_id), unquote(client_secret)
    return request.POST.get("client_id", ""), request.POST.get("client_secret", "")


def authenticate(request: HttpRequest, installation: Installation) -> None:
    """Raise NotAuthenticated unless the request carries a live token of this installation."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if not header:
        raise NotAuthenticated("Authentication credentials were not provided.")
    if scheme == "Bearer" and key:
        token = AccessToken.objects.filter(key=key, installation=installation).first()
        if token is None:
            raise NotAuthenticated("Invalid token.")
        if token.expires_at <= clock.now():
            raise NotAuthenticated("Token has expired.")
        return
    if scheme == "Token" and key:
        if installation.legacy_token and secrets.compare_digest(key, installation.legacy_token):
            return
        raise NotAuthenticated("Invalid token.")
    raise NotAuthenticated("Invalid token header.")
