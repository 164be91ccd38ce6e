"""Small typed readers for environment variables.

Each one refuses a value it cannot understand with ImproperlyConfigured, so a typo in a
deployment fails at start-up instead of behaving differently from what was meant.
"""

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: set[str]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        allowed = ", ".join(sorted(choices))
        raise ImproperlyConfigured(f"{name} must be one of {allowed}, not {value!r}")
    return value


def env_fernet_key(name: str) -> str:
    """A Fernet key (32 url-safe base64-encoded bytes), or "" when unset."""
    value = os.environ.get(name, "").strip()
    if value:
        try:
            Fernet(value.encode())
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must be a Fernet key (32 url-safe base64-encoded bytes); make one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`'
            ) from None
    return value


EMAIL_SCHEMES = {
    # scheme: (backend, default port, STARTTLS, TLS from the start)
    "smtp": ("smtp", 25, False, False),
    "smtp+tls": ("smtp", 587, True, False),
    "smtp+ssl": ("smtp", 465, False, True),
    "console": ("console", 0, False, False),
}


def parse_email_url(url: str) -> dict:
    """Turn `smtp+tls://user:password@host:587` (or smtp://, smtp+ssl://, console://) into the
    parts of Django's EMAIL_* settings."""
    parts = urlsplit(url)
    if parts.scheme not in EMAIL_SCHEMES:
        allowed = ", ".join(f"{scheme}://" for scheme in EMAIL_SCHEMES)
        raise ImproperlyConfigured(f"EMAIL_URL must start with one of {allowed}")
    backend, default_port, use_tls, use_ssl = EMAIL_SCHEMES[parts.scheme]
    if backend == "smtp" and not parts.hostname:
        raise ImproperlyConfigured(f"EMAIL_URL {parts.scheme}:// must name a host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ImproperlyConfigured("EMAIL_URL has a port that is not a number") from None
    return {
        "BACKEND": f"django.core.mail.backends.{backend}.EmailBackend",
        "HOST": parts.hostname or "",
        "PORT": port,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "USE_TLS": use_tls,
        "USE_SSL": use_ssl,
    }


def parse_database_url(url: str, base_dir: Path) -> dict:
    """Turn `sqlite:///path` or `postgres://user:pass@host:port/name` into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path.lstrip("/")) if parts.netloc == "" else ""
        if not path:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no SQLite file")
        file = Path(path) if Path(path).is_absolute() else base_dir / path
        if url.startswith("sqlite:////"):
            file = Path("/" + path)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(file),
            # The web server and the worker write to one file: each transaction takes the write
            # lock when it begins (so what it checks still holds when it writes, as a row lock
            # would on PostgreSQL), and the others wait for it instead of failing.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # Tests use a file too, so that requests in threads really meet (tests/test_races.py).
            "TEST": {"NAME": str(file.with_name(f"test_{file.stem}.sqlite3"))},
        }
    if parts.scheme in {"postgres", "postgresql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL must start with sqlite:// or postgres://, not {parts.scheme or url!r}://"
    )
