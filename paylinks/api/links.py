"""The API's links: list, make, read, and the actions on one (refresh, cancel, send again,
replace).

Making a link goes the pages' way: the link forms (paylinks/forms.py) check the fields, exactly
as the reception pages' forms do, and paylinks.create.create_link makes it (`LinkForm.draft`),
so every rule (amounts, never more than due, SMS needs a mobile number...) has one home.
"""

import datetime as dt
import math

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.models import Practice
from clinics.provet import ProvetError, ProvetNotFound
from clinics.provet.errors import explain
from paylinks.access import links_for
from paylinks.api.access import link_for, practice_for, reload
from paylinks.api.errors import (
    Problem,
    field_errors,
    invalid,
    link_not_created,
    provet_problem,
)
from paylinks.api.idempotency import idempotent
from paylinks.api.schema import LINK_CODE, PRACTICE, idempotency_key, problem_example, problems
from paylinks.api.serializers import (
    LINK_RELATED,
    LinkCreateSerializer,
    LinkOptionsSerializer,
    LinkPageSerializer,
    LinkSerializer,
    with_link_extras,
)
from paylinks.cancel import CannotCancel, cancel_link
from paylinks.create import AlreadyReplaced, LinkNotCreated, create_link, made_with
from paylinks.forms import InvoiceLinkForm, LinkForm, PrepaymentLinkForm
from paylinks.invoices import refresh_invoice
from paylinks.link_filters import LinkFilterForm
from paylinks.models import Invoice, PaymentLink
from paylinks.refresh import PracticePaused, check_now
from paylinks.send_again import send_again

# The link forms' fields the API names otherwise; the rest have the same names.
API_FIELDS = {
    "duration": "duration_minutes",
    "custom_minutes": "duration_minutes",
    "__all__": "non_field_errors",
    "form_token": "non_field_errors",
}
OPTIONS = (
    "amount",
    "delivery_method",
    "email",
    "phone",
    "description",
    "tokenize",
    "recurring_model",
)


class LinkCursor(CursorPagination):
    """Newest first; `cursor` from `next` or `previous` pages on, however links are added."""

    ordering = ("-created_at", "-pk")
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


LIST_FILTERS = [
    PRACTICE,
    OpenApiParameter("q", str, description="Search: client, invoice number, email or phone."),
    OpenApiParameter(
        "status",
        str,
        enum=[value for value, _label in LinkFilterForm.base_fields["status"].choices if value],  # type: ignore[attr-defined]
        description="open (waiting for payment), paid, expired, failed, cancelled, unknown "
        "(being checked), sent (made in Provet), outstanding (sent, still payable), "
        "delivery_failed: as the links page filters them.",
    ),
    OpenApiParameter("department", int, description="A department's Provet id."),
    OpenApiParameter("channel", int, enum=[0, 1, 2, 3], description="The delivery method."),
    OpenApiParameter(
        "created_by",
        str,
        description="The maker's username (an API key's is `api-key-<prefix>`); `(none)` for "
        "links nobody in PayLinks made.",
    ),
    OpenApiParameter("date", OpenApiTypes.DATE, description="Created on this day."),
    OpenApiParameter(
        "created_from", OpenApiTypes.DATE, description="Created on this day or later."
    ),
    OpenApiParameter(
        "created_to", OpenApiTypes.DATE, description="Created on this day or earlier."
    ),
    OpenApiParameter("cursor", str, description="From a page's `next` or `previous`."),
    OpenApiParameter("page_size", int, description="Links a page, at most 100 (25)."),
]

