"""Needs review: a manager says which Provet link a lost create made, and cancels the others."""

from dataclasses import dataclass
from decimal import Decimal

import pytest

from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import LinkEvent, PaymentLink
from paylinks.reconcile import reconcile_link
from sandbox import control
from sandbox.models import PosTransaction
from tests.conftest import add_fault, draft_for, post_in_provet


@dataclass
class Undecided:
    link: PaymentLink
    ours: int  # the postransaction the lost POST made
    duplicate: int  # one made for the same money in Provet directly


@pytest.fixture
def undecided(invoice, receptionist) -> Undecided:
    """A link whose create answer Provet dropped after committing it, with a second Provet
    link for the same amount made a moment before: the reconciler can't tell them apart."""
    duplicate = post_in_provet(invoice, invoice.due_sum)
    add_fault(invoice.practice, path="postransaction/$", method="POST", kind="drop")
    link = create_link(draft_for(invoice, receptionist))
    reconcile_link(link)
    link.refresh_from_db()
    assert link.state == PaymentLink.State.UNKNOWN and link.needs_review
    [ours] = PosTransaction.objects.filter(invoice_id=invoice.provet_id).exclude(pk=duplicate.id)
    assert sorted(link.review_candidates) == sorted([ours.pk, duplicate.id])
    return Undecided(link, ours.pk, duplicate.id)


def payer_url(link: PaymentLink, pk: int) -> str:
    with link.practice.provet_client() as client:
        info = client.get_postransaction(pk).payment_link
    assert info is not None and info.url
    return info.url


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


def review_page(link: PaymentLink) -> str:
    return f"/links/{link.code}/review/"


def choose(client, undecided: Undecided, postransaction_id: int, follow: bool = False):
    return client.post(review_page(undecided.link), {"choose": postransaction_id}, follow=follow)


def test_a_manager_sees_both_candidates_with_amount_and_payer_url(as_manager, undecided):
    html = as_manager.get(review_page(undecided.link)).content.decode()
    for pk in (undecided.ours, undecided.duplicate):
        assert f"Postransaction {pk}" in html
        assert f'href="{payer_url(undecided.link, pk)}"' in html
        assert f'value="{pk}"' in html  # its own "This is the one" button
    assert f"€{undecided.link.amount:,.2f}" in html
    assert html.count("This is the one</button>") == 2
    assert "Waiting for payment" in html
    assert "Cancel the others" not in html  # not before the choice


def test_the_link_page_leads_managers_to_the_decision(as_manager, undecided):
    html = as_manager.get(f"/links/{undecided.link.code}/").content.decode()
    assert "Decide which Provet link this is" in html
    assert review_page(undecided.link) in html


def test_this_is_the_one_adopts_the_chosen_postransaction(as_manager, manager, undecided):
    response = choose(as_manager, undecided, undecided.ours)
    assert response.status_code == 302
    assert response["Location"] == review_page(undecided.link)  # the other waits to be cancelled
    link = undecided.link
    link.refresh_from_db()
    assert link.state == PaymentLink.State.ACTIVE
    assert link.postransaction_id == undecided.ours
    assert not link.needs_review  # the candidates stay: the others may need cancelling
    assert sorted(link.review_candidates) == sorted([undecided.ours, undecided.duplicate])
    assert link.next_check_at is not None  # the poller follows it from now on
    event = link.events.get(kind=LinkEvent.Kind.RECONCILED)
    assert event.user == manager
    assert manager.username in event.message and str(undecided.ours) in event.message


def test_after_the_choice_the_page_offers_to_cancel_the_others(as_manager, undecided):
    choose(as_manager, undecided, undecided.ours)
    html = as_manager.get(review_page(undecided.link)).content.decode()
    assert f"Postransaction {undecided.duplicate}" in html
    assert f"Postransaction {undecided.ours} is this link" in html
    assert "Cancel the others</button>" in html
    assert 'data-confirm="Cancel 1 other Provet link in Provet?' in html
    assert "This is the one</button>" not in html


