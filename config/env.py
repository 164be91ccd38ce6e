"""Small typed readers for environment variables.

Each one refuses a value it cannot understand with ImproperlyConfigured, so a typo in a
deployment fails at start-up instead of behaving differently from what was meant.
"""

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
import dj_email_url
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
    # scheme: (default port, STARTTLS, TLS from the start)
    "smtp": (25, False, False),
    "smtp+tls": (587, True, False),
    "smtp+ssl": (465, False, True),
    "console": (0, False, False),
}


def parse_email_url(url: str) -> dict[str, Any]:
    """Turn `smtp+tls://user:password@host:587` (or smtp://, smtp+ssl://, console://) into the
    parts of Django's EMAIL_* settings.

    dj-email-url reads the URL (host, port, unquoted credentials, backend). PayLinks keeps its own
    scheme names, which say the TLS mode, and refuses what dj-email-url would take quietly: its
    smtps:// means STARTTLS, not TLS from the start, and an smtp:// without a host is localhost
    to it. The URL's query string is not read (dj-email-url would take TLS from it).
    """
    parts = urlsplit(url)
    if parts.scheme not in EMAIL_SCHEMES:
        allowed = ", ".join(f"{scheme}://" for scheme in EMAIL_SCHEMES)
        raise ImproperlyConfigured(f"EMAIL_URL must start with one of {allowed}")
    default_port, use_tls, use_ssl = EMAIL_SCHEMES[parts.scheme]
    if parts.scheme != "console" and not parts.hostname:
        raise ImproperlyConfigured(f"EMAIL_URL {parts.scheme}:// must name a host")
    as_read = parts._replace(scheme="console" if parts.scheme == "console" else "smtp", query="")
    try:
        email = dj_email_url.parse(as_read.geturl())
    except ValueError:
        raise ImproperlyConfigured("EMAIL_URL has a port that is not a number") from None
    return {
        "BACKEND": email["EMAIL_BACKEND"],
        "HOST": email["EMAIL_HOST"] or "",
        "PORT": email["EMAIL_PORT"] if parts.port else default_port,
        "USER": email["EMAIL_HOST_USER"] or "",
        "PASSWORD": email["EMAIL_HOST_PASSWORD"] or "",
        "USE_TLS": use_tls,
        "USE_SSL": use_ssl,
    }


def parse_database_url(url: str, base_dir: Path) -> dict[str, Any]:
    """Turn `sqlite:///path` or `postgres://user:pass@host:port/name` into a DATABASES entry.

    dj-database-url reads the URL; PayLinks adds its settings for each database, takes only the
    two it runs on, and refuses a URL that names no database (dj-database-url would give SQLite
    in memory, or an empty name).
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        config = _read_database_url(url)
        name = config.get("NAME", "")
        if config.get("HOST") or name in {"", ":memory:"}:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no SQLite file")
        file = base_dir / name  # relative to the project; an absolute path stays as it is
        config["NAME"] = str(file)
        # The web server and the worker write to one file: each transaction takes the write
        # lock when it begins (so what it checks still holds when it writes, as a row lock
        # would on PostgreSQL), and the others wait for it instead of failing. (These replace
        # any options in the URL's query string.)
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # Tests use a file too, so that requests in threads really meet (tests/test_races.py).
        config["TEST"] = {"NAME": str(file.with_name(f"test_{file.stem}.sqlite3"))}
        return config
    if scheme in {"postgres", "postgresql"}:
        # Connections are kept for a minute, and checked before a request reuses one.
        config = _read_database_url(url, conn_max_age=60, conn_health_checks=True)
        if not config.get("NAME"):
            raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database")
        config["PORT"] = str(config.get("PORT", ""))
        config.setdefault("OPTIONS", {})  # the query string: ?sslmode=require
        return config
    raise ImproperlyConfigured(
        f"DATABASE_URL must start with sqlite:// or postgres://, not {scheme or url!r}://"
    )


def _read_database_url(url: str, **settings: Any) -> dict[str, Any]:
    try:
        return dict(dj_database_url.parse(url, **settings))
    except ValueError as error:  # dj-database-url's ParseError: a port that is not a number
        raise ImproperlyConfigured(f"DATABASE_URL can't be read: {error}") from None