CREATE_EXAMPLES = [
    OpenApiExample(
        "An invoice's link, sent by SMS and email",
        value={
            "invoice": 10030,
            "amount": "120.50",
            "delivery_method": 1,
            "email": "anna@example.com",
            "phone": "+358401234567",
            "description": "Payment for invoice NV-10030",
        },
        request_only=True,
    ),
    OpenApiExample(
        "A prepayment, handed over at the desk",
        value={
            "client": 512,
            "department": 3,
            "amount": "80,00",
            "delivery_method": 0,
            "description": "Prepayment for surgery",
            "duration_minutes": 1440,
        },
        request_only=True,
    ),
    OpenApiExample(
        "In place of the invoice's link waiting for payment",
        value={
            "invoice": 10030,
            "replace": "0f6e2a8e-8f87-4b5c-9a41-6f7f3e1f1c11",
            "delivery_method": 2,
            "email": "anna@example.com",
            "description": "Payment for invoice NV-10030",
        },
        request_only=True,
    ),
    problem_example(
        "invalid-request",
        "Some fields are not right: `errors` says which and why.",
        errors={
            "phone": [
                "This is not a mobile number, so a text message can't reach it. Enter a mobile "
                "number (like +358 41 2345678), or choose email or don't send."
            ]
        },
    ),
    problem_example(
        "idempotency-key-reused",
        "This Idempotency-Key was used for POST /api/v1/links/ with another body. "
        "Use a new key for a new request.",
    ),
]


@extend_schema(
    methods=["GET"],
    operation_id="links_list",
    summary="List links",
    description="The practice's links, newest first, with the links page's filters.",
    parameters=LIST_FILTERS,
    responses={200: LinkPageSerializer, **problems(400, 404)},
    tags=["links"],
)
@extend_schema(
    methods=["POST"],
    operation_id="links_create",
    summary="Make a link",
    description=(
        "A link for an invoice (`invoice`) or a prepayment (`client` and `department`), "
        "checked by the same rules as the reception page's form and posted to Provet once. "
        "An invoice's links never ask for more than it still has due: a second full link is "
        "refused unless it is made in place of the one waiting (`replace`), which is then "
        "cancelled in Provet first."
    ),
    parameters=[idempotency_key(required=True)],
    request=LinkCreateSerializer,
    responses={201: LinkSerializer, **problems(400, 404, 409, 422, 502, 503, post=True)},
    examples=CREATE_EXAMPLES,
    tags=["links"],
)
@api_view(["GET", "POST"])
def links(request: Request) -> Response:
    if request.method == "POST":
        return idempotent(request, lambda key: _create(request, key), required=True)
    practice = practice_for(request)
    filters = LinkFilterForm(request.query_params, practice=practice)
    if not filters.is_valid():
        raise invalid(_form_errors(filters))
    chosen = filters.apply(links_for(request.user).filter(practice=practice))
    paginator = LinkCursor()
    page = paginator.paginate_queryset(
        with_link_extras(chosen.select_related(*LINK_RELATED)), request
    )
    data = LinkSerializer(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data)


@extend_schema(
    operation_id="links_retrieve",
    summary="A link",
    description="A link with its statuses (Provet's codes and in words), timeline and "
    "`replaced_by`.",
    parameters=[LINK_CODE],
    responses={200: LinkSerializer, **problems(404)},
    tags=["links"],
)
@api_view(["GET"])
def link(request: Request, code: str) -> Response:
    return _answer(request, link_for(request, code))


@extend_schema(
    operation_id="links_refresh",
    summary="Check now",
    description="Ask Provet about the link now, as *Check now* does: at most once every 5 "
    "seconds per link (a check within that answers the link as it stands; `checked_at` says "
    "when Provet was last asked), and not while Provet has asked PayLinks to wait (503).",
    parameters=[LINK_CODE, idempotency_key(required=False)],
    request=None,
    responses={200: LinkSerializer, **problems(404, 409, 422, 502, 503, post=True)},
    tags=["links"],
)
@api_view(["POST"])
def refresh(request: Request, code: str) -> Response:
    found = link_for(request, code)

    def check(key: str) -> Response:
        try:
            check_now(found, user=request.user)
        except PracticePaused as paused:
            raise Problem(
                "provet-unavailable",
                str(paused),
                headers={"Retry-After": _seconds_until(paused.until)},
                spends_key=False,
            ) from paused
        except ProvetError as error:
            raise provet_problem(error) from error
        return _answer(request, found)

    return idempotent(request, check)


