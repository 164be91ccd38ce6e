"""The reconciler decides what a lost answer meant: adopt, fail, or ask a person."""

import datetime as dt

import pytest

from clinics.provet import ProvetClient
from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus
from paylinks.reconcile import GRACE, STUCK_AFTER, reconcile_link, reconcile_unknown_links
from paylinks.tasks import reconcile
from paylinks.words import status_words
from sandbox import control
from sandbox.models import Client as ProvetClientRow
from tests.conftest import add_fault, draft_for, post_in_provet, prepayment_draft_for


@pytest.fixture
def unknown_link(invoice, receptionist):
    add_fault(invoice.practice, path="postransaction/$", method="POST", kind="503")
    link = create_link(draft_for(invoice, receptionist))
    assert link.state == PaymentLink.State.UNKNOWN
    return link


def test_nothing_found_within_the_grace_period_means_look_again_later(unknown_link):
    reconcile_link(unknown_link, now=unknown_link.created_at + dt.timedelta(seconds=10))
    unknown_link.refresh_from_db()
    assert unknown_link.state == PaymentLink.State.UNKNOWN
    assert unknown_link.next_check_at is not None


def test_nothing_found_after_the_grace_period_means_the_attempt_failed(unknown_link):
    reconcile_link(unknown_link, now=unknown_link.created_at + GRACE + dt.timedelta(seconds=1))
    unknown_link.refresh_from_db()
    assert unknown_link.state == PaymentLink.State.FAILED
    assert "not created" in unknown_link.last_error
    assert unknown_link.events.filter(new_value="Not created").exists()


def test_the_one_matching_postransaction_is_adopted(unknown_link):
    posted = post_in_provet(unknown_link.invoice, unknown_link.amount)
    reconcile_link(unknown_link)
    unknown_link.refresh_from_db()
    assert unknown_link.state == PaymentLink.State.ACTIVE
    assert unknown_link.postransaction_id == posted.id
    assert unknown_link.events.filter(kind=LinkEvent.Kind.RECONCILED).exists()


def test_a_postransaction_another_link_already_owns_is_not_adopted(unknown_link, receptionist):
    posted = post_in_provet(unknown_link.invoice, unknown_link.amount)
    PaymentLink.objects.create(
        practice=unknown_link.practice,
        invoice=unknown_link.invoice,
        department=unknown_link.department,
        amount=unknown_link.amount,
        currency="EUR",
        duration_minutes=60,
        idempotency_key="someone-elses-link-key",
        state=PaymentLink.State.ACTIVE,
        postransaction_id=posted.id,
    )
    reconcile_link(unknown_link, now=unknown_link.created_at + GRACE + dt.timedelta(seconds=1))
    unknown_link.refresh_from_db()
    assert unknown_link.state == PaymentLink.State.FAILED


def test_several_matches_are_flagged_for_a_person(unknown_link):
    post_in_provet(unknown_link.invoice, unknown_link.amount)
    post_in_provet(unknown_link.invoice, unknown_link.amount)
    reconcile_link(unknown_link)
    unknown_link.refresh_from_db()
    assert unknown_link.state == PaymentLink.State.UNKNOWN
    assert unknown_link.needs_review
    assert "Several Provet links" in unknown_link.last_error
    assert status_words(unknown_link)[0].startswith("Needs checking")


def test_the_scheduled_task_reconciles_due_links(unknown_link):
    post_in_provet(unknown_link.invoice, unknown_link.amount)
    PaymentLink.objects.filter(pk=unknown_link.pk).update(next_check_at=unknown_link.created_at)
    assert reconcile() == 1
    unknown_link.refresh_from_db()
    assert unknown_link.state == PaymentLink.State.ACTIVE
    assert reconcile_unknown_links() == 0


def test_a_link_adopted_meanwhile_is_never_marked_failed(unknown_link):
    stale = PaymentLink.objects.get(pk=unknown_link.pk)
    posted = post_in_provet(unknown_link.invoice, unknown_link.amount)
    reconcile_link(unknown_link)  # one worker adopts it
    stale.mark(PaymentLink.State.FAILED, source="system", message="late verdict")
    stale.refresh_from_db()
    assert stale.state == PaymentLink.State.ACTIVE
    assert stale.postransaction_id == posted.id


def test_two_runs_of_the_schedule_claim_a_link_once(unknown_link):
    PaymentLink.objects.filter(pk=unknown_link.pk).update(next_check_at=unknown_link.created_at)
    assert reconcile_unknown_links() == 1
    assert reconcile_unknown_links() == 0  # pushed forward before Provet was asked


def test_a_lost_send_again_has_already_retired_the_link_it_replaces(invoice, receptionist):
    old = create_link(draft_for(invoice, receptionist, amount=invoice.due_sum - 1))
    add_fault(invoice.practice, path="postransaction/$", method="POST", kind="503")
    new = create_link(draft_for(invoice, receptionist, replaces=old))
    assert new.state == PaymentLink.State.UNKNOWN
    assert old.events.filter(kind=LinkEvent.Kind.REISSUED).exists()
    post_in_provet(new.invoice, new.amount)
    reconcile_link(new)
    old.refresh_from_db()
    assert new.state == PaymentLink.State.ACTIVE
    assert old.cancelled_at is not None


