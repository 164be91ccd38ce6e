"""The REST API of one installation: `/<provet_id>/api/0.1/<resource>/` and the token endpoint."""

import json

from django.http import HttpRequest, HttpResponse, JsonResponse

from sandbox import auth, filters, links, paging, responses, validation
from sandbox.edge import provet_endpoint
from sandbox.models import Installation
from sandbox.resources import RESOURCES, Context, Resource

PERMISSION_DENIED = "You do not have permission to perform this action."


@provet_endpoint(authenticated=False)
def token(request: HttpRequest, installation: Installation) -> HttpResponse:
    if request.method != "POST":
        return responses.method_not_allowed(request.method or "", {"POST"})
    grant_type = request.POST.get("grant_type", "")
    if not grant_type:
        return JsonResponse(
            {"error": "invalid_request", "error_description": "Request is missing grant type."},
            status=400,
        )
    if grant_type != "client_credentials":
        return JsonResponse({"error": "unsupported_grant_type"}, status=400)
    client_id, client_secret = auth.client_credentials(request)
    if client_id != installation.client_id or client_secret != installation.client_secret:
        return JsonResponse({"error": "invalid_client"}, status=401)
    scope = request.POST.get("scope", auth.SCOPE)
    if scope != auth.SCOPE:
        return JsonResponse({"error": "invalid_scope"}, status=400)
    response = JsonResponse(auth.issue_token(installation))
    response["Cache-Control"] = "no-store"
    return response


@provet_endpoint()
def collection(request: HttpRequest, installation: Installation, resource: str) -> HttpResponse:
    kind = RESOURCES.get(resource)
    if kind is None:
        return responses.not_found()
    if request.method not in kind.methods:
        return responses.method_not_allowed(request.method or "", kind.methods)
    if request.method == "POST":
        return _create_link(request, installation)
    if resource == "postransaction":
        links.refresh_due(installation)
    ctx = _context(request, installation)
    try:
        rows = filters.apply(kind.rows(installation), kind, request.GET).order_by("id")
        return JsonResponse(paging.paginate(request, rows, lambda row: kind.serialize(row, ctx)))
    except filters.FilterError as exc:
        return responses.field_errors(exc.errors)
    except paging.InvalidPage:
        return responses.detail(404, "Invalid page.")


@provet_endpoint()
def item(request: HttpRequest, installation: Installation, resource: str, pk: int) -> HttpResponse:
    kind = RESOURCES.get(resource)
    if kind is None:
        return responses.not_found()
    if request.method not in kind.item_methods:
        return responses.method_not_allowed(request.method or "", kind.item_methods)
    if resource == "postransaction":
        links.refresh_due(installation)
    row = _find(kind, installation, pk)
    if row is None:
        return responses.not_found()
    if request.method == "DELETE":
        try:
            links.delete(row)
        except links.CannotDelete as exc:
            return responses.field_errors({"non_field_errors": [str(exc)]})
        except links.AlreadyGone:
            return responses.not_found()
        return HttpResponse(status=204)
    return JsonResponse(kind.serialize(row, _context(request, installation)))


def _create_link(request: HttpRequest, installation: Installation) -> HttpResponse:
    actor = installation.integration_user
    if actor is None or not actor.can_manage_invoices:
        return responses.detail(403, PERMISSION_DENIED)
    if "json" not in request.content_type:
        return responses.detail(415, f'Unsupported media type "{request.content_type}" in request.')
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return responses.detail(400, f"JSON parse error - {exc}")
    try:
        link = validation.validate(installation, data)
    except validation.Invalid as exc:
        return responses.field_errors(exc.errors)
    ctx = _context(request, installation)
    pt = links.create(installation, link, ctx.payer_url)
    row = _find(RESOURCES["postransaction"], installation, pt.pk)
    return JsonResponse(RESOURCES["postransaction"].serialize(row, ctx), status=201)


def _find(kind: Resource, installation: Installation, pk: int):
    return kind.rows(installation).filter(pk=pk).first()


def _context(request: HttpRequest, installation: Installation) -> Context:
    expose = {key.removeprefix("expose_") for key in request.GET if key.startswith("expose_")}
    return Context(request, installation, expose)