def test_cancel_the_others_deletes_the_duplicate_in_provet_and_records_it(
    as_manager, manager, undecided
):
    choose(as_manager, undecided, undecided.ours)
    response = as_manager.post(review_page(undecided.link), {"cancel_others": "1"}, follow=True)
    assert not PosTransaction.objects.filter(pk=undecided.duplicate).exists()
    assert PosTransaction.objects.filter(pk=undecided.ours).exists()
    event = undecided.link.events.get(kind=LinkEvent.Kind.CANCELLED)
    assert event.user == manager
    assert event.message == (
        f"Cancelled postransaction {undecided.duplicate} in Provet: a duplicate of this link."
    )
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/links/{undecided.link.code}/"
    assert event.message in html  # the message, and the link's timeline
    undecided.link.refresh_from_db()
    assert undecided.link.is_open and undecided.link.cancelled_at is None  # ours stays payable


def test_cancelling_the_others_twice_records_it_once(as_manager, undecided):
    choose(as_manager, undecided, undecided.ours)
    as_manager.post(review_page(undecided.link), {"cancel_others": "1"})
    response = as_manager.post(review_page(undecided.link), {"cancel_others": "1"}, follow=True)
    assert "Nothing was left to cancel" in response.content.decode()
    assert undecided.link.events.filter(kind=LinkEvent.Kind.CANCELLED).count() == 1
    html = as_manager.get(review_page(undecided.link)).content.decode()
    assert "Cancelled in Provet" in html
    assert "Cancel the others</button>" not in html


def test_a_paid_duplicate_is_reported_not_cancelled(as_manager, undecided):
    choose(as_manager, undecided, undecided.ours)
    control.settle_link(PosTransaction.objects.get(pk=undecided.duplicate).external_id, "pay")
    html = as_manager.get(review_page(undecided.link)).content.decode()
    assert "refund it in Provet" in html
    assert "Cancel the others</button>" not in html  # nothing pending to cancel
    response = as_manager.post(review_page(undecided.link), {"cancel_others": "1"}, follow=True)
    assert "Nothing was left to cancel" not in response.content.decode()
    assert PosTransaction.objects.filter(pk=undecided.duplicate).exists()
    error = undecided.link.events.get(kind=LinkEvent.Kind.ERROR, source=LinkEvent.Source.USER)
    assert "already paid" in error.message
    assert error.message in response.content.decode()


def test_choosing_the_only_match_left_goes_back_to_the_link(as_manager, undecided):
    PosTransaction.objects.filter(pk=undecided.duplicate).delete()  # deleted in Provet meanwhile
    response = choose(as_manager, undecided, undecided.ours)
    assert response["Location"] == f"/links/{undecided.link.code}/"
    undecided.link.refresh_from_db()
    assert undecided.link.postransaction_id == undecided.ours


def test_choosing_an_id_that_is_not_a_candidate_changes_nothing(as_manager, undecided):
    stranger = post_in_provet(undecided.link.invoice, Decimal("1.00"))
    response = choose(as_manager, undecided, stranger.id, follow=True)
    assert "is not one of the Provet links that matched" in response.content.decode()
    assert as_manager.post(review_page(undecided.link), {"choose": "abc"}).status_code == 400
    undecided.link.refresh_from_db()
    assert undecided.link.needs_review and undecided.link.postransaction_id is None
    assert not undecided.link.events.filter(kind=LinkEvent.Kind.RECONCILED).exists()


def test_a_candidate_another_link_owns_can_t_be_chosen(as_manager, undecided):
    link = undecided.link
    owner = PaymentLink.objects.create(
        practice=link.practice,
        invoice=link.invoice,
        department=link.department,
        amount=link.amount,
        currency="EUR",
        duration_minutes=60,
        idempotency_key="another-links-key",
        state=PaymentLink.State.ACTIVE,
        postransaction_id=undecided.duplicate,
    )
    html = as_manager.get(review_page(link)).content.decode()
    assert f'href="/links/{owner.code}/"' in html and "Belongs to" in html
    assert html.count("This is the one</button>") == 1
    response = choose(as_manager, undecided, undecided.duplicate, follow=True)
    assert "already belongs to another link" in response.content.decode()
    link.refresh_from_db()
    assert link.needs_review


