"""Production refuses to start with development defaults (settings run in a fresh interpreter)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "x" * 50
FERNET_KEY = "pcdkPjs5xvZyZmRdbSK-XsbUOgL6uB1ePdz8hIEbdOQ="


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PAYLINKS", "SECRET"))}
    clean.pop("DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DEBUG, s.PAYLINKS_SANDBOX)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_the_default_secret_key():
    result = load_settings(PAYLINKS_ENV="production", PAYLINKS_ENCRYPTION_KEY=FERNET_KEY)
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_production_needs_its_own_encryption_key():
    result = load_settings(PAYLINKS_ENV="production", SECRET_KEY=GOOD_KEY)
    assert result.returncode != 0
    assert "PAYLINKS_ENCRYPTION_KEY" in result.stderr


def test_production_never_serves_the_sandbox():
    result = load_settings(
        PAYLINKS_ENV="production",
        SECRET_KEY=GOOD_KEY,
        PAYLINKS_ENCRYPTION_KEY=FERNET_KEY,
        PAYLINKS_SANDBOX="on",
    )
    assert result.returncode != 0
    assert "PAYLINKS_SANDBOX cannot be on" in result.stderr


def test_production_with_its_own_secrets_starts_with_debug_and_sandbox_off():
    result = load_settings(
        PAYLINKS_ENV="production", SECRET_KEY=GOOD_KEY, PAYLINKS_ENCRYPTION_KEY=FERNET_KEY
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_development_has_debug_and_the_sandbox_on():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
