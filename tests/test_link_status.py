"""Statuses only move forward, and every change leaves an event."""

import dataclasses

import pytest

from clinics.provet.types import PaymentLinkInfo, PosTransaction
from paylinks.create import create_link
from paylinks.models import DeliveryStatus, LinkEvent, PaymentLink, PaymentStatus
from tests.conftest import draft_for


@pytest.fixture
def link(invoice, receptionist) -> PaymentLink:
    return create_link(draft_for(invoice, receptionist))


def answer(link: PaymentLink, payment: int, delivery: int = DeliveryStatus.NOT_SENT):
    with link.practice.provet_client() as client:
        posted = client.get_postransaction(link.postransaction_id)
    info = PaymentLinkInfo(
        external_id=link.external_id,
        url=link.payer_url,
        expiration_time=link.expires_at,
        payment_status=payment,
        delivery_status=delivery,
    )
    return dataclasses.replace(posted, payment_link=info)


def test_paid_is_recorded_with_its_time_and_closes_the_link(link):
    assert link.record_status(answer(link, PaymentStatus.ACCEPTED), source="poller")
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert link.paid_at is not None
    assert link.state == PaymentLink.State.CLOSED
    assert link.next_check_at is None
    event = link.events.get(kind=LinkEvent.Kind.PAYMENT_CHANGED)
    assert (event.old_value, event.new_value, event.source) == (
        "Waiting for payment",
        "Paid",
        "poller",
    )


def test_a_stale_pending_answer_never_turns_paid_back(link):
    link.record_status(answer(link, PaymentStatus.ACCEPTED), source="webhook")
    changed = link.record_status(answer(link, PaymentStatus.PENDING), source="poller")
    link.refresh_from_db()
    assert not changed
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert link.events.filter(kind=LinkEvent.Kind.PAYMENT_CHANGED).count() == 1


def test_a_payment_that_raced_the_expiry_still_counts(link):
    link.record_status(answer(link, PaymentStatus.EXPIRED), source="poller")
    link.record_status(answer(link, PaymentStatus.ACCEPTED), source="poller")
    assert link.payment_status == PaymentStatus.ACCEPTED
    link.record_status(answer(link, PaymentStatus.EXPIRED), source="poller")
    assert link.payment_status == PaymentStatus.ACCEPTED


def test_delivery_moves_from_not_sent_to_sent_once(link):
    link.record_status(answer(link, PaymentStatus.PENDING, DeliveryStatus.SENT), source="poller")
    link.record_status(
        answer(link, PaymentStatus.PENDING, DeliveryStatus.NOT_SENT), source="poller"
    )
    assert link.delivery_status == DeliveryStatus.SENT
    assert link.events.filter(kind=LinkEvent.Kind.DELIVERY_CHANGED).count() == 1


def test_an_answer_without_a_payment_link_changes_nothing(link):
    saved = PaymentLink.objects.filter(pk=link.pk).values().get()
    events = link.events.count()
    bare = PosTransaction.from_json({"id": link.postransaction_id, "amount": "1.00"})
    assert not link.record_status(bare, source="poller")
    assert PaymentLink.objects.filter(pk=link.pk).values().get() == saved
    assert link.events.count() == events
