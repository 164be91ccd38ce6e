"""What a link is made for: invoices (read live from Provet, as the reception page reads them),
the practice's departments, and clients for prepayments."""

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.provet import ProvetNotFound
from paylinks.api.access import practice_for, provet_number
from paylinks.api.errors import invalid
from paylinks.api.schema import PRACTICE, PROVET_ID, problems
from paylinks.api.serializers import (
    ClientSerializer,
    DepartmentSerializer,
    InvoiceDetailSerializer,
    InvoiceSerializer,
)
from paylinks.invoice_search import search_clients, search_invoices
from paylinks.invoices import refresh_invoice


def _query(request: Request, empty: str) -> str:
    """What was typed into the search, without characters no name or number has (NUL).
    `empty`: what to say when nothing was."""
    text = "".join(c for c in request.query_params.get("q", "") if c.isprintable()).strip()
    if not text:
        raise invalid({"q": [empty]})
    return text


@extend_schema(
    operation_id="invoices_search",
    summary="Find invoices",
    description="Invoices whose number is `q` (`10030` or `NV-10030`), or whose client's name "
    "contains it, newest first, at most 20: read live from Provet, as the reception page "
    "searches.",
    parameters=[
        PRACTICE,
        OpenApiParameter("q", str, required=True, description="An invoice number or a name."),
    ],
    responses={200: InvoiceSerializer(many=True), **problems(400, 404, 502, 503)},
    tags=["invoices"],
)
@api_view(["GET"])
def invoices(request: Request) -> Response:
    query = _query(request, _("Type an invoice number or a client's name to search for."))
    practice = practice_for(request)
    found = search_invoices(practice, query)
    return Response(InvoiceSerializer(found, many=True, context={"request": request}).data)


@extend_schema(
    operation_id="invoices_retrieve",
    summary="An invoice",
    description="The invoice read afresh from Provet: its due sum, what is still free for a "
    "new link, why no link can be made (`problem`), and its links waiting for payment "
    "(links made in Provet itself are found and shown too).",
    parameters=[PROVET_ID, PRACTICE],
    responses={200: InvoiceDetailSerializer, **problems(404, 502, 503)},
    tags=["invoices"],
)
@api_view(["GET"])
def invoice(request: Request, provet_id: str) -> Response:
    number = provet_number(provet_id)
    practice = practice_for(request)
    try:
        found = refresh_invoice(practice, number)
    except ProvetNotFound:
        raise Http404(_("Provet Cloud has no such invoice.")) from None
    return Response(InvoiceDetailSerializer(found, context={"request": request}).data)


@extend_schema(
    operation_id="departments_list",
    summary="Departments",
    description="The practice's departments, as last synced from Provet. Links can only be "
    "made where `allow_nhp_processing` (Provet Pay) is on.",
    parameters=[PRACTICE],
    responses={200: DepartmentSerializer(many=True), **problems(404)},
    tags=["departments"],
)
@api_view(["GET"])
def departments(request: Request) -> Response:
    practice = practice_for(request)
    return Response(DepartmentSerializer(practice.departments.all(), many=True).data)


@extend_schema(
    operation_id="clients_search",
    summary="Find clients",
    description="Clients whose name holds every word of `q`, for a prepayment: read live from "
    "Provet, as the prepayment page searches.",
    parameters=[PRACTICE, OpenApiParameter("q", str, required=True, description="A name.")],
    responses={200: ClientSerializer(many=True), **problems(400, 404, 502, 503)},
    tags=["clients"],
)
@api_view(["GET"])
def clients(request: Request) -> Response:
    query = _query(request, _("Type a client's name to search for."))
    practice = practice_for(request)
    with practice.provet_client() as provet:
        found = search_clients(provet, query)
    return Response(ClientSerializer(found, many=True).data)
