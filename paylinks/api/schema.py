"""The API's OpenAPI description (drf-spectacular): what every operation shares, and the docs.

/api/schema/ serves the OpenAPI 3 document, /api/docs/ Swagger UI from drf-spectacular-sidecar's
files (nothing from a CDN). Swagger UI's start-up script is served as a file of its own
(SpectacularSwaggerSplitView), so the page needs no inline script under the
Content-Security-Policy; its one inline stylesheet carries the request's CSP nonce
(templates/api/swagger_ui.html).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularSwaggerSplitView

from paylinks.api.errors import PROBLEM_JSON, PROBLEMS, URN
from paylinks.api.serializers import ProblemSerializer

IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(required: bool) -> OpenApiParameter:
    return OpenApiParameter(
        IDEMPOTENCY_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=required,
        description=(
            "Any unique text of up to 255 printable ASCII characters (a UUID is good). The same "
            "key with the same request within 24 hours answers as the first request did, "
            "without doing anything again; with another request, 422. "
            + ("Required." if required else "Optional; recommended when retrying.")
        ),
    )


LINK_CODE = OpenApiParameter(
    "code", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The link's code."
)
PROVET_ID = OpenApiParameter(
    "provet_id", int, OpenApiParameter.PATH, description="Provet's id of the invoice."
)

PRACTICE = OpenApiParameter(
    "practice",
    OpenApiTypes.UUID,
    OpenApiParameter.QUERY,
    required=False,
    description="The practice (its code); the caller's own when left out. "
    "Another practice's code is a 404.",
)

WHAT_STATUS_MEANS = {
    400: "Invalid fields (`errors` says which), or a missing or unusable Idempotency-Key.",
    401: "No API key or session, or an unknown, revoked or expired key.",
    403: "The key's role may not do this (the summary is for managers), or a session request "
    "without its CSRF token.",
    404: "Nothing there, or outside the caller's practices.",
    409: "The link is not in a state that allows this, or the first request with this "
    "Idempotency-Key is still running (Retry-After).",
    415: "The body is not JSON (send Content-Type: application/json).",
    422: "The Idempotency-Key was used for another request.",
    429: "Too many requests for this API key: wait Retry-After seconds.",
    502: "Provet Cloud refused the request.",
    503: "Provet Cloud is busy or can't be reached; nothing was done (Retry-After when known).",
}


def problems(*statuses: int, post: bool = False) -> dict:
    """The error answers of an operation, each problem+json (always with 401 and 429; a POST
    may also get 400 for a body that isn't JSON, 403 without its CSRF token, 415)."""
    codes = sorted({*statuses, 401, 429, *((400, 403, 415) if post else ())})
    return {
        (code, PROBLEM_JSON): OpenApiResponse(
            ProblemSerializer, description=WHAT_STATUS_MEANS[code]
        )
        for code in codes
    }


def problem_example(name: str, detail: str, **members) -> OpenApiExample:
    status, title = PROBLEMS[name]
    return OpenApiExample(
        name,
        value={"type": URN + name, "title": title, "status": status, "detail": detail, **members},
        response_only=True,
        status_codes=[str(status)],
    )


DESCRIPTION = """
The API of PayLinks: make Provet Pay payment links for invoices and prepayments, follow them,
and read a practice's figures. It does what the reception pages do, with the same rules
(the same forms check every field), for a clinic's other systems: a booking site, a kiosk, an
accounting tool.

## Authentication

- **API key**: `Authorization: Api-Key <key>`. A key belongs to one practice and carries a role
  (reception, or manager, who may also read the summary). Admins make keys in admin
  (*API keys*) or with `manage.py create_api_key`; a key is shown once, stored only as a hash,
  and can expire or be revoked.
- **Session**: a person signed in to PayLinks in the browser, with the CSRF token
  (`X-CSRFToken`) on POSTs.

Everything is scoped as the pages are: a caller sees its own practices only. Anything else is a
404, never a 403. Each API key (or person) may make `API_REQUESTS_PER_MINUTE` requests a minute
(120 by default); past that, 429 with `Retry-After`.

## Idempotency

Making a link takes an `Idempotency-Key` header, and every action on a link may. For 24 hours,
for the same API key (or person): the same key with the same request answers as the first one
did, status and body, with `Idempotent-Replayed: true`, and does nothing again; the same key
with another method, path or body is a 422; while the first request with a key is still
running, the others get a 409 with `Retry-After`. A request refused before it did anything
(invalid fields, nothing there, Provet busy) leaves its key unused, so it can be corrected and
sent again with the same key.

## Errors

Every error is `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, and
for invalid fields `errors` (`{"field": ["message"]}`, `non_field_errors` for the request as a
whole; Provet Cloud's own refusals are mapped onto the same fields). Types of PayLinks' own:

- `urn:paylinks:problem:invalid-request` (400): invalid fields.
- `urn:paylinks:problem:idempotency-key-missing` / `-invalid` (400).
- `urn:paylinks:problem:conflict` (409): the link can't do this now (already paid, cancelled...).
- `urn:paylinks:problem:already-replaced` (409): a link was already made in this one's place;
  `replaced_by` is its code.
- `urn:paylinks:problem:idempotency-key-in-use` (409), `idempotency-key-reused` (422).
- `urn:paylinks:problem:provet-refused` (502), `provet-unavailable` (503).

Plain HTTP errors (401, 403, 404, 405, 415, 429) have the type `about:blank`.

## Amounts and statuses

Amounts are decimal strings in the practice's currency. Statuses come in Provet's codes
(`payment_status`: 1 pending, 2 failed, 3 expired, 4 aborted, 5 accepted, i.e. paid;
`delivery_status`: 1 not sent, 2 sent, 3 failed) and in words, as the link page says them
(`status_words`, `delivery_words`). A link never asks for more than its invoice still has due,
counting the invoice's other links waiting for payment.
"""


def postprocess(result: dict, generator, request, public) -> dict:
    """What the operations' decorators can't say: the description, and the headers of answers."""
    result["info"]["description"] = DESCRIPTION.strip()
    headers = {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "string"},
        },
        "Location": {"description": "The new link in the API.", "schema": {"type": "string"}},
        "Idempotent-Replayed": {
            "description": "`true` when this is the stored answer to an earlier request with "
            "the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    }
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            idempotent = any(
                parameter.get("name") == IDEMPOTENCY_HEADER
                for parameter in operation.get("parameters", [])
            )
            for status, response in operation.get("responses", {}).items():
                named = response.setdefault("headers", {})
                if status in {"429", "503", "409"}:
                    named["Retry-After"] = headers["Retry-After"]
                if status == "201":
                    named["Location"] = headers["Location"]
                if idempotent and method == "post":
                    named["Idempotent-Replayed"] = headers["Idempotent-Replayed"]
                if not named:
                    del response["headers"]
    # Request bodies take exactly the fields documented: anything else is refused (400).
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI at /api/docs/, with no inline script (see the module's docstring)."""

    template_name = "api/swagger_ui.html"
    title = "PayLinks API"
