"""PayLinks settings: one file, configured by environment variables (see README)."""

from datetime import timedelta
from pathlib import Path

from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_choice,
    env_fernet_key,
    env_int,
    env_list,
    env_str,
    parse_database_url,
    parse_email_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"

PAYLINKS_ENV = env_choice("PAYLINKS_ENV", "development", {"development", "production"})
PRODUCTION = PAYLINKS_ENV == "production"

DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
if PRODUCTION and (SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured("Set SECRET_KEY to a long random value in production")

DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG cannot be on in production: it shows secrets on error pages")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "Set ALLOWED_HOSTS in production to the host names PayLinks is served at"
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# The Provet Cloud stand-in, mounted at /sandbox/. Never on in production.
PAYLINKS_SANDBOX = env_bool("PAYLINKS_SANDBOX", not PRODUCTION)
if PRODUCTION and PAYLINKS_SANDBOX:
    raise ImproperlyConfigured("PAYLINKS_SANDBOX cannot be on in production")

# Fernet key that encrypts practice credentials at rest. In development it is derived from
# SECRET_KEY so the demo works out of the box; production must set its own.
PAYLINKS_ENCRYPTION_KEY = env_fernet_key("PAYLINKS_ENCRYPTION_KEY")
if PRODUCTION and not PAYLINKS_ENCRYPTION_KEY:
    raise ImproperlyConfigured("Set PAYLINKS_ENCRYPTION_KEY in production")

# Seconds the Provet client waits for a connection and for an answer.
PROVET_CONNECT_TIMEOUT = env_int("PROVET_CONNECT_TIMEOUT", 5, minimum=1)
PROVET_READ_TIMEOUT = env_int("PROVET_READ_TIMEOUT", 20, minimum=1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_api_key",  # its AbstractAPIKey; PayLinks' own keys are paylinks.api's
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: nothing from a CDN
    "django_htmx",
    "axes",
    "csp",
    "clinics",
    "paylinks",
    "paylinks.api",  # the REST API, /api/v1/ (app label paylinks_api)
    "reports",
    "django_q",  # after paylinks, whose `qcluster` takes the place of its own
]
if PAYLINKS_SANDBOX:
    INSTALLED_APPS += ["sandbox", "demo"]  # development only: the Provet stand-in, the demo

MIDDLEWARE = [
    "config.logs.RequestLogMiddleware",  # outermost: every request once, its final status
    # First, so that its headers are on every response, HTTPS redirects and static files too.
    "config.security.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the browser's language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clinics.languages.ProfileLanguageMiddleware",  # the person's own choice over the browser's
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "clinics.budget.PagePriorityMiddleware",  # a person waits: Provet reads come first
    # Last, as django-axes asks: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "paylinks.context_processors.practices",
            ],
        },
    },
]

DATABASES = {
    "default": parse_database_url(env_str("DATABASE_URL", "sqlite:///db.sqlite3"), BASE_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes) on every login form, /accounts/login/ and /admin/login/: after
# LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair is refused,
# even with the right password, for LOGIN_LOCKOUT_MINUTES counted from the last failure before
# the lock. Attempts are kept in the database, so every web process sees the same count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Trying again while locked out does not restart the wait, so "within N minutes" stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_VERBOSE = False  # no banner on every start; lockouts are still logged
# Proxies in front of PayLinks that append the caller's address to X-Forwarded-For. With 0 the
# connecting address counts, which behind a proxy is the proxy's: set it to throttle by client.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Sessions suit a shared desk PC: they end when the browser closes, and after SESSION_HOURS.
SESSION_COOKIE_AGE = env_int("SESSION_HOURS", 12, minimum=1) * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Email, and with it password reset (config/urls.py), only when EMAIL_URL says how to send it.
EMAIL_URL = env_str("EMAIL_URL")
PASSWORD_RESET = bool(EMAIL_URL)
if EMAIL_URL:
    email = parse_email_url(EMAIL_URL)
    EMAIL_BACKEND = email["BACKEND"]
    EMAIL_HOST, EMAIL_PORT = email["HOST"], email["PORT"]
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = email["USER"], email["PASSWORD"]
    EMAIL_USE_TLS, EMAIL_USE_SSL = email["USE_TLS"], email["USE_SSL"]
elif not PRODUCTION:
    # Development: e-mails (the weekly summary) are printed where the worker runs.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
SENDS_EMAIL = bool(EMAIL_URL) or not PRODUCTION
EMAIL_TIMEOUT = 20  # seconds: a mail server that hangs must not hold a worker (or a lock)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "PayLinks <paylinks@localhost>")
# Where people open PayLinks, for the links in e-mails (the weekly summary).
PAYLINKS_SITE_URL = env_str("PAYLINKS_SITE_URL", "" if PRODUCTION else "http://127.0.0.1:8000")
if PRODUCTION and EMAIL_URL and not PAYLINKS_SITE_URL.startswith("https://"):
    raise ImproperlyConfigured("Set PAYLINKS_SITE_URL to PayLinks' https:// address for e-mails")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Content Security Policy (django-csp): no inline script or style, nothing from other sites.
# NONCE appears in the header only on a page that uses request.csp_nonce (the sandbox's pages).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Browser features no PayLinks page uses, refused on every response (config/security.py).
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)

LANGUAGE_CODE = "en-gb"
# The languages of the staff pages: a person's own choice (clinics.Profile.language), else the
# browser's (LocaleMiddleware). Compiled by `make messages` (Babel), never at request time.
LANGUAGES = [("en-gb", "English"), ("fi", "Suomi"), ("sv", "Svenska")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# The REST API (paylinks/api/, README "REST API"): API keys or the browser's session (with
# CSRF), JSON in and out, every error as application/problem+json, a rate limit per key.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "paylinks.api.auth.APIKeyAuthentication",  # first: a missing login answers 401
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["paylinks.api.auth.PerKeyThrottle"],
    "EXCEPTION_HANDLER": "paylinks.api.errors.problem_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# Requests per minute one API key (or one signed-in person) may make; past it, 429 and
# Retry-After. Counted in the shared cache, so every process counts the same.
API_REQUESTS_PER_MINUTE = env_int("API_REQUESTS_PER_MINUTE", 120, minimum=1)

# OpenAPI 3 at /api/schema/, Swagger UI at /api/docs/ (paylinks/api/schema.py).
SPECTACULAR_SETTINGS = {
    "TITLE": "PayLinks API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "paylinks.api.schema.postprocess",
    ],
}

# django-q2: Redis when REDIS_URL is set, the database otherwise.
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER: dict = {
    "name": "paylinks",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": 60,
    "retry": 90,  # larger than timeout, so a slow task is not picked up twice
    "max_attempts": 3,
    "catch_up": False,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Pauses, throttles and webhook coalescing must hold across every process and machine, so the
# cache is shared: Redis when REDIS_URL is set, a database table otherwise (made by migration
# paylinks 0009), never the per-process default.
CACHE_TABLE = "paylinks_cache"
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "paylinks",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": CACHE_TABLE}
    )
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# One line per request and per task (config/logs.py), never a secret, a webhook secret, a query
# string or a request body: JSON lines in production, plain text in development.
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "plain", {"json", "plain"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "config.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "config.logs.JSONFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx logs every URL with its query string; the Provet client logs its calls instead.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # runserver's access lines repeat config.logs' request lines, query strings included;
        # through the console handler its warnings are redacted like every other line.
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
