"""Provet Cloud credentials and OAuth2 client-credentials tokens.

Tokens live 10 hours and there is no refresh token for this grant, so a token is cached until
shortly before it expires and fetched again once when Provet answers 401.
"""

import hashlib
import threading
import time
from dataclasses import dataclass, field

OAUTH2 = "oauth2"
LEGACY_TOKEN = "token"

# Fetch a new token this many seconds before the old one expires.
EXPIRY_MARGIN = 300


@dataclass(frozen=True)
class Connection:
    """Where a Provet installation lives and how to authenticate to it."""

    root: str  # the installation's root, e.g. https://provetcloud.com/4/
    auth_scheme: str = OAUTH2
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    api_token: str = field(default="", repr=False)

    @property
    def api_base(self) -> str:
        return self.root.rstrip("/") + "/api/0.1/"

    @property
    def token_url(self) -> str:
        return self.root.rstrip("/") + "/oauth2/token/"

    @property
    def cache_key(self) -> str:
        # The secret takes part so that changed credentials never reuse an old token,
        # but only as a hash: the key itself may end up in a debugger or a log.
        secret = hashlib.sha256(self.client_secret.encode()).hexdigest()[:16]
        return f"{self.token_url}|{self.client_id}|{secret}"


@dataclass
class _CachedToken:
    value: str
    expires_at: float  # time.monotonic()


class TokenCache:
    """Process-wide cache of access tokens, shared by every client of the same installation."""

    def __init__(self) -> None:
        self._tokens: dict[str, _CachedToken] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > time.monotonic():
                return cached.value
            return None

    def put(self, key: str, value: str, expires_in: float) -> None:
        lifetime = max(expires_in - EXPIRY_MARGIN, expires_in / 2)
        with self._lock:
            self._tokens[key] = _CachedToken(value, time.monotonic() + lifetime)

    def forget(self, key: str, value: str | None = None) -> None:
        """Drop a token; with `value`, only if no other thread has already replaced it."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached and (value is None or cached.value == value):
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


tokens = TokenCache()
