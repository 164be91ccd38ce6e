"""Production refuses to start with development defaults (settings run in a fresh interpreter)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import database_url

pytestmark = pytest.mark.slow  # each test loads the settings in a fresh interpreter

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "x" * 50
FERNET_KEY = "pcdkPjs5xvZyZmRdbSK-XsbUOgL6uB1ePdz8hIEbdOQ="
# Everything production needs; each test takes one thing away or gets one wrong.
PRODUCTION = {
    "PAYLINKS_ENV": "production",
    "SECRET_KEY": GOOD_KEY,
    "PAYLINKS_ENCRYPTION_KEY": FERNET_KEY,
    "ALLOWED_HOSTS": "paylinks.example.com",
}
OWN_VARIABLES = ("PAYLINKS", "SECRET", "DEBUG", "ALLOWED_HOSTS", "SESSION", "EMAIL", "LOGIN")


def load_settings(*names: str, **env: str) -> subprocess.CompletedProcess:
    """Import the settings with `env` as the only PayLinks variables; print the named settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    printed = ", ".join(f"s.{name}" for name in names or ("DEBUG", "PAYLINKS_SANDBOX"))
    return subprocess.run(
        [sys.executable, "-c", f"import config.settings as s; print({printed})"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def production(**changes: str) -> dict[str, str]:
    return {k: v for k, v in {**PRODUCTION, **changes}.items() if v is not None}


def test_production_refuses_the_default_secret_key():
    result = load_settings(**production(SECRET_KEY=None))
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_production_needs_its_own_encryption_key():
    result = load_settings(**production(PAYLINKS_ENCRYPTION_KEY=None))
    assert result.returncode != 0
    assert "Set PAYLINKS_ENCRYPTION_KEY" in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        "pcdkPjs5xvZyZmRdbSK-XsbUOgL6uB1ePdz8hIEbdO==",  # 31 bytes
        GOOD_KEY,  # long enough to pass for a secret, but not base64 of 32 bytes
    ],
)
def test_production_refuses_an_encryption_key_that_is_not_a_fernet_key(key):
    result = load_settings(**production(PAYLINKS_ENCRYPTION_KEY=key))
    assert result.returncode != 0
    assert "PAYLINKS_ENCRYPTION_KEY must be a Fernet key" in result.stderr
    assert key not in result.stderr, "the message must not repeat the secret"


def test_production_refuses_debug():
    result = load_settings(**production(DEBUG="on"))
    assert result.returncode != 0
    assert "DEBUG cannot be on in production" in result.stderr


@pytest.mark.parametrize("hosts", [None, "", " , "])
def test_production_refuses_to_start_without_allowed_hosts(hosts):
    result = load_settings(**production(ALLOWED_HOSTS=hosts))
    assert result.returncode != 0
    assert "Set ALLOWED_HOSTS in production" in result.stderr


def test_production_never_serves_the_sandbox():
    result = load_settings(**production(PAYLINKS_SANDBOX="on"))
    assert result.returncode != 0
    assert "PAYLINKS_SANDBOX cannot be on" in result.stderr


def test_production_with_its_own_secrets_starts_with_debug_and_sandbox_off():
    result = load_settings(**production())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_production_cookies_are_secure_and_kept_from_scripts():
    result = load_settings(
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        **production(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "Lax"]


def test_development_has_debug_and_the_sandbox_on():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_development_also_refuses_an_encryption_key_it_cannot_use():
    result = load_settings(PAYLINKS_ENCRYPTION_KEY="not-a-key")
    assert result.returncode != 0
    assert "PAYLINKS_ENCRYPTION_KEY must be a Fernet key" in result.stderr


def test_sessions_last_a_working_day_and_end_with_the_browser_by_default():
    result = load_settings("SESSION_COOKIE_AGE", "SESSION_EXPIRE_AT_BROWSER_CLOSE")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(12 * 60 * 60), "True"]


def test_session_length_and_browser_close_are_configurable():
    result = load_settings(
        "SESSION_COOKIE_AGE",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE",
        SESSION_HOURS="8",
        SESSION_EXPIRE_AT_BROWSER_CLOSE="off",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(8 * 60 * 60), "False"]


def test_login_throttling_is_configurable():
    result = load_settings(
        "AXES_FAILURE_LIMIT",
        "AXES_COOLOFF_TIME.total_seconds()",
        LOGIN_FAILURE_LIMIT="3",
        LOGIN_LOCKOUT_MINUTES="60",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3600.0"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SESSION_HOURS", "0", "SESSION_HOURS must be at least 1"),
        ("LOGIN_FAILURE_LIMIT", "five", "LOGIN_FAILURE_LIMIT must be a whole number"),
        ("EMAIL_URL", "smtp.example.com", "EMAIL_URL must start with one of"),
    ],
)
def test_a_setting_that_cannot_work_stops_start_up(variable, value, message):
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_email_and_password_reset_come_with_an_email_url():
    result = load_settings(
        "PASSWORD_RESET",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_USE_TLS",
        EMAIL_URL="smtp+tls://paylinks:s%40cret@mail.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "mail.example.com", "587", "True"]


def test_production_e_mail_needs_the_https_address_its_links_point_to():
    mail = "smtp+tls://paylinks:s%40cret@mail.example.com"
    refused = load_settings("PAYLINKS_SITE_URL", **production(EMAIL_URL=mail))
    assert refused.returncode != 0 and "PAYLINKS_SITE_URL" in refused.stderr
    result = load_settings(
        "PAYLINKS_SITE_URL",
        "SENDS_EMAIL",
        **production(EMAIL_URL=mail, PAYLINKS_SITE_URL="https://paylinks.example.com"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["https://paylinks.example.com", "True"]
    # Without e-mail nothing is sent, so no address is needed.
    assert load_settings("SENDS_EMAIL", **production()).stdout.split() == ["False"]


def test_without_an_email_url_there_is_no_password_reset():
    result = load_settings("PASSWORD_RESET")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


@pytest.mark.parametrize(
    ("redis", "backend"),
    [
        ("", "django.core.cache.backends.db.DatabaseCache"),
        ("redis://127.0.0.1:6379/0", "django.core.cache.backends.redis.RedisCache"),
    ],
)
def test_the_cache_is_shared_by_every_process_never_per_process_memory(redis, backend):
    env = {"REDIS_URL": redis} if redis else {}
    loaded = load_settings("CACHES['default']['BACKEND']", **production(**env))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == backend


def test_a_throttle_set_by_one_process_holds_in_another(transactional_db):
    from django.core.cache import cache

    assert cache.add("paylinks:test:shared", 1, 60)
    # A fresh interpreter: another process, reading the same database.
    from django.db import connection

    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; "
            "django.setup(); from django.core.cache import cache; "
            "print(cache.add('paylinks:test:shared', 2, 60))",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url(connection)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert other.stdout.strip().splitlines()[-1] == "False", other.stderr
