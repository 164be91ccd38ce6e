"""Typed views of Provet Cloud's JSON answers (only the fields PayLinks reads)."""

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db import models
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _

T = TypeVar("T")

_ID_AT_END = re.compile(r"/(\d+)/?$")


def id_from_url(url: str | None) -> int | None:
    """Provet refers to related objects by absolute URL; the id is its last segment."""
    if not url:
        return None
    match = _ID_AT_END.search(url)
    return int(match.group(1)) if match else None


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def _datetime(value: Any) -> dt.datetime | None:
    return parse_datetime(value) if value else None


def _date(value: Any) -> dt.date | None:
    return parse_date(value) if value else None


class PaymentStatus(models.IntegerChoices):
    PENDING = 1, _("Waiting for payment")
    FAILED = 2, _("Payment failed")
    EXPIRED = 3, _("Expired")
    ABORTED = 4, _("Cancelled by the client")
    ACCEPTED = 5, _("Paid")

    @classmethod
    def final(cls) -> set[int]:
        return {cls.FAILED, cls.EXPIRED, cls.ABORTED, cls.ACCEPTED}


class DeliveryStatus(models.IntegerChoices):
    NOT_SENT = 1, _("Not sent")
    SENT = 2, _("Sent")
    FAILED = 3, _("Delivery failed")


class InvoiceStatus(models.IntegerChoices):
    DRAFT = 0, _("Draft")
    SENT = 1, _("Sent")
    OPEN = 2, _("Open")
    FINALIZED = 3, _("Finalized")
    INVOICING = 4, _("Invoicing")
    VOIDED = 99, _("Voided")


@dataclass(frozen=True)
class Department:
    id: int
    url: str
    name: str
    allow_nhp_processing: bool

    @classmethod
    def from_json(cls, data: dict) -> "Department":
        return cls(
            id=data["id"],
            url=data["url"],
            name=data.get("name") or "",
            allow_nhp_processing=bool(data.get("allow_nhp_processing")),
        )


@dataclass(frozen=True)
class Client:
    id: int
    url: str
    firstname: str
    lastname: str
    organization_name: str
    email: str
    no_sms: bool
    no_email: bool
    archived: bool
    phone_numbers: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        person = f"{self.firstname} {self.lastname}".strip()
        return self.organization_name or person

    @classmethod
    def from_json(cls, data: dict) -> "Client":
        return cls(
            id=data["id"],
            url=data["url"],
            firstname=data.get("firstname") or "",
            lastname=data.get("lastname") or "",
            organization_name=data.get("organization_name") or "",
            email=data.get("email") or "",
            no_sms=bool(data.get("no_sms")),
            no_email=bool(data.get("no_email")),
            archived=bool(data.get("archived")),
            phone_numbers=list(data.get("phone_numbers") or []),
        )


@dataclass(frozen=True)
class PhoneNumber:
    id: int
    url: str
    client_id: int | None
    phone_number: str
    type_code: Any
    preferred_reminders: bool

    @classmethod
    def from_json(cls, data: dict) -> "PhoneNumber":
        return cls(
            id=data["id"],
            url=data["url"],
            client_id=id_from_url(data.get("client")),
            phone_number=data.get("phone_number") or "",
            type_code=data.get("type_code"),
            preferred_reminders=bool(data.get("preferred_reminders")),
        )


@dataclass(frozen=True)
class User:
    id: int
    url: str
    email: str
    first_name: str
    last_name: str
    is_active: bool

    @classmethod
    def from_json(cls, data: dict) -> "User":
        return cls(
            id=data["id"],
            url=data["url"],
            email=data.get("email") or "",
            first_name=data.get("first_name") or "",
            last_name=data.get("last_name") or "",
            is_active=bool(data.get("is_active", True)),
        )


@dataclass(frozen=True)
class Invoice:
    id: int
    url: str
    invoice_number: str | None
    invoice_prefix: str
    status: int
    invoice_date: dt.date | None
    date_paid: dt.date | None
    client_url: str | None
    department_url: str | None
    total_with_vat: Decimal
    due_sum: Decimal
    credit_note: bool
    postransactions: list[str]
    modified: dt.datetime | None

    @property
    def client_id(self) -> int | None:
        return id_from_url(self.client_url)

    @property
    def department_id(self) -> int | None:
        return id_from_url(self.department_url)

    @property
    def number(self) -> str:
        """The number a clinic prints on the invoice: prefix and number together."""
        if self.invoice_number is None:
            return ""
        return f"{self.invoice_prefix}{self.invoice_number}"

    @classmethod
    def from_json(cls, data: dict) -> "Invoice":
        number = data.get("invoice_number")
        return cls(
            id=data["id"],
            url=data["url"],
            invoice_number=str(number) if number not in (None, "") else None,
            invoice_prefix=data.get("invoice_prefix") or "",
            status=int(data.get("status", 0)),
            invoice_date=_date(data.get("invoice_date")),
            date_paid=_date(data.get("date_paid")),
            client_url=data.get("client"),
            department_url=data.get("department"),
            total_with_vat=_decimal(data.get("total_with_vat")),
            due_sum=_decimal(data.get("due_sum")),
            credit_note=bool(data.get("credit_note")),
            postransactions=list(data.get("postransactions") or []),
            modified=_datetime(data.get("modified")),
        )


@dataclass(frozen=True)
class PaymentLinkInfo:
    external_id: str
    url: str
    expiration_time: dt.datetime | None
    payment_status: int
    delivery_status: int

    @classmethod
    def from_json(cls, data: dict) -> "PaymentLinkInfo":
        return cls(
            external_id=str(data.get("external_id") or ""),
            url=data.get("url") or "",
            expiration_time=_datetime(data.get("expiration_time")),
            payment_status=int(data.get("payment_status") or PaymentStatus.PENDING),
            delivery_status=int(data.get("delivery_status") or DeliveryStatus.NOT_SENT),
        )


@dataclass(frozen=True)
class PosTransaction:
    id: int
    url: str
    amount: Decimal
    invoice_url: str | None
    department_url: str | None
    creator_url: str | None
    unallocated_payment_url: str | None
    created: dt.datetime | None
    modified: dt.datetime | None
    payment_link: PaymentLinkInfo | None

    @property
    def invoice_id(self) -> int | None:
        return id_from_url(self.invoice_url)

    @property
    def department_id(self) -> int | None:
        return id_from_url(self.department_url)

    @classmethod
    def from_json(cls, data: dict) -> "PosTransaction":
        link = data.get("payment_link")
        return cls(
            id=data["id"],
            url=data.get("url") or "",
            amount=_decimal(data.get("amount")),
            invoice_url=data.get("invoice"),
            department_url=data.get("department"),
            creator_url=data.get("creator"),
            unallocated_payment_url=data.get("unallocated_payment"),
            created=_datetime(data.get("created")),
            modified=_datetime(data.get("modified")),
            payment_link=PaymentLinkInfo.from_json(link) if link else None,
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    count: int
    num_pages: int
    next: str | None
    previous: str | None
    results: list[T]
