"""The notices on every staff page: a link of yours, or of your department today, was paid,
expired unpaid or couldn't be delivered (paylinks/views/notices.py)."""

import datetime as dt
import re
import uuid

import pytest
from django.db.models import Max
from django.test import Client as DjangoClient
from django.utils import timezone

from clinics.models import Membership
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import (
    DeliveryMethod,
    EventType,
    LinkEvent,
    NoticeDismissal,
    PaymentLink,
    PaymentStatus,
)
from paylinks.refresh import read_status
from paylinks.send_again import send_again
from sandbox import clock, control
from sandbox.models import Invoice as ProvetInvoice
from sandbox.models import PhoneNumber, PosTransaction
from tests.conftest import draft_for, make_user, sandbox_invoice

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def colleague(synced_practice):
    return make_user("ville", synced_practice, Membership.Role.RECEPTION)


def logged_in(user) -> DjangoClient:
    client = DjangoClient()
    client.force_login(user)
    return client


def invoices_in_two_departments(practice):
    """Two payable invoices in one Provet Pay department, and one in another."""
    first = sandbox_invoice(practice)
    same = sandbox_invoice(practice, department=first.department_id, id__gt=first.id)
    other = (
        ProvetInvoice.objects.filter(
            installation__provet_id=practice.provet_id,
            status=3,
            credit_note=False,
            due_sum__gt=0,
            department__allow_nhp_processing=True,
        )
        .exclude(department=first.department_id)
        .order_by("id")
        .first()
    )
    assert same and other, "the seed has payable invoices in two Provet Pay departments"
    return [refresh_invoice(practice, invoice.id) for invoice in (first, same, other)]


def link_for(invoice, user, **changes) -> PaymentLink:
    return create_link(draft_for(invoice, user, **changes))


def pay(link: PaymentLink) -> None:
    """The client pays on the payer page, and the poller reads it."""
    control.settle_link(link.external_id, "pay")
    read_status(link, source=LinkEvent.Source.POLLER)


def expire(link: PaymentLink) -> None:
    clock.advance(link.duration_minutes * 60 + 5)
    read_status(link, source=LinkEvent.Source.POLLER)


def notices_page(client, after=None):
    query = {} if after is None else {"after": after}
    return client.get("/notices/", query, **HTMX)


def shown(response) -> list[str]:
    """The notices' words, as a person sees them."""
    return re.findall(r'<a href="/links/[0-9a-f-]{36}/">([^<]+)</a>', response.content.decode())


def cursor(response) -> int:
    return int(
        re.search(r'id="notices-after" name="after" value="(\d+)"', response.content.decode())[1]
    )


def dismiss(client, link: PaymentLink, kind: str, **extra):
    return client.post("/notices/dismiss/", {"link": str(link.code), "kind": kind}, **extra)


def test_a_receptionist_is_told_her_link_was_paid_with_a_link_to_it(invoice, receptionist):
    link = link_for(invoice, receptionist)
    pay(link)

    response = notices_page(logged_in(receptionist))

    assert response.status_code == 200
    assert shown(response) == [f"Paid: invoice {invoice}, €{link.amount:,}"]
    assert f'href="/links/{link.code}/"' in response.content.decode()
    assert cursor(response) == link.events.aggregate(Max("pk"))["pk__max"]
    # Loading the page's notices is not news: the list doesn't refresh for it.
    assert "HX-Trigger" not in response


def test_nothing_new_since_the_page_loaded_is_a_204(invoice, receptionist):
    link = link_for(invoice, receptionist)
    pay(link)
    client = logged_in(receptionist)
    seen = cursor(notices_page(client))

    response = notices_page(client, after=seen)

    assert response.status_code == 204
    assert response.content == b""


def test_a_payment_after_the_page_loaded_arrives_with_the_signal_for_the_list(
    invoice, receptionist
):
    link = link_for(invoice, receptionist)
    client = logged_in(receptionist)
    first = notices_page(client)
    assert shown(first) == []
    assert notices_page(client, after=cursor(first)).status_code == 204

    pay(link)
    response = notices_page(client, after=cursor(first))

    assert response.status_code == 200
    assert shown(response) == [f"Paid: invoice {invoice}, €{link.amount:,}"]
    assert response["HX-Trigger"] == "link-noticed"
    assert notices_page(client, after=cursor(response)).status_code == 204


