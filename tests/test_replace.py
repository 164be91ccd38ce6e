"""Replace and Send again: the old link is cancelled in Provet before the new one is made."""

import pytest

from paylinks import create
from paylinks.cancel import cancel_link
from paylinks.create import AlreadyReplaced, LinkNotCreated, create_link
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus
from paylinks.refresh import read_status
from paylinks.send_again import send_again
from sandbox import control
from sandbox.models import PosTransaction
from tests.conftest import add_fault, draft_for


@pytest.fixture
def waiting(invoice, receptionist) -> PaymentLink:
    return create_link(draft_for(invoice, receptionist))


def replacement_of(link, user, **changes):
    return draft_for(link.invoice, user, replaces=link, **changes)


def test_replace_with_the_cancel_s_answer_lost_makes_nothing_and_the_next_try_works(
    waiting, receptionist
):
    # Provet deletes the old link, then the answer never arrives.
    add_fault(waiting.practice, path=r"postransaction/\d+/$", method="DELETE", kind="drop")
    draft = replacement_of(waiting, receptionist)
    with pytest.raises(LinkNotCreated) as refused:
        create_link(draft)
    assert "did not confirm that the old link is cancelled" in refused.value.message
    assert PaymentLink.objects.filter(replaces=waiting).count() == 0
    assert PosTransaction.objects.filter(invoice_id=waiting.invoice.provet_id).count() == 0
    waiting.refresh_from_db()
    assert waiting.events.get(kind=LinkEvent.Kind.ERROR).message.startswith("Not replaced")

    new = create_link(replacement_of(waiting, receptionist))  # the person tries again

    waiting.refresh_from_db()
    assert new.state == PaymentLink.State.ACTIVE and new.replaces == waiting
    assert waiting.cancelled_at is not None
    assert [link.pk for link in waiting.invoice.open_links()] == [new.pk]


def test_replace_when_provet_cannot_be_reached_keeps_the_old_link_payable(waiting, receptionist):
    add_fault(waiting.practice, path=r"postransaction/\d+/$", method="DELETE", kind="503")
    with pytest.raises(LinkNotCreated):
        create_link(replacement_of(waiting, receptionist))
    waiting.refresh_from_db()
    assert waiting.is_open and waiting.cancelled_at is None
    assert PosTransaction.objects.filter(pk=waiting.postransaction_id, payment_status=1).exists()
    assert not PaymentLink.objects.filter(replaces=waiting).exists()


def test_replacing_a_link_the_client_has_just_paid_makes_nothing(waiting, receptionist):
    control.settle_link(waiting.external_id, "pay")
    with pytest.raises(LinkNotCreated) as refused:
        create_link(replacement_of(waiting, receptionist))
    assert "already paid" in refused.value.message
    waiting.refresh_from_db()
    assert waiting.payment_status == PaymentStatus.ACCEPTED and waiting.cancelled_at is None
    assert not PaymentLink.objects.filter(replaces=waiting).exists()


def test_a_link_is_replaced_once_whoever_asks_second(waiting, receptionist, manager):
    first = send_again(waiting, user=receptionist, idempotency_key="a" * 32)
    with pytest.raises(AlreadyReplaced) as done:
        send_again(waiting, user=manager, idempotency_key="b" * 32)
    assert done.value.replacement == first
    assert send_again(waiting, user=receptionist, idempotency_key="a" * 32) == first


def test_when_provet_refuses_the_replacement_the_old_link_s_timeline_says_so(waiting, receptionist):
    # The snapshot says more is due than Provet knows: Provet refuses the new amount.
    invoice = waiting.invoice
    invoice.due_sum += 100
    invoice.save(update_fields=["due_sum"])
    with pytest.raises(LinkNotCreated) as refused:
        create_link(replacement_of(waiting, receptionist, amount=invoice.due_sum))
    assert "amount" in refused.value.field_errors
    waiting.refresh_from_db()
    assert waiting.cancelled_at is not None  # it was cancelled first, as it must be
    error = waiting.events.get(kind=LinkEvent.Kind.ERROR)
    assert error.message.startswith("Cancelled, but the link to replace it was not made")
    assert not PaymentLink.objects.filter(replaces=waiting).exists()


def test_a_link_paid_while_it_is_being_replaced_is_not_replaced(invoice, receptionist, monkeypatch):
    half = invoice.due_sum / 2
    first = create_link(draft_for(invoice, receptionist, amount=half))
    create_link(draft_for(invoice, receptionist, amount=invoice.due_sum - half))
    reserve = create._reserve

    def reserve_then_the_client_pays(draft):
        reserved = reserve(draft)
        control.settle_link(first.external_id, "pay")
        read_status(first, source=LinkEvent.Source.POLLER)  # the poller sees it
        return reserved

    monkeypatch.setattr(create, "_reserve", reserve_then_the_client_pays)
    with pytest.raises(LinkNotCreated) as refused:
        create_link(replacement_of(first, receptionist, amount=half))
    assert "just paid the old link" in refused.value.message
    assert not PaymentLink.objects.filter(replaces=first).exists()
    assert (
        PosTransaction.objects.filter(invoice_id=invoice.provet_id, payment_status=1).count() == 1
    )


@pytest.mark.parametrize("cancelled", ["before the reservation", "after the reservation"])
def test_a_colleague_s_cancel_wins_over_send_again(
    waiting, receptionist, manager, monkeypatch, cancelled
):
    reserve = create._reserve

    def with_a_cancel(draft):
        if cancelled == "before the reservation":
            cancel_link(waiting, user=manager)
            return reserve(draft)
        reserved = reserve(draft)
        cancel_link(waiting, user=manager)
        return reserved

    monkeypatch.setattr(create, "_reserve", with_a_cancel)
    with pytest.raises(LinkNotCreated) as refused:
        send_again(waiting, user=receptionist, idempotency_key="c" * 32)
    assert "cancelled the old link meanwhile" in refused.value.message
    assert not PaymentLink.objects.filter(replaces=waiting).exists()
    assert not waiting.invoice.open_links().exists()