def test_cancel_the_others_waits_for_the_choice(as_manager, undecided):
    response = as_manager.post(review_page(undecided.link), {"cancel_others": "1"}, follow=True)
    assert "First say which Provet link this is" in response.content.decode()
    assert PosTransaction.objects.filter(pk=undecided.duplicate).exists()


def test_the_invoice_s_other_real_links_are_imported_and_seen_meanwhile(as_manager, undecided):
    invoice = undecided.link.invoice
    other = post_in_provet(invoice, Decimal("5.00"))
    refresh_invoice(invoice.practice, invoice.provet_id)
    imported = PaymentLink.objects.get(postransaction_id=other.id)
    assert imported.imported
    assert not PaymentLink.objects.filter(
        postransaction_id__in=[undecided.ours, undecided.duplicate]
    ).exists()  # the candidates wait for the decision
    html = as_manager.get(review_page(undecided.link)).content.decode()
    assert f'href="/links/{imported.code}/"' in html


def test_a_duplicate_imported_after_the_choice_is_cancelled_with_its_link(as_manager, undecided):
    choose(as_manager, undecided, undecided.ours)
    invoice = undecided.link.invoice
    refresh_invoice(invoice.practice, invoice.provet_id)  # the invoice page, opened meanwhile
    imported = PaymentLink.objects.get(postransaction_id=undecided.duplicate)
    assert imported.imported and imported.is_open
    as_manager.post(review_page(undecided.link), {"cancel_others": "1"})
    assert not PosTransaction.objects.filter(pk=undecided.duplicate).exists()
    imported.refresh_from_db()
    assert imported.cancelled_at is not None and not imported.is_open


def test_a_provet_error_is_a_message_on_the_page_never_a_500(as_manager, undecided):
    add_fault(
        undecided.link.practice,
        path=r"postransaction/\d+/$",
        method="GET",
        kind="429",
        retry_after=60,
        count=None,
    )
    response = as_manager.get(review_page(undecided.link))
    assert response.status_code == 200
    assert "Provet Cloud could not be read" in response.content.decode()
    response = choose(as_manager, undecided, undecided.ours, follow=True)
    assert "Nothing was decided" in response.content.decode()
    undecided.link.refresh_from_db()
    assert undecided.link.needs_review


@pytest.mark.parametrize("method", ["get", "post"])
def test_reception_staff_see_the_link_but_get_403_on_the_decision(
    client, receptionist, undecided, method
):
    client.force_login(receptionist)
    assert (
        "Decide which Provet link"
        not in client.get(f"/links/{undecided.link.code}/").content.decode()
    )
    response = getattr(client, method)(review_page(undecided.link), {"choose": undecided.ours})
    assert response.status_code == 403
    undecided.link.refresh_from_db()
    assert undecided.link.needs_review


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_practice_s_staff_get_404(client, outsider, undecided, method):
    client.force_login(outsider)
    response = getattr(client, method)(review_page(undecided.link), {"choose": undecided.ours})
    assert response.status_code == 404
    undecided.link.refresh_from_db()
    assert undecided.link.needs_review


def test_a_link_with_nothing_to_decide_sends_the_manager_back_to_it(
    as_manager, invoice, receptionist
):
    link = create_link(draft_for(invoice, receptionist))
    response = as_manager.get(review_page(link))
    assert response["Location"] == f"/links/{link.code}/"


def test_none_of_these_marks_the_link_not_created_and_the_candidates_become_links(
    as_manager, manager, undecided
):
    response = as_manager.post(review_page(undecided.link), {"none": "1"})
    assert response["Location"] == f"/links/{undecided.link.code}/"
    link = undecided.link
    link.refresh_from_db()
    assert (link.state, link.needs_review) == (PaymentLink.State.FAILED, False)
    assert link.events.get(kind=LinkEvent.Kind.ERROR, user=manager).new_value == "Not created"
    refresh_invoice(link.practice, link.invoice.provet_id)  # the invoice page, opened next
    imported = PaymentLink.objects.filter(imported=True).values_list("postransaction_id", flat=True)
    assert sorted(imported) == sorted([undecided.ours, undecided.duplicate])