def test_a_colleague_s_link_made_today_in_her_department_is_noticed_but_not_another_s(
    synced_practice, receptionist, colleague
):
    mine, same_department, other_department = invoices_in_two_departments(synced_practice)
    link_for(mine, receptionist)
    theirs = link_for(same_department, colleague)
    elsewhere = link_for(other_department, colleague)
    pay(theirs)
    pay(elsewhere)

    assert shown(notices_page(logged_in(receptionist))) == [
        f"Paid: invoice {same_department}, €{theirs.amount:,}"
    ]
    # The colleague made both links: both are hers.
    assert len(shown(notices_page(logged_in(colleague)))) == 2


def test_a_colleague_s_link_made_before_today_is_not_her_department_s_today(
    synced_practice, receptionist, colleague
):
    mine, same_department, _ = invoices_in_two_departments(synced_practice)
    link_for(mine, receptionist)
    theirs = link_for(same_department, colleague)
    yesterday = synced_practice.start_of_today() - dt.timedelta(hours=1)
    PaymentLink.objects.filter(pk=theirs.pk).update(created_at=yesterday)
    pay(theirs)

    assert shown(notices_page(logged_in(receptionist))) == []
    assert len(shown(notices_page(logged_in(colleague)))) == 1


def test_yesterday_s_news_is_not_a_notice(invoice, receptionist):
    link = link_for(invoice, receptionist)
    pay(link)
    yesterday = invoice.practice.start_of_today() - dt.timedelta(minutes=1)
    link.events.update(created_at=yesterday)

    assert shown(notices_page(logged_in(receptionist))) == []


def test_an_expired_link_says_so_and_a_late_payment_is_noticed_after_it(invoice, receptionist):
    link = link_for(invoice, receptionist)
    expire(link)
    client = logged_in(receptionist)
    page = notices_page(client)
    assert shown(page) == [f"Link for invoice {invoice} expired unpaid"]
    assert dismiss(client, link, "expired", **HTMX).status_code == 200

    # A payment that raced the expiry: Provet has it paid after all, and the poller finds it.
    PosTransaction.objects.filter(pk=link.postransaction_id).update(
        payment_status=PaymentStatus.PENDING, expiration_time=clock.now() + dt.timedelta(hours=1)
    )
    pay(link)

    response = notices_page(client, after=cursor(page))
    assert shown(response) == [f"Paid: invoice {invoice}, €{link.amount:,}"]
    # A page that still shows the expiry drops it (an out-of-band delete).
    assert f'id="notice-{link.code}-expired" hx-swap-oob="delete"' in response.content.decode()
    # On the next page, the link's two events are one notice: it was paid.
    assert shown(notices_page(client)) == [f"Paid: invoice {invoice}, €{link.amount:,}"]


def test_an_expired_link_sent_again_is_no_longer_news(invoice, receptionist):
    """Expired unpaid is what the lists and the dashboard call it: not once sent again."""
    link = link_for(invoice, receptionist)
    expire(link)
    client = logged_in(receptionist)
    assert shown(notices_page(client)) == [f"Link for invoice {invoice} expired unpaid"]
    send_again(link, user=receptionist, idempotency_key="again-1")
    assert shown(notices_page(client)) == []


def test_an_sms_that_could_not_be_delivered_is_noticed(invoice, receptionist):
    PhoneNumber.objects.filter(phone_number=invoice.client_phone).update(undeliverable=True)
    link = link_for(
        invoice, receptionist, delivery_method=DeliveryMethod.SMS, phone=invoice.client_phone
    )
    clock.advance(10)
    read_status(link, source=LinkEvent.Source.POLLER)

    assert shown(notices_page(logged_in(receptionist))) == [
        f"Couldn&#x27;t deliver the SMS for invoice {invoice}"
    ]


def test_a_dismissed_notice_stays_gone_on_every_page_and_once_in_the_database(
    invoice, receptionist
):
    link = link_for(invoice, receptionist)
    pay(link)
    client = logged_in(receptionist)
    assert len(shown(notices_page(client))) == 1

    response = dismiss(client, link, "paid", **HTMX)
    again = dismiss(client, link, "paid", **HTMX)  # a second tab

    assert (response.status_code, response.content) == (200, b"")
    assert again.status_code == 200
    assert NoticeDismissal.objects.filter(user=receptionist, link=link, kind="paid").count() == 1
    assert shown(notices_page(client)) == []
    assert notices_page(client, after=0).status_code == 204


def test_dismissing_is_per_person(synced_practice, receptionist, colleague):
    mine, same_department, _ = invoices_in_two_departments(synced_practice)
    link_for(mine, colleague)
    link = link_for(same_department, receptionist)
    pay(link)

    dismiss(logged_in(receptionist), link, "paid", **HTMX)

    assert shown(notices_page(logged_in(receptionist))) == []
    assert len(shown(notices_page(logged_in(colleague)))) == 1