@extend_schema(
    operation_id="links_cancel",
    summary="Cancel a link",
    description="Cancel the link in Provet so that it can no longer be paid. Only a link "
    "waiting for payment can be cancelled (409 otherwise, e.g. once paid).",
    parameters=[LINK_CODE, idempotency_key(required=False)],
    request=None,
    responses={200: LinkSerializer, **problems(404, 409, 422, 502, 503, post=True)},
    examples=[problem_example("conflict", "The client has already paid this link.")],
    tags=["links"],
)
@api_view(["POST"])
def cancel(request: Request, code: str) -> Response:
    found = link_for(request, code)

    def cancel_it(key: str) -> Response:
        try:
            cancel_link(found, user=request.user)
        except CannotCancel as refusal:
            raise Problem("conflict", str(refusal)) from refusal
        except ProvetError as error:
            detail = _("The link was not cancelled: %(reason)s") % {"reason": explain(error)}
            raise provet_problem(error, detail) from error
        return _answer(request, found)

    return idempotent(request, cancel_it)


@extend_schema(
    operation_id="links_send_again",
    summary="Send again",
    description="A new link for what is still due, in place of this one, with its options "
    "(a still-payable old link is cancelled first), as the link page's *Send again*. Once per "
    "link, whoever asks first: afterwards 409 `already-replaced` with `replaced_by`.",
    parameters=[LINK_CODE, idempotency_key(required=False)],
    request=None,
    responses={201: LinkSerializer, **problems(404, 409, 422, 502, 503, post=True)},
    examples=[
        problem_example(
            "already-replaced",
            "This link was already sent again: use the link in `replaced_by`.",
            replaced_by="5b0c2f5e-3f7b-4f43-9d39-0c4b2f4f9d55",
        )
    ],
    tags=["links"],
)
@api_view(["POST"])
def send_link_again(request: Request, code: str) -> Response:
    found = link_for(request, code)

    def again(key: str) -> Response:
        try:
            new = send_again(found, user=request.user, idempotency_key=key)
        except AlreadyReplaced as done:
            raise _already_replaced(
                done,
                _(
                    "This link was already sent again: use the link in `replaced_by`. Nothing "
                    "new was made."
                ),
            ) from done
        except LinkNotCreated as refused:
            raise link_not_created(refused, {}) from refused  # no fields were sent
        except ProvetError as error:
            detail = _("No new link was made: %(reason)s") % {"reason": explain(error)}
            raise provet_problem(error, detail) from error
        return _answer(request, new, created=True)

    return idempotent(request, again)


@extend_schema(
    operation_id="links_replace",
    summary="Replace a link",
    description="A new link for the invoice in place of this one (waiting for payment), as the "
    "invoice page's *In place of the link…*: this one is cancelled in Provet first, and if "
    "Provet doesn't confirm that, nothing new is made. Fields left out are this link's; the "
    "amount defaults to what is free once this link is cancelled.",
    parameters=[LINK_CODE, idempotency_key(required=False)],
    request=LinkOptionsSerializer,
    responses={201: LinkSerializer, **problems(404, 409, 422, 502, 503, post=True)},
    tags=["links"],
)
@api_view(["POST"])
def replace(request: Request, code: str) -> Response:
    found = link_for(request, code)
    return idempotent(request, lambda key: _replace(request, found, key))


def _create(request: Request, key: str) -> Response:
    shape = LinkCreateSerializer(data=request.data)
    if not shape.is_valid():
        raise invalid(field_errors(shape.errors))
    values = dict(shape.validated_data)
    practice = practice_for(request, values.pop("practice", None))
    made = made_with(key, practice, request.user)
    if made is not None:
        return _answer(request, made, created=True)  # a request that took over from one that died
    if "invoice" in values:
        invoice = _fresh_invoice(practice, values["invoice"])
        if values.get("replace"):
            replacing = invoice.links.filter(code=values["replace"]).first()
            values["replace"] = str(values["replace"])
        else:
            replacing = None
            values["replace"] = ""
        if "amount" not in values:
            # What is free; when nothing is, all that is due, so that the form says why not.
            values["amount"] = invoice.free_amount(replacing=replacing) or invoice.due_sum
        form: LinkForm = InvoiceLinkForm(
            _form_data(values, practice, key), practice=practice, invoice=invoice
        )
        return _answer(request, _make(request, form, invoice=invoice), created=True)
    try:
        with practice.provet_client() as provet:
            customer = provet.get_client(values["client"])
    except ProvetNotFound:
        raise NotFound(_("Provet Cloud has no such client.")) from None
    data = _form_data(values, practice, key)
    data["client"] = str(customer.id)
    # The form picks the department among the practice's (by row); an id it doesn't know is
    # refused there, a missing one too.
    data["department"] = ""
    if "department" in values:
        department = practice.departments.filter(provet_id=values["department"]).first()
        data["department"] = str(department.pk) if department else "-1"
    form = PrepaymentLinkForm(
        data, practice=practice, no_sms=customer.no_sms, no_email=customer.no_email
    )
    made = _make(request, form, client_id=customer.id, client_name=customer.name)
    return _answer(request, made, created=True)


