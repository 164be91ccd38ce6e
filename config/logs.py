"""What PayLinks logs: one line per request and per task, as JSON in production (LOG_FORMAT).

Every line may carry `correlation_id` (a Provet call's X-Correlation-Id), `practice` (its public
code), `request_id` (shared by every line of one request, the Provet calls it made too), `task`,
`method`, `path`, `status`, `duration_ms`, `user` (an id, never an email) and `outcome`.

Never logged: a secret in a path (the webhook secret in /webhooks/provet/<secret>/, which
authenticates Provet, and the token of a password reset link), a query string (a search can hold a
client's name or phone number), a request body. Both formatters redact what any logger writes,
Django's own "Not Found: <path>" lines included.
"""

import datetime as dt
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from django.http import HttpRequest, HttpResponseBase

FIELDS = (
    "request_id",
    "correlation_id",
    "practice",
    "task",
    "method",
    "path",
    "status",
    "duration_ms",
    "user",
    "outcome",
)

SECRETS_IN_PATHS = [
    re.compile(r"(/webhooks/provet/)[^/\s\"'?]+"),
    # Django's reset/<uidb64>/<token>/, which redirects to reset/<uidb64>/set-password/.
    re.compile(r"(/reset/[^/\s\"'?]+/)(?!set-password\b)[^/\s\"'?]+"),
]
QUERY_STRING = re.compile(r"(/[^\s\"'?]*)\?[^\s\"']*")

# Fields that every line logged in the current request or task carries (see `bind`).
_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)

request_logger = logging.getLogger("paylinks.request")
task_logger = logging.getLogger("paylinks.task")

P = ParamSpec("P")
R = TypeVar("R")


def redact(text: str) -> str:
    """`text` without the secrets and the query strings of the paths in it."""
    for secret in SECRETS_IN_PATHS:
        text = secret.sub(r"\1…", text)
    return QUERY_STRING.sub(r"\1", text)


def bind(**fields: Any) -> None:
    """Add fields (e.g. `practice=code`) to every later line of the current request or task.

    Only inside one: the request's or the task's fields are dropped when it ends."""
    _context.set({**(_context.get() or {}), **fields})


@contextmanager
def _bound(*, inherit: bool, **fields: Any) -> Iterator[None]:
    """`fields` on every line logged inside; with `inherit`, the enclosing ones too."""
    token = _context.set({**((inherit and _context.get()) or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class PlainFormatter(logging.Formatter):
    """One human-readable line, for development."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for production."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get() or {}
        for field in FIELDS:
            value = getattr(record, field, context.get(field))
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        safe = {key: redact(v) if isinstance(v, str) else v for key, v in line.items()}
        return json.dumps(safe, default=str)


# The session's key for the practice a person chose to work in: written by paylinks.access and
# read here. It lives on this, the ground floor, so that config imports nothing of the apps.
PRACTICE_SESSION_KEY = "practice"


class RequestLogMiddleware:
    """One line per request: method, path (no query string), status, duration and user id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.monotonic()
        # A request starts afresh: one made to the in-process sandbox during a task or another
        # request is a request of its own.
        with _bound(inherit=False, request_id=uuid.uuid4().hex[:16]):
            response = self.get_response(request)
            fields: dict[str, Any] = {
                "method": request.method,
                "path": redact(request.path),
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            }
            user = getattr(request, "user", None)  # none on what WhiteNoise answers
            if user is not None and user.is_authenticated:
                fields["user"] = user.pk
            session = getattr(request, "session", None)
            chosen = session.get(PRACTICE_SESSION_KEY) if session is not None else None
            if chosen and "practice" not in (_context.get() or {}):
                # The practice the person chose to work in, unless the view bound the one
                # it worked on.
                fields["practice"] = chosen
            request_logger.info(
                "%s %s %s in %.0fms",
                request.method,
                fields["path"],
                response.status_code,
                fields["duration_ms"],
                extra=fields,
            )
        return response


def logged_task(task: Callable[P, R]) -> Callable[P, R]:
    """One line per run of a django-q2 task: its name, duration and outcome.

    A task that knows its practice says so with `bind(practice=practice.code)`."""

    @functools.wraps(task)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.monotonic()
        # Tests run tasks inside the request that queues them: those lines keep its request_id.
        with _bound(inherit=True, task=task.__name__):
            try:
                result = task(*args, **kwargs)
            except Exception as error:
                _log_task(logging.ERROR, task.__name__, started, f"failed: {type(error).__name__}")
                raise
            _log_task(logging.INFO, task.__name__, started, "ok" if result is None else result)
        return result

    return run


def _log_task(level: int, name: str, started: float, outcome: object) -> None:
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    task_logger.log(
        level,
        "task %s %s in %.0fms",
        name,
        outcome,
        duration_ms,
        extra={"duration_ms": duration_ms, "outcome": str(outcome)},
    )