def test_without_htmx_dismissing_goes_back_to_the_page_but_never_elsewhere(invoice, receptionist):
    link = link_for(invoice, receptionist)
    pay(link)
    client = logged_in(receptionist)

    back = client.post(
        "/notices/dismiss/", {"link": str(link.code), "kind": "paid", "next": "/links/"}
    )
    away = client.post(
        "/notices/dismiss/",
        {"link": str(link.code), "kind": "paid", "next": "https://evil.example/"},
    )

    assert (back.status_code, back["Location"]) == (302, "/links/")
    assert (away.status_code, away["Location"]) == (302, "/")


def test_another_practice_s_person_sees_no_notice_and_cannot_dismiss_one(
    invoice, receptionist, outsider
):
    link = link_for(invoice, receptionist)
    pay(link)
    client = logged_in(outsider)

    assert shown(notices_page(client)) == []
    assert dismiss(client, link, "paid", **HTMX).status_code == 404
    assert not NoticeDismissal.objects.exists()


def test_bad_input_gets_a_clear_answer_never_a_500(invoice, receptionist):
    link = link_for(invoice, receptionist)
    client = logged_in(receptionist)

    assert notices_page(client, after="12abc").status_code == 400
    assert notices_page(client, after="١٢").status_code == 400  # digits, but not ASCII ones
    assert dismiss(client, link, "bored", **HTMX).status_code == 400
    bad_code = client.post("/notices/dismiss/", {"link": "nope", "kind": "paid"}, **HTMX)
    assert bad_code.status_code == 404
    unknown = client.post("/notices/dismiss/", {"link": str(uuid.uuid4()), "kind": "paid"}, **HTMX)
    assert unknown.status_code == 404
    assert client.get("/notices/dismiss/").status_code == 405
    assert not NoticeDismissal.objects.exists()


def test_a_logged_out_page_stops_polling_instead_of_showing_the_login_page(db):
    response = DjangoClient().get("/notices/", {"after": 3}, **HTMX)

    assert response.status_code == 286  # htmx stops polling on this
    assert response.content == b""


def test_every_staff_page_has_the_notice_region(invoice, receptionist):
    client = logged_in(receptionist)
    for path in ("/", "/links/", "/links/follow-up/", f"/invoices/{invoice.provet_id}/"):
        page = client.get(path).content.decode()
        assert 'role="status" aria-label="Payment notices"' in page, path
        assert 'hx-get="/notices/"' in page, path
    assert "/notices/" not in DjangoClient().get("/accounts/login/").content.decode()


def test_the_home_page_s_list_refreshes_itself_when_a_notice_arrives(invoice, receptionist):
    page = logged_in(receptionist).get("/").content.decode()

    section = re.search(r'<section[^>]*id="today-links"[^>]*>', page)[0]
    assert 'hx-trigger="link-noticed from:body"' in section
    assert 'hx-select="#today-links"' in section


def make_paid_links(link: PaymentLink, count: int) -> None:
    """`count` more paid links like `link`, each with its event, as a busy day leaves them."""
    copies = []
    for number in range(count):
        copy = PaymentLink.objects.get(pk=link.pk)
        copy.pk = None
        copy.code = uuid.uuid4()
        copy.idempotency_key = f"copy-{number}"
        copy.postransaction_id = 10_000_000 + number
        copies.append(copy)
    made = PaymentLink.objects.bulk_create(copies)
    PaymentLink.objects.filter(pk__in=[c.pk for c in made]).update(
        payment_status=PaymentStatus.ACCEPTED, paid_at=timezone.now()
    )
    LinkEvent.objects.bulk_create(
        LinkEvent(
            link=c,
            kind=LinkEvent.Kind.PAYMENT_CHANGED,
            source="poller",
            announces=EventType.PAID,
        )
        for c in made
    )


@pytest.mark.parametrize("links", [1, 60])
def test_polling_costs_the_same_queries_whatever_the_number_of_links(
    invoice, receptionist, django_assert_num_queries, links
):
    link = link_for(invoice, receptionist)
    pay(link)
    make_paid_links(link, links - 1)
    client = logged_in(receptionist)
    seen = cursor(notices_page(client))

    # Session, user, practice, and the one query for what's new.
    with django_assert_num_queries(4):
        assert notices_page(client, after=seen).status_code == 204
    # The same, and the header's practices (paylinks/context_processors.py) for the rendering.
    with django_assert_num_queries(5):
        page = notices_page(client)
    assert len(shown(page)) == min(links, 8)