def _replace(request: Request, old: PaymentLink, key: str) -> Response:
    shape = LinkOptionsSerializer(data=request.data)
    if not shape.is_valid():
        raise invalid(field_errors(shape.errors))
    if old.invoice is None:
        raise Problem(
            "conflict", _("A prepayment's link can't be replaced: send it again instead.")
        )
    made = made_with(key, old.practice, request.user)
    if made is not None:
        return _answer(request, made, created=True)
    invoice = _fresh_invoice(old.practice, old.invoice.provet_id)
    values = {
        "amount": invoice.free_amount(replacing=old) or invoice.due_sum,
        "delivery_method": old.delivery_method,
        "email": old.email,
        "phone": old.phone,
        "description": old.description,
        "duration_minutes": old.duration_minutes,
        "return_url": old.return_url,
        "tokenize": old.tokenize,
        "recurring_model": old.recurring_model,
        "consent": old.consent_recorded_at is not None,
        **shape.validated_data,
        "replace": str(old.code),
    }
    form = InvoiceLinkForm(
        _form_data(values, old.practice, key), practice=old.practice, invoice=invoice
    )
    if not form.is_valid() and "replace" in form.errors:
        raise Problem("conflict", " ".join(str(m) for m in form.errors["replace"]))
    return _answer(request, _make(request, form, invoice=invoice), created=True)


def _fresh_invoice(practice: Practice, provet_id: int) -> Invoice:
    """The invoice read afresh from Provet, as the invoice page reads it before its form."""
    try:
        return refresh_invoice(practice, provet_id)
    except ProvetNotFound:
        raise NotFound(_("Provet Cloud has no such invoice.")) from None


def _form_data(values: dict, practice: Practice, key: str) -> dict[str, str]:
    """The API's fields as the link form's fields, as the page's form would send them."""
    minutes = values.get("duration_minutes", practice.default_duration_minutes)
    data = {
        "form_token": key,
        "duration": "custom",  # any number of minutes; the form checks the range
        "custom_minutes": str(minutes),
        "return_url": values.get("return_url", practice.default_return_url),
        "replace": values.get("replace", ""),
    }
    for name in OPTIONS:
        if values.get(name) is not None:
            data[name] = str(values[name])
    if values.get("consent"):
        data["consent"] = "on"
    return data


def _make(request: Request, form: LinkForm, **subject) -> PaymentLink:
    """What reception's `_create` does, with its refusals as problems."""
    if not form.is_valid():
        raise invalid(_form_errors(form))
    try:
        return create_link(form.draft(request.user, **subject))
    except AlreadyReplaced as done:
        raise _already_replaced(
            done,
            _(
                "Someone has just made a link in place of that one: use the link in "
                "`replaced_by`. Nothing new was made."
            ),
        ) from done
    except LinkNotCreated as refused:
        fields = {name: API_FIELDS.get(name, name) for name in form.fields}
        raise link_not_created(refused, fields) from refused


def _already_replaced(done: AlreadyReplaced, detail: str) -> Problem:
    return Problem("already-replaced", detail, replaced_by=str(done.replacement.code))


def _answer(request: Request, found: PaymentLink, *, created: bool = False) -> Response:
    data = LinkSerializer(reload(found), context={"request": request}).data
    if not created:
        return Response(data)
    location = request.build_absolute_uri(reverse("api:link", kwargs={"code": found.code}))
    return Response(data, status=201, headers={"Location": location})


def _form_errors(form) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, messages in form.errors.items():
        errors.setdefault(API_FIELDS.get(name, name), []).extend(str(m) for m in messages)
    return errors


def _seconds_until(moment: dt.datetime) -> str:
    return str(max(1, math.ceil((moment - timezone.now()).total_seconds())))
