"""The nightly drift check: invoices and links that disagree are listed for a person."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone, translation
from django_q.models import Schedule

from clinics import formats
from paylinks import tasks
from paylinks.cancel import cancel_link
from paylinks.create import create_link
from paylinks.drift import find_drift, open_findings
from paylinks.models import DriftFinding, LinkEvent, PaymentLink, PaymentStatus
from paylinks.reconcile import GRACE, reconcile_link
from paylinks.words import said
from sandbox import control
from sandbox.models import PosTransaction as ProvetPosTransaction
from tests.conftest import add_fault, draft_for, link_made_in_provet, post_in_provet

Kind = DriftFinding.Kind


def kinds(practice) -> list[tuple[str, int | None]]:
    return sorted((f.kind, f.link_id) for f in open_findings([practice]))


def test_nothing_is_found_when_invoices_and_links_agree(invoice, receptionist):
    create_link(draft_for(invoice, receptionist))
    assert find_drift(invoice.practice) == []


def test_a_paid_invoice_with_an_open_link_is_listed_until_the_link_is_cancelled(
    invoice, receptionist
):
    first = create_link(draft_for(invoice, receptionist))
    second = link_made_in_provet(invoice)
    control.settle_link(first.external_id, "pay")  # no webhook, no poll yet

    find_drift(invoice.practice)

    first.refresh_from_db()
    assert first.payment_status == PaymentStatus.ACCEPTED  # read, not flagged
    assert kinds(invoice.practice) == [(Kind.PAID_INVOICE_OPEN_LINKS, second.pk)]
    finding = open_findings([invoice.practice]).get()
    assert "cancel it" in finding.message
    assert f"this {second.amount} EUR link" in finding.message  # stored in English
    with translation.override("fi"):  # shown in the reader's language, amounts and all
        shown = said(finding)
        assert "peru se" in shown and formats.money(second.amount, "EUR") in shown
    assert "€" in shown

    cancel_link(second, user=receptionist)
    find_drift(invoice.practice)
    finding.refresh_from_db()
    assert finding.resolved_at is not None
    assert kinds(invoice.practice) == []


def test_an_accepted_link_on_an_invoice_still_due_is_listed(invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist))
    # Provet said the link was paid, but the invoice never showed the payment.
    PaymentLink.objects.filter(pk=link.pk).update(
        payment_status=PaymentStatus.ACCEPTED,
        state=PaymentLink.State.CLOSED,
        paid_at=timezone.now() - dt.timedelta(hours=1),
    )
    find_drift(invoice.practice)
    assert kinds(invoice.practice) == [(Kind.PAID_LINK_INVOICE_DUE, link.pk)]


def test_a_payment_made_a_moment_ago_is_given_time_to_be_allocated(invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist))
    PaymentLink.objects.filter(pk=link.pk).update(
        payment_status=PaymentStatus.ACCEPTED,
        state=PaymentLink.State.CLOSED,
        paid_at=timezone.now() - dt.timedelta(minutes=2),
    )
    assert find_drift(invoice.practice) == []


def test_a_part_payment_leaves_no_mismatch(invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist, amount=invoice.due_sum / 2))
    control.settle_link(link.external_id, "pay")
    PaymentLink.objects.filter(pk=link.pk).update(
        payment_status=PaymentStatus.ACCEPTED,
        state=PaymentLink.State.CLOSED,
        paid_at=timezone.now() - dt.timedelta(hours=1),
    )
    assert find_drift(invoice.practice) == []


@pytest.fixture
def unknown_link(invoice, receptionist) -> PaymentLink:
    add_fault(invoice.practice, path="postransaction/$", method="POST", kind="503")
    link = create_link(draft_for(invoice, receptionist))
    assert link.state == PaymentLink.State.UNKNOWN
    return link


def test_a_link_unknown_for_over_an_hour_is_listed(unknown_link):
    practice = unknown_link.practice
    assert find_drift(practice) == []  # still being reconciled
    PaymentLink.objects.filter(pk=unknown_link.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    find_drift(practice)
    find_drift(practice)  # a second night adds no duplicate
    assert kinds(practice) == [(Kind.UNKNOWN_TOO_LONG, unknown_link.pk)]


def test_when_provet_cannot_answer_the_snapshots_are_still_compared(unknown_link):
    PaymentLink.objects.filter(pk=unknown_link.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    add_fault(unknown_link.practice, path=".*", kind="503", count=100)
    assert [f.kind for f in find_drift(unknown_link.practice)] == [Kind.UNKNOWN_TOO_LONG]


def test_the_nightly_schedule_exists_once_and_checks_every_practice(unknown_link):
    assert Schedule.objects.filter(func="paylinks.tasks.find_drift_everywhere").count() == 1
    PaymentLink.objects.filter(pk=unknown_link.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    assert tasks.find_drift_everywhere() == 1
    assert kinds(unknown_link.practice) == [(Kind.UNKNOWN_TOO_LONG, unknown_link.pk)]


def test_the_command_prints_the_mismatches(unknown_link, capsys):
    PaymentLink.objects.filter(pk=unknown_link.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    call_command("check_drift", "--practice", str(unknown_link.practice.provet_id))
    out = capsys.readouterr().out
    assert "1 mismatches" in out
    assert "Outcome unknown for over an hour" in out


def failed_attempt(invoice, receptionist) -> PaymentLink:
    """A create whose answer was lost and that the reconciler found nowhere in Provet."""
    return failed_attempt_of(draft_for(invoice, receptionist))


def failed_attempt_of(draft) -> PaymentLink:
    add_fault(draft.practice, path="postransaction/$", method="POST", kind="503")
    link = create_link(draft)
    reconcile_link(link, now=link.created_at + GRACE + dt.timedelta(seconds=1))
    link.refresh_from_db()
    assert link.state == PaymentLink.State.FAILED
    return link


def test_a_failed_attempt_that_turned_up_in_provet_is_adopted_at_night(invoice, receptionist):
    link = failed_attempt(invoice, receptionist)
    posted = post_in_provet(link.invoice, link.amount)
    find_drift(invoice.practice, now=link.created_at + dt.timedelta(hours=2))
    link.refresh_from_db()
    assert (link.state, link.postransaction_id) == (PaymentLink.State.ACTIVE, posted.id)
    assert link.next_check_at is not None  # the poller follows it from now on
    assert "nightly check" in link.events.get(kind=LinkEvent.Kind.RECONCILED).message


def test_a_late_find_is_cancelled_when_other_links_ask_for_what_is_due(invoice, receptionist):
    link = failed_attempt(invoice, receptionist)
    made_again = create_link(draft_for(invoice, receptionist))  # the desk made it again
    posted = post_in_provet(link.invoice, link.amount)
    find_drift(invoice.practice, now=link.created_at + dt.timedelta(hours=2))
    link.refresh_from_db()
    assert link.postransaction_id == posted.id and link.cancelled_at is not None
    assert not ProvetPosTransaction.objects.filter(pk=posted.id).exists()
    assert list(invoice.open_links()) == [made_again]


def test_a_failed_attempt_older_than_two_days_is_left_alone(invoice, receptionist):
    link = failed_attempt(invoice, receptionist)
    post_in_provet(link.invoice, link.amount)
    find_drift(invoice.practice, now=link.created_at + dt.timedelta(days=3))
    link.refresh_from_db()
    assert link.state == PaymentLink.State.FAILED


def test_a_failed_replacement_found_after_another_replaced_the_link_stands_alone(
    invoice, receptionist
):
    old = create_link(draft_for(invoice, receptionist))
    PaymentLink.objects.filter(pk=old.pk).update(
        state=PaymentLink.State.CLOSED, payment_status=PaymentStatus.EXPIRED
    )  # it ran out: sent again without a cancel
    lost = failed_attempt_of(draft_for(invoice, receptionist, replaces=old))
    again = create_link(draft_for(invoice, receptionist, replaces=old))  # tried once more
    posted = post_in_provet(lost.invoice, lost.amount)
    find_drift(invoice.practice, now=lost.created_at + dt.timedelta(hours=2))
    lost.refresh_from_db()
    assert (lost.postransaction_id, lost.replaces) == (posted.id, None)
    assert lost.cancelled_at is not None  # the other replacement already asks for it all
    assert list(invoice.open_links()) == [again]
