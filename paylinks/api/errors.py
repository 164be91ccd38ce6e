"""Every API error as application/problem+json (RFC 9457): type, title, status, detail, and the
field errors under `errors`.

A problem of PayLinks' own has a `urn:paylinks:problem:<name>` type (PROBLEMS lists them, and the
API description in paylinks/api/schema.py explains each); plain HTTP errors (401, 403, 404,
405, 415, 429) are `about:blank`, titled with the status's name.
"""

import math
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from clinics.provet import (
    ProvetError,
    ProvetNotFound,
    ProvetRateLimited,
    ProvetUnavailable,
)
from clinics.provet.errors import explain
from paylinks.create import LinkNotCreated

PROBLEM_JSON = "application/problem+json"
URN = "urn:paylinks:problem:"

# name: (status, title). The API description lists them with what each means.
PROBLEMS: dict[str, tuple[int, str | Promise]] = {
    "invalid-request": (400, gettext_lazy("The request has invalid fields")),
    "idempotency-key-missing": (400, gettext_lazy("This request needs an Idempotency-Key header")),
    "idempotency-key-invalid": (400, gettext_lazy("The Idempotency-Key header is not usable")),
    "conflict": (409, gettext_lazy("The link is not in a state that allows this")),
    "already-replaced": (409, gettext_lazy("Someone already made a link in this one's place")),
    "idempotency-key-in-use": (
        409,
        gettext_lazy("A request with this Idempotency-Key is still running"),
    ),
    "idempotency-key-reused": (
        422,
        gettext_lazy("This Idempotency-Key was used for another request"),
    ),
    "provet-refused": (502, gettext_lazy("Provet Cloud refused the request")),
    "provet-unavailable": (503, gettext_lazy("Provet Cloud is busy or can't be reached")),
}


class Problem(exceptions.APIException):
    """A problem of PayLinks' own, raised in a view and answered as problem+json.

    `spends_key`: whether an Idempotency-Key used for the request is spent by this answer.
    A refusal before anything was done (invalid fields, nothing there, Provet busy or out of
    reach before it was asked) leaves the key unused, so the same key can be sent again."""

    spends_key = True

    def __init__(
        self,
        name: str,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        spends_key: bool | None = None,
        **members: Any,
    ):
        self.name = name
        self.status_code, self.title = PROBLEMS[name]
        super().__init__(detail)
        self.message = detail
        self.errors = errors
        self.headers = headers or {}
        self.members = members
        if spends_key is not None:
            self.spends_key = spends_key

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": URN + self.name,
            "title": self.title,
            "status": self.status_code,
            "detail": self.message,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body | self.members


def invalid(errors: dict[str, list[str]], detail: str = "") -> Problem:
    """A 400 with field errors: the request can be corrected and sent again with its key."""
    return Problem(
        "invalid-request",
        detail or _("Some fields are not right: `errors` says which and why."),
        errors=errors,
        spends_key=False,
    )


def provet_problem(error: ProvetError, detail: str = "") -> Exception:
    """What Provet's failure means for the caller: 503 when waiting may help, else 502."""
    detail = detail or explain(error)
    if isinstance(error, ProvetNotFound):
        return exceptions.NotFound(detail)
    if isinstance(error, ProvetRateLimited):
        wait = str(max(1, math.ceil(error.retry_after)))
        return Problem(
            "provet-unavailable", detail, headers={"Retry-After": wait}, spends_key=False
        )
    if isinstance(error, ProvetUnavailable):
        return Problem("provet-unavailable", detail, spends_key=False)
    return Problem("provet-refused", detail)


def link_not_created(refused: LinkNotCreated, fields: dict[str, str]) -> Exception:
    """create_link's refusal: Provet's 400s and the amount rule at their fields (the names in
    `fields` map the form's onto the API's), Provet out of reach as 503, the rest a 409."""
    if refused.field_errors:
        errors: dict[str, list[str]] = {}
        for field, messages in refused.field_errors.items():
            errors.setdefault(fields.get(field, "non_field_errors"), []).extend(messages)
        return invalid(errors, refused.message)
    cause = refused.__cause__
    if isinstance(cause, ProvetError) and not isinstance(cause, ProvetNotFound):
        return provet_problem(cause, refused.message)
    return Problem("conflict", refused.message)


def problem_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's exception handler, answering problem+json. Anything it doesn't know stays a 500."""
    if isinstance(exc, ProvetError):
        exc = provet_problem(exc)
    if isinstance(exc, Problem):
        return problem_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or _("Not found."))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = invalid(field_errors(exc.detail)).body()
    else:
        response.data = {
            "type": "about:blank",
            "title": HTTPStatus(response.status_code).phrase,
            "status": response.status_code,
            "detail": _text(response.data.get("detail", "") if response.data else ""),
        }
    response.content_type = PROBLEM_JSON
    return response


def problem_response(problem: Problem) -> Response:
    return Response(
        problem.body(),
        status=problem.status_code,
        headers=problem.headers,
        content_type=PROBLEM_JSON,
    )


def field_errors(detail: Any) -> dict[str, list[str]]:
    """DRF's error detail, as {field: [messages]}; nested fields get dotted names."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for name, value in detail.items():
            for inner, messages in field_errors(value).items():
                key = str(name) if inner == "non_field_errors" else f"{name}.{inner}"
                flat.setdefault(key, []).extend(messages)
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {"non_field_errors": [_text(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            for inner, messages in field_errors(item).items():
                flat.setdefault(f"{index}.{inner}", []).extend(messages)
        return flat
    return {"non_field_errors": [_text(detail)]}


def _text(value: Any) -> str:
    return str(value)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a request it refuses before any view, e.g. a Host header that isn't one of
    ALLOWED_HOSTS): problem+json under /api/, as every API answer is; the HTML page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    body = {
        "type": "about:blank",
        "title": HTTPStatus.BAD_REQUEST.phrase,
        "status": HTTPStatus.BAD_REQUEST,
        "detail": str(exception),  # Django's own words: which header, field or limit
    }
    return JsonResponse(body, status=HTTPStatus.BAD_REQUEST, content_type=PROBLEM_JSON)
