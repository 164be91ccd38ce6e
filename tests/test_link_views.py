"""The link page and its actions, scoped to the person's practices."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from clinics.provet import ProvetClient
from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus
from paylinks.words import status_words
from sandbox import control
from sandbox.models import Invoice as ProvetInvoice
from sandbox.models import PosTransaction
from tests.conftest import draft_for, time_as_read


@pytest.fixture
def link(invoice, receptionist) -> PaymentLink:
    return create_link(draft_for(invoice, receptionist, amount=Decimal("10.00")))


@pytest.fixture
def staff(client, receptionist):
    client.force_login(receptionist)
    return client


def page_of(link: PaymentLink) -> str:
    return f"/links/{link.code}/"


def test_the_link_page_shows_the_payer_url_qr_code_and_status(staff, link):
    html = staff.get(page_of(link)).content.decode()
    assert link.payer_url in html
    assert "<svg" in html and "QR code of the payment link" in html
    assert "Waiting for payment" in html
    assert "Copy link" in html
    assert "Link made, to hand over" in html  # the timeline, in a receptionist's words
    assert "Check now" in html


EVERY_LINK_URL = [
    ("get", ""),
    ("get", "status/"),
    ("post", "check/"),
    ("post", "cancel/"),
    ("post", "send-again/"),
]


@pytest.mark.parametrize(("method", "suffix"), EVERY_LINK_URL)
def test_another_practice_s_receptionist_gets_404_everywhere(
    client, outsider, link, method, suffix
):
    client.force_login(outsider)
    response = getattr(client, method)(page_of(link) + suffix)
    assert response.status_code == 404
    link.refresh_from_db()
    assert link.is_open


def test_the_live_status_turns_to_paid_once_the_client_pays(staff, link):
    control.settle_link(link.external_id, "pay")
    response = staff.get(page_of(link) + "status/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "Paid" in html
    assert "hx-trigger" not in html  # final: the page stops polling
    assert 'hx-swap-oob="true"' in html  # the timeline comes along
    link.refresh_from_db()
    assert link.paid_at is not None


def test_check_now_asks_provet_and_records_it(staff, link, monkeypatch):
    asked = []
    read = ProvetClient.get_postransaction

    def spy(client, postransaction_id):
        asked.append(postransaction_id)
        return read(client, postransaction_id)

    monkeypatch.setattr(ProvetClient, "get_postransaction", spy)
    staff.post(page_of(link) + "check/")
    assert asked == [link.postransaction_id]
    assert link.events.filter(kind=LinkEvent.Kind.REFRESHED).count() == 1


def test_check_now_asks_at_most_once_every_few_seconds(staff, link):
    staff.post(page_of(link) + "check/")
    response = staff.post(page_of(link) + "check/", follow=True)
    assert "Checked a moment ago" in response.content.decode()
    assert link.events.filter(kind=LinkEvent.Kind.REFRESHED).count() == 1


def test_cancel_deletes_the_postransaction_and_shows_cancelled(staff, link):
    response = staff.post(page_of(link) + "cancel/", follow=True)
    assert "The link is cancelled" in response.content.decode()
    link.refresh_from_db()
    assert link.cancelled_at is not None
    assert status_words(link)[0] == "Cancelled"
    assert not PosTransaction.objects.filter(pk=link.postransaction_id).exists()
    assert link.events.filter(kind=LinkEvent.Kind.CANCELLED).exists()


def test_a_paid_link_cannot_be_cancelled(staff, link):
    control.settle_link(link.external_id, "pay")
    response = staff.post(page_of(link) + "cancel/", follow=True)
    assert "already paid" in response.content.decode()
    link.refresh_from_db()
    assert link.cancelled_at is None


def test_send_again_makes_a_new_link_for_what_is_due_and_retires_the_old(staff, link):
    response = staff.post(page_of(link) + "send-again/", {"form_token": "a" * 32})
    new = PaymentLink.objects.exclude(pk=link.pk).get()
    assert response["Location"] == page_of(new)
    assert new.replaces == link
    due = ProvetInvoice.objects.get(pk=link.invoice.provet_id).due_sum
    assert new.amount == due
    link.refresh_from_db()
    assert link.cancelled_at is not None  # the client can't pay twice
    assert link.events.filter(kind=LinkEvent.Kind.REISSUED).exists()
    assert "Replaced by" in staff.get(page_of(link)).content.decode()


def test_send_again_is_refused_when_the_invoice_was_paid_another_way(staff, link):
    invoice = ProvetInvoice.objects.get(pk=link.invoice.provet_id)
    invoice.due_sum = Decimal("0")
    invoice.save()
    response = staff.post(page_of(link) + "send-again/", {"form_token": "b" * 32}, follow=True)
    assert "Nothing is due" in response.content.decode()
    assert PaymentLink.objects.count() == 1


def test_an_expired_link_shows_as_expired(staff, link):
    from sandbox import clock

    clock.advance(dt.timedelta(hours=2).total_seconds())
    PaymentLink.objects.filter(pk=link.pk).update(checked_at=timezone.now() - dt.timedelta(1))
    html = staff.get(page_of(link) + "status/").content.decode()
    assert "Expired" in html
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.EXPIRED


def test_a_postransaction_deleted_in_provet_shows_as_cancelled_by_paylinks(staff, link):
    with link.practice.provet_client() as provet:
        provet.delete_postransaction(link.postransaction_id)
    staff.post(page_of(link) + "check/")
    link.refresh_from_db()
    event = link.events.get(kind=LinkEvent.Kind.CANCELLED)
    assert (event.source, event.new_value) == ("system", "Cancelled")
    assert event.message == "Deleted in Provet Cloud"


def test_send_again_with_someone_else_s_form_token_is_refused(
    client, outsider, other_practice, staff, link
):
    foreign = PaymentLink.objects.create(
        practice=other_practice,
        prepayment=None,
        invoice=link.invoice,
        department=link.department,
        amount=Decimal("5.00"),
        currency="GBP",
        duration_minutes=60,
        idempotency_key="x" * 32,
        created_by=outsider,
        state=PaymentLink.State.ACTIVE,
    )
    response = staff.post(page_of(link) + "send-again/", {"form_token": "x" * 32}, follow=True)
    html = response.content.decode()
    assert "This form has expired" in html
    assert "£5.00" not in html
    link.refresh_from_db()
    assert link.cancelled_at is None and link.is_open
    assert PaymentLink.objects.count() == 2
    assert foreign.replaces is None


def test_a_paid_prepayment_is_not_sent_again(staff, synced_practice, receptionist):
    from paylinks.create import LinkDraft
    from paylinks.forms import new_form_token
    from sandbox.models import Client as ProvetClientRow

    department = synced_practice.departments.filter(allow_nhp_processing=True).first()
    prepaid = create_link(
        LinkDraft(
            practice=synced_practice,
            department=department,
            amount=Decimal("30.00"),
            delivery_method=0,
            email="",
            phone="",
            description="Deposit",
            duration_minutes=60,
            return_url="",
            tokenize="",
            recurring_model="",
            consent=False,
            created_by=receptionist,
            idempotency_key=new_form_token(),
            client_provet_id=ProvetClientRow.objects.filter(installation__provet_id=4)[0].id,
        )
    )
    control.settle_link(prepaid.external_id, "pay")  # the page hasn't seen it yet
    response = staff.post(page_of(prepaid) + "send-again/", {"form_token": "c" * 32}, follow=True)
    assert "already paid" in response.content.decode()
    assert PaymentLink.objects.count() == 1


def test_a_malformed_client_id_is_not_an_error(staff, synced_practice):
    assert staff.get("/prepayments/new/", {"client": "²"}).status_code == 200


def test_a_paid_link_shows_what_was_paid_and_when_instead_of_the_qr_code(staff, link):
    control.settle_link(link.external_id, "pay")
    staff.post(page_of(link) + "check/")
    link.refresh_from_db()
    html = staff.get(page_of(link)).content.decode()
    assert "Copy link" not in html and "QR code of the payment link" not in html
    assert link.payer_url not in html
    summary = html[html.index('data-testid="paid-summary"') :]
    assert "€10.00</span> paid" in summary
    paid_at = time_as_read(link.paid_at, "en-gb", link.practice.zone)
    assert f"at {paid_at}" in summary
    assert "Check now" not in html  # final: nothing more to find out


def test_the_qr_code_goes_as_soon_as_the_watched_page_sees_the_payment(staff, link):
    control.settle_link(link.external_id, "pay")
    html = staff.get(page_of(link) + "status/", headers={"HX-Request": "true"}).content.decode()
    payer = html[html.index('id="link-payer"') :]
    assert 'hx-swap-oob="true"' in payer[:60]
    assert "QR code of the payment link" not in html and "Copy link" not in html
    assert 'data-testid="paid-summary"' in payer


def test_check_now_says_nothing_changed_since_the_last_check(staff, link):
    last = timezone.now() - dt.timedelta(minutes=7)
    PaymentLink.objects.filter(pk=link.pk).update(checked_at=last)
    response = staff.post(page_of(link) + "check/", follow=True)
    shown = time_as_read(last, "en-gb", link.practice.zone)
    assert f"No change since {shown}." in response.content.decode()
    assert link.events.filter(kind=LinkEvent.Kind.REFRESHED).count() == 1


def test_check_now_says_when_the_client_paid(staff, link):
    control.settle_link(link.external_id, "pay")
    response = staff.post(page_of(link) + "check/", follow=True)
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.ACCEPTED
    paid_at = time_as_read(link.paid_at, "en-gb", link.practice.zone)
    assert f"Paid at {paid_at}." in response.content.decode()


def test_check_now_says_the_link_expired(staff, link):
    from sandbox import clock

    clock.advance(dt.timedelta(hours=2).total_seconds())
    response = staff.post(page_of(link) + "check/", follow=True)
    html = response.content.decode()
    assert "Expired unpaid." in html
    assert "Check now" not in html


@pytest.mark.parametrize("ending", ["pay", "cancel", "expire", "replace"])
def test_check_now_is_not_offered_on_a_final_link_nor_asks_provet(staff, link, ending, monkeypatch):
    if ending == "pay":
        control.settle_link(link.external_id, "pay")
        staff.post(page_of(link) + "check/")
    elif ending == "cancel":
        staff.post(page_of(link) + "cancel/")
    elif ending == "expire":
        PaymentLink.objects.filter(pk=link.pk).update(
            state=PaymentLink.State.CLOSED, payment_status=PaymentStatus.EXPIRED
        )
    else:
        staff.post(page_of(link) + "send-again/", {"form_token": "d" * 32})
    asked = []
    monkeypatch.setattr(ProvetClient, "get_postransaction", lambda *a: asked.append(a))
    assert "Check now" not in staff.get(page_of(link)).content.decode()
    response = staff.post(page_of(link) + "check/", follow=True)  # a page left open
    assert "nothing more to check" in response.content.decode()
    assert asked == []


def test_a_replaced_link_points_to_the_new_one_instead_of_the_qr_code(staff, link):
    staff.post(page_of(link) + "send-again/", {"form_token": "e" * 32})
    html = staff.get(page_of(link)).content.decode()
    assert "Copy link" not in html and "QR code of the payment link" not in html
    assert "the client pays" in html and "the new link" in html


def test_the_link_page_speaks_the_person_s_formats(staff, link):
    """Amounts, days and times as the page's language writes them: 10,00 € and 10.41 in
    Finnish (the words may still be English until the catalog has them)."""
    from clinics.languages import SESSION_KEY

    control.settle_link(link.external_id, "pay")
    staff.post(page_of(link) + "check/")
    link.refresh_from_db()
    english = staff.get(page_of(link)).content.decode()
    assert '<span class="amount">€10.00</span>' in english
    assert time_as_read(link.paid_at, "en-gb", link.practice.zone) in english

    session = staff.session
    session[SESSION_KEY] = "fi"
    session.save()
    finnish = staff.get(page_of(link)).content.decode()
    assert '<span class="amount">10,00\xa0€</span>' in finnish
    assert time_as_read(link.paid_at, "fi", link.practice.zone) in finnish
    assert "€10.00" not in finnish
