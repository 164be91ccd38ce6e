"""The sandbox on its own: a Provet Cloud stand-in served as a separate process, for development
and CI only (the production smoke stage, `.ci/smoke`). Nothing in PayLinks imports this.

It serves only the sandbox, at /sandbox/ as in the demo, so an installation's address is
`http://HOST:PORT/sandbox/<provet_id>/`, from its own SQLite file (`SANDBOX_DATABASE`):

    export DJANGO_SETTINGS_MODULE=sandbox.server_settings SANDBOX_DATABASE=/tmp/sandbox.sqlite3
    python manage.py migrate && python manage.py sandbox_seed --json
    gunicorn config.wsgi --workers 1 --threads 16 --bind 127.0.0.1:8100

One process only (any number of threads): the rate-limit windows live in its memory.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "sandbox-only-secret-key-this-is-not-paylinks"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["sandbox"]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # the payer page's form
]
ROOT_URLCONF = "sandbox.server_urls"
APPEND_SLASH = False  # the sandbox answers 301 to a missing slash itself, as Provet does

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SANDBOX_DATABASE") or str(BASE_DIR / "sandbox.sqlite3"),
        # Threads of one process share the file: writers wait for each other, never fail.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-gb"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