def crash_while_creating(monkeypatch, invoice, receptionist, *, after_post: bool) -> PaymentLink:
    """The process dies during the POST: before sending it, or after Provet made the link."""
    real = ProvetClient.create_postransaction

    def dies(self, body):
        if after_post:
            real(self, body)
        raise RuntimeError("worker killed")

    draft = draft_for(invoice, receptionist)
    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(ProvetClient, "create_postransaction", dies)
        create_link(draft)
    return PaymentLink.objects.get(idempotency_key=draft.idempotency_key)


def test_a_link_left_creating_by_a_crash_is_found_in_provet(monkeypatch, invoice, receptionist):
    link = crash_while_creating(monkeypatch, invoice, receptionist, after_post=True)
    assert link.state == PaymentLink.State.CREATING
    reconcile_unknown_links(now=link.created_at + STUCK_AFTER + dt.timedelta(seconds=1))
    link.refresh_from_db()
    assert link.state == PaymentLink.State.ACTIVE
    assert link.events.filter(message__contains="interrupted").exists()


def test_a_link_left_creating_before_the_post_is_marked_not_created(
    monkeypatch, invoice, receptionist
):
    link = crash_while_creating(monkeypatch, invoice, receptionist, after_post=False)
    reconcile_unknown_links(now=link.created_at + STUCK_AFTER + dt.timedelta(seconds=1))
    link.refresh_from_db()
    assert link.state == PaymentLink.State.FAILED


def test_a_link_still_being_created_is_left_alone(monkeypatch, invoice, receptionist):
    link = crash_while_creating(monkeypatch, invoice, receptionist, after_post=True)
    reconcile_unknown_links(now=link.created_at + dt.timedelta(seconds=30))
    link.refresh_from_db()
    assert link.state == PaymentLink.State.CREATING


def lost_prepayment(practice, user, client_id: int) -> PaymentLink:
    add_fault(practice, path="postransaction/$", method="POST", kind="503")
    link = create_link(prepayment_draft_for(practice, user, client_id))
    assert link.state == PaymentLink.State.UNKNOWN
    return link


def prepayment_made_in_provet(link: PaymentLink, client_id: int, *, paid: bool):
    """A prepayment link of the same amount and department, for `client_id`, made in Provet."""
    with link.practice.provet_client() as client:
        posted = client.create_postransaction(
            {
                "amount": link.amount,
                "terminal_id": 0,
                "payment_type": 5003,
                "transaction_type": 4,
                "creator": link.practice.provet_user_url,
                "department": client.url_for("department", link.department.provet_id),
                "payment_link_data": {"duration": 60, "delivery_method": 0},
                "prepayment_data": {
                    "client_id": client_id,
                    "department_id": link.department.provet_id,
                    "description": "Prepayment",
                },
            }
        )
    if paid:
        control.settle_link(posted.payment_link.external_id, "pay")
    return posted


@pytest.fixture
def two_clients(synced_practice) -> list[int]:
    rows = ProvetClientRow.objects.filter(installation__provet_id=synced_practice.provet_id)
    return list(rows.order_by("id").values_list("id", flat=True)[:2])


def test_a_lost_prepayment_is_never_taken_from_another_client_s_link(
    synced_practice, receptionist, two_clients
):
    ours, theirs = two_clients
    link = lost_prepayment(synced_practice, receptionist, ours)
    prepayment_made_in_provet(link, theirs, paid=True)  # same amount, department and time
    reconcile_link(link, now=link.created_at + GRACE + dt.timedelta(seconds=1))
    link.refresh_from_db()
    assert link.state == PaymentLink.State.FAILED
    assert link.postransaction_id is None


def test_a_lost_prepayment_its_client_has_paid_is_adopted(
    synced_practice, receptionist, two_clients
):
    ours, _ = two_clients
    link = lost_prepayment(synced_practice, receptionist, ours)
    posted = prepayment_made_in_provet(link, ours, paid=True)
    reconcile_link(link)
    link.refresh_from_db()
    assert link.postransaction_id == posted.id
    assert link.payment_status == PaymentStatus.ACCEPTED  # and so no longer payable


def test_a_lost_prepayment_whose_client_provet_does_not_tell_goes_to_a_person(
    synced_practice, receptionist, two_clients
):
    ours, _ = two_clients
    link = lost_prepayment(synced_practice, receptionist, ours)
    posted = prepayment_made_in_provet(link, ours, paid=False)
    reconcile_link(link)
    link.refresh_from_db()
    assert link.state == PaymentLink.State.UNKNOWN
    assert (link.needs_review, link.review_candidates) == (True, [posted.id])
    assert "doesn't say which client" in link.last_error
