"""Outgoing events, written in the transaction of the change to a link that causes them.

Every change to a link writes a `LinkEvent` inside the transaction that makes it, through
`PaymentLink.event`, which decides what the event announces (`paylinks.models.announced`:
link.paid, link.expired ...) and calls `record` here. If the practice has an endpoint for that
type, an `OutgoingEvent` and one `EventDelivery` per such endpoint are written beside it: a
rollback of the change takes them away too (an outbox). Sending is queued only once the
transaction has committed (paylinks/event_sending.py).

Statuses only move forward and a LinkEvent is written only on a change, so one change seen
twice (the poller and a webhook) causes one event; a unique constraint on the link and type
holds it in the database too.
"""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from paylinks.event_sending import RETRY_FOR, first_claim, queue_attempt
from paylinks.models import (
    DeliveryStatus,
    EventDelivery,
    EventEndpoint,
    OutgoingEvent,
    PaymentLink,
    PaymentStatus,
)

logger = logging.getLogger(__name__)


def record(link: PaymentLink, event_type: str) -> OutgoingEvent | None:
    """Write the event for the practice's active endpoints that chose its type, if any, and
    queue their sending for when the transaction commits."""
    endpoints = [
        endpoint
        for endpoint in EventEndpoint.objects.filter(practice_id=link.practice_id, is_active=True)
        if event_type in endpoint.events
    ]
    if not endpoints:
        return None
    now = timezone.now()
    try:
        with transaction.atomic():
            event = OutgoingEvent.objects.create(
                practice_id=link.practice_id,
                link=link,
                type=event_type,
                data={"link": link_data(link)},
                created_at=now,
            )
    except IntegrityError:
        # The link already had this event (outgoing_event_once_per_link).
        logger.info("link %s already announced %s", link.code, event_type)
        return None
    deliveries = EventDelivery.objects.bulk_create(
        EventDelivery(
            event=event,
            endpoint=endpoint,
            created_at=now,
            retry_until=now + RETRY_FOR,
            next_attempt_at=first_claim(now),
        )
        for endpoint in endpoints
    )
    ids = [delivery.pk for delivery in deliveries]
    # robust: a broker that can't take it doesn't fail the committed change; the sweep sends it.
    transaction.on_commit(lambda: _queue_first_attempts(ids), robust=True)
    return event


def _queue_first_attempts(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        queue_attempt(delivery_id, 0)


def link_data(link: PaymentLink) -> dict:
    """The link as receivers see it, with the names the API's link has (a subset of it):
    Provet's status codes and the same in words (English)."""
    replacement = link.live_replacement()
    invoice = link.invoice if link.invoice_id else None
    prepayment = link.prepayment if link.prepayment_id else None
    with translation.override("en"):
        return {
            "code": str(link.code),
            "practice": str(link.practice.code),
            "kind": "invoice" if invoice else "prepayment",
            "invoice": {"provet_id": invoice.provet_id, "number": str(invoice)}
            if invoice
            else None,
            "client_provet_id": (
                invoice.client_provet_id if invoice else prepayment and prepayment.client_provet_id
            ),
            "amount": str(link.amount),
            "currency": link.currency,
            "state": link.state,
            "payment_status": link.payment_status,
            "payment_status_label": _words(PaymentStatus, link.payment_status),
            "delivery_status": link.delivery_status,
            "delivery_status_label": _words(DeliveryStatus, link.delivery_status),
            "payer_url": link.payer_url,
            "needs_review": link.needs_review,
            "imported": link.imported,
            "created_at": _time(link.created_at),
            "expires_at": _time(link.expires_at),
            "paid_at": _time(link.paid_at),
            "cancelled_at": _time(link.cancelled_at),
            "replaces": str(link.replaces.code) if link.replaces_id and link.replaces else None,
            "replaced_by": str(replacement.code) if replacement else None,
        }


def _words(choices, value: int | None) -> str | None:
    return str(choices(value).label) if value is not None else None


def _time(moment) -> str | None:
    return moment.isoformat() if moment else None
