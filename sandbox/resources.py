"""What each API resource exposes: its rows, its fields for filters, and its JSON shape."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import models
from django.http import HttpRequest
from django.urls import reverse

from sandbox.models import (
    Client,
    Department,
    Installation,
    Invoice,
    Payment,
    PhoneNumber,
    PosTransaction,
    ProvetUser,
)

PAYMENT_METHOD_PROVET_PAY = 27


@dataclass(frozen=True)
class Field:
    """A filterable field: API name -> ORM path and the kind of value it holds."""

    path: str
    kind: str  # int, str, bool, decimal, date, datetime, relation
    target: str = ""  # for relations: the resource it points at


@dataclass
class Context:
    """What serializing needs from the request: absolute URLs and the `expose_` choices."""

    request: HttpRequest
    installation: Installation
    expose: set[str] = field(default_factory=set)

    def url(self, resource: str, pk: int | None) -> str | None:
        if pk is None:
            return None
        path = reverse(
            "sandbox:api-item",
            kwargs={"provet_id": self.installation.provet_id, "resource": resource, "pk": pk},
        )
        return self.request.build_absolute_uri(path)

    def payer_url(self, external_id) -> str:
        return self.request.build_absolute_uri(reverse("sandbox:pay", args=[external_id]))

    def local_time(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        return value.astimezone(ZoneInfo(self.installation.timezone)).isoformat()

    def related(self, name: str, resource: str, obj: models.Model | None) -> object:
        if obj is None:
            return None
        if name in self.expose:
            return RESOURCES[resource].serialize(obj, Context(self.request, self.installation))
        return self.url(resource, obj.pk)


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def utc_z(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def department_json(obj: Department, ctx: Context) -> dict:
    return {
        "id": obj.pk,
        "url": ctx.url("department", obj.pk),
        "name": obj.name,
        "allow_nhp_processing": obj.allow_nhp_processing,
    }


def user_json(obj: ProvetUser, ctx: Context) -> dict:
    return {
        "id": obj.pk,
        "url": ctx.url("user", obj.pk),
        "email": obj.email,
        "first_name": obj.first_name,
        "last_name": obj.last_name,
        "is_active": obj.is_active,
    }


def client_json(obj: Client, ctx: Context) -> dict:
    phones = sorted(obj.phone_numbers.all(), key=lambda p: p.pk)
    return {
        "id": obj.pk,
        "url": ctx.url("client", obj.pk),
        "firstname": obj.firstname,
        "lastname": obj.lastname,
        "organization_name": obj.organization_name,
        "customer_type": obj.customer_type,
        "email": obj.email,
        "no_sms": obj.no_sms,
        "no_email": obj.no_email,
        "archived": obj.archived,
        "phone_numbers": [ctx.related("phone_numbers", "phonenumber", p) for p in phones],
        "created": ctx.local_time(obj.created),
        "modified": ctx.local_time(obj.modified),
    }


def phonenumber_json(obj: PhoneNumber, ctx: Context) -> dict:
    return {
        "id": obj.pk,
        "url": ctx.url("phonenumber", obj.pk),
        "client": ctx.related("client", "client", obj.client),
        "type_code": obj.type_code,
        "phone_number": obj.phone_number,
        "description": obj.description,
        "preferred_reminders": obj.preferred_reminders,
    }


def invoice_json(obj: Invoice, ctx: Context) -> dict:
    transactions = sorted(obj.postransactions.all(), key=lambda t: t.pk)
    return {
        "id": obj.pk,
        "url": ctx.url("invoice", obj.pk),
        "invoice_number": obj.invoice_number,
        "invoice_prefix": obj.invoice_prefix,
        "status": obj.status,
        "invoice_date": day(obj.invoice_date),
        "invoice_due_date": day(obj.invoice_due_date),
        "date_paid": day(obj.date_paid),
        "client": ctx.related("client", "client", obj.client),
        "department": ctx.related("department", "department", obj.department),
        "total": money(obj.total),
        "total_vat": money(obj.total_vat),
        "total_with_vat": money(obj.total_with_vat),
        "due_sum": money(obj.due_sum),
        "credit_note": obj.credit_note,
        "postransactions": [
            ctx.related("postransactions", "postransaction", t) for t in transactions
        ],
        "created": ctx.local_time(obj.created),
        "modified": ctx.local_time(obj.modified),
    }


def unallocated_payment_json(obj: Payment, ctx: Context) -> dict:
    return {
        "id": obj.pk,
        "url": ctx.url("unallocatedpayment", obj.pk),
        "amount": money(obj.amount),
        "client": ctx.related("client", "client", obj.client),
        "created": ctx.local_time(obj.created),
    }


def postransaction_json(obj: PosTransaction, ctx: Context) -> dict:
    payment_method = ctx.url("paymentmethod", PAYMENT_METHOD_PROVET_PAY)
    unallocated = obj.unallocated_payment
    return {
        "id": obj.pk,
        "url": ctx.url("postransaction", obj.pk),
        # A JSON number, as in Provet's own example answers.
        "amount": float(obj.amount),
        "task_id": "",
        "created": ctx.local_time(obj.created),
        "modified": ctx.local_time(obj.modified),
        "aborted": ctx.local_time(obj.aborted),
        "cashier_desk": None,
        "invoice": ctx.related("invoice", "invoice", obj.invoice),
        "terminal_id": obj.terminal_id,
        "department": ctx.related("department", "department", obj.department),
        "transaction_type": obj.transaction_type,
        "payment_type": obj.payment_type,
        "payment_method": payment_method,
        "payment": ctx.url("payment", obj.payment_id) if obj.invoice_id else None,
        "unallocated_payment": ctx.url("unallocatedpayment", unallocated.pk)
        if unallocated
        else None,
        "refunded_transaction": None,
        "creator": ctx.related("creator", "user", obj.creator),
        "payment_link": {
            "external_id": str(obj.external_id),
            "url": ctx.payer_url(obj.external_id),
            "expiration_time": utc_z(obj.expiration_time),
            "payment_status": obj.payment_status,
            "delivery_status": obj.delivery_status,
        },
    }


@dataclass(frozen=True)
class Resource:
    name: str
    rows: Callable[[Installation], models.QuerySet]
    serialize: Callable[[models.Model, Context], dict]
    fields: dict[str, Field]
    methods: frozenset[str] = frozenset({"GET"})
    item_methods: frozenset[str] = frozenset({"GET"})


def _ids() -> dict[str, Field]:
    return {"id": Field("id", "int")}


RESOURCES: dict[str, Resource] = {
    "department": Resource(
        "department",
        lambda inst: Department.objects.filter(installation=inst),
        department_json,
        {
            **_ids(),
            "name": Field("name", "str"),
            "allow_nhp_processing": Field("allow_nhp_processing", "bool"),
        },
    ),
    "user": Resource(
        "user",
        lambda inst: ProvetUser.objects.filter(installation=inst),
        user_json,
        {
            **_ids(),
            "email": Field("email", "str"),
            "first_name": Field("first_name", "str"),
            "last_name": Field("last_name", "str"),
            "is_active": Field("is_active", "bool"),
        },
    ),
    "client": Resource(
        "client",
        lambda inst: Client.objects.filter(installation=inst).prefetch_related("phone_numbers"),
        client_json,
        {
            **_ids(),
            "firstname": Field("firstname", "str"),
            "lastname": Field("lastname", "str"),
            "organization_name": Field("organization_name", "str"),
            "customer_type": Field("customer_type", "int"),
            "email": Field("email", "str"),
            "no_sms": Field("no_sms", "bool"),
            "no_email": Field("no_email", "bool"),
            "archived": Field("archived", "bool"),
            "phonenumbers": Field("phone_numbers__phone_number", "str"),
            "phone_numbers": Field("phone_numbers", "relation", "phonenumber"),
            "created": Field("created", "datetime"),
            "modified": Field("modified", "datetime"),
        },
    ),
    "phonenumber": Resource(
        "phonenumber",
        lambda inst: PhoneNumber.objects.filter(client__installation=inst).select_related("client"),
        phonenumber_json,
        {
            **_ids(),
            "client": Field("client", "relation", "client"),
            "type_code": Field("type_code", "int"),
            "phone_number": Field("phone_number", "str"),
            "description": Field("description", "str"),
            "preferred_reminders": Field("preferred_reminders", "bool"),
        },
    ),
    "invoice": Resource(
        "invoice",
        lambda inst: (
            Invoice.objects.filter(installation=inst)
            .select_related("client", "department")
            .prefetch_related("postransactions", "client__phone_numbers")
        ),
        invoice_json,
        {
            **_ids(),
            "invoice_number": Field("invoice_number", "int"),
            "invoice_prefix": Field("invoice_prefix", "str"),
            "status": Field("status", "int"),
            "invoice_date": Field("invoice_date", "date"),
            "invoice_due_date": Field("invoice_due_date", "date"),
            "date_paid": Field("date_paid", "date"),
            "client": Field("client", "relation", "client"),
            "department": Field("department", "relation", "department"),
            "total": Field("total", "decimal"),
            "total_vat": Field("total_vat", "decimal"),
            "total_with_vat": Field("total_with_vat", "decimal"),
            "due_sum": Field("due_sum", "decimal"),
            "credit_note": Field("credit_note", "bool"),
            "created": Field("created", "datetime"),
            "modified": Field("modified", "datetime"),
        },
    ),
    # (assumed) The reference names `unallocated_payment` on a prepayment link but not its
    # fields; the sandbox gives the money's client, as a payment would.
    "unallocatedpayment": Resource(
        "unallocatedpayment",
        lambda inst: Payment.objects.filter(installation=inst, invoice__isnull=True).select_related(
            "client"
        ),
        unallocated_payment_json,
        _ids(),
    ),
    # Provet documents no filter here; the sandbox accepts id and modified (see PROVET_API.md).
    "postransaction": Resource(
        "postransaction",
        lambda inst: PosTransaction.objects.filter(installation=inst).select_related(
            "invoice", "department", "creator", "payment"
        ),
        postransaction_json,
        {**_ids(), "modified": Field("modified", "datetime")},
        methods=frozenset({"GET", "POST"}),
        item_methods=frozenset({"GET", "DELETE"}),
    ),
}
