"""A payment link's life on the Provet side: created, delivered, expired, deleted.

Statuses that change with time (delivery a few seconds after creation, expiry at
`expiration_time`) are brought up to date lazily, by the sandbox clock, whenever links are read.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from sandbox import clock, outbox
from sandbox.models import (
    DeliveryStatus,
    Installation,
    OutboxMessage,
    PaymentStatus,
    PosTransaction,
)
from sandbox.validation import PROVET_PAY, LinkRequest

DELIVERY_DELAY = timedelta(seconds=3)


class CannotDelete(Exception):
    pass


def create(installation: Installation, link: LinkRequest, payer_url) -> PosTransaction:
    """Store the postransaction and queue its messages; `payer_url(external_id)` is absolute."""
    now = clock.now()
    with transaction.atomic():
        pt = PosTransaction.objects.create(
            installation=installation,
            amount=link.amount,
            invoice=link.invoice,
            department=link.department,
            creator=link.creator,
            terminal_id=PROVET_PAY["terminal_id"],
            payment_type=PROVET_PAY["payment_type"],
            transaction_type=PROVET_PAY["transaction_type"],
            created=now,
            modified=now,
            expiration_time=now + timedelta(minutes=link.duration),
            delivery_method=link.delivery_method,
            email=link.email,
            phone=link.phone,
            description=link.description,
            return_url=link.return_url,
            tokenize=link.tokenize,
            recurring_model=link.recurring_model,
            prepayment_client=link.prepayment_client,
            prepayment_department=link.prepayment_department,
            prepayment_description=link.prepayment_description,
        )
        outbox.queue(pt, payer_url(pt.external_id), deliver_at=now + DELIVERY_DELAY)
    return pt


def refresh_due(installation: Installation, now: datetime | None = None) -> None:
    """Apply every delivery and expiry whose moment has passed on the sandbox clock."""
    now = now or clock.now()
    outbox.deliver_due(installation, now)
    waiting = PosTransaction.objects.filter(
        installation=installation,
        delivery_status=DeliveryStatus.NOT_SENT,
        messages__isnull=False,
        created__lte=now - DELIVERY_DELAY,
    ).distinct()
    for pt in waiting:
        statuses = set(pt.messages.values_list("status", flat=True))
        if OutboxMessage.Status.QUEUED in statuses:
            continue
        failed = OutboxMessage.Status.FAILED in statuses
        PosTransaction.objects.filter(pk=pt.pk, delivery_status=DeliveryStatus.NOT_SENT).update(
            delivery_status=DeliveryStatus.FAILED if failed else DeliveryStatus.SENT,
            modified=max(pt.modified, pt.created + DELIVERY_DELAY),
        )
    PosTransaction.objects.filter(
        installation=installation,
        payment_status=PaymentStatus.PENDING,
        expiration_time__lte=now,
    ).update(
        payment_status=PaymentStatus.EXPIRED, modified=Greatest(F("modified"), F("expiration_time"))
    )


class AlreadyGone(Exception):
    """Another request deleted it first."""


def delete(pt: PosTransaction) -> None:
    refresh_due(pt.installation)
    with transaction.atomic():
        locked = PosTransaction.objects.select_for_update().filter(pk=pt.pk).first()
        if locked is None:
            raise AlreadyGone(f"postransaction {pt.pk}")
        if locked.payment_status == PaymentStatus.ACCEPTED:
            raise CannotDelete("An accepted payment cannot be deleted.")
        locked.delete()
