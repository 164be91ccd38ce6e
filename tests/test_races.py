"""Never more asked than is due, with requests that really race (threads and barriers).

Each test releases the requests together, then holds every request that has passed the checks
at a meeting point just before it writes its reservation (tests/racing.py). With the locks, the
first request waits there until the others are queued on the invoice's lock, and the rest see
its link when their turn comes. The controls take the guard away: every request meets there
before any writes, and the tests show what the guard prevents.

On PostgreSQL the guard is a row lock. On SQLite (a file, in tests too) it is the write lock
every transaction takes when it begins (`transaction_mode` IMMEDIATE): the same tests pass
there, and there is no lock to take away, so the controls run on PostgreSQL only.
"""

import threading
from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.test import Client as DjangoClient

from clinics.provet import client as provet_client
from clinics.provet.in_process import wsgi_transport
from paylinks import create
from paylinks.create import create_link
from paylinks.models import PaymentLink
from sandbox.models import PosTransaction
from tests.conftest import draft_for, form_data
from tests.racing import Race

needs_row_locks = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite's immediate transactions can't be taken away"
)


class CountingTransport(httpx.BaseTransport):
    """The in-process sandbox, with a record of every request made to it."""

    def __init__(self) -> None:
        self.inner = wsgi_transport()
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append((request.method, request.url.path))
        return self.inner.handle_request(request)

    def count(self, method: str) -> int:
        return sum(1 for m, path in self.seen if m == method and path.endswith("/postransaction/"))

    def deletes(self) -> int:
        return sum(1 for m, path in self.seen if m == "DELETE" and "postransaction/" in path)


@pytest.fixture
def counting(monkeypatch, in_process_provet) -> CountingTransport:
    transport = CountingTransport()
    monkeypatch.setattr(provet_client, "default_transport", lambda: transport)
    return transport


@pytest.fixture
def rendezvous(monkeypatch):
    """Hold every request that passed the "not above due" check at a meeting point just before
    it writes its reservation (tests/racing.py). The door is `_reserve`, whose transaction
    takes the locks. `arm(parties)` for the guarded tests, `guarded=False` for the controls;
    it answers the race, whose `run` releases the requests together."""

    def arm(parties: int, *, guarded: bool = True) -> Race:
        race = Race(parties, guarded=guarded)
        check = create._check_not_above_due

        def check_then_meet(invoice, draft):
            check(invoice, draft)
            race.meet()

        monkeypatch.setattr(create, "_check_not_above_due", check_then_meet)
        monkeypatch.setattr(create, "_reserve", race.door(create._reserve))
        return race

    return arm


@pytest.fixture
def without_the_locks(monkeypatch):
    """The control: read the rows the reservation checks without locking them."""
    monkeypatch.setattr(
        create, "_lock_invoice", lambda invoice: type(invoice).objects.get(pk=invoice.pk)
    )
    monkeypatch.setattr(create, "_lock_link", lambda link: PaymentLink.objects.get(pk=link.pk))


def signed_in(user) -> DjangoClient:
    client = DjangoClient()
    client.force_login(user)
    return client


def payable_in_paylinks(invoice) -> list[Decimal]:
    return list(invoice.open_links().values_list("amount", flat=True))


def payable_in_provet(invoice) -> list[Decimal]:
    rows = PosTransaction.objects.filter(invoice_id=invoice.provet_id, payment_status=1)
    return list(rows.values_list("amount", flat=True))


def open_tab(user, invoice):
    """A staff member opens the invoice page: a form with its own one-time token."""
    client = signed_in(user)
    page = client.get(f"/invoices/{invoice.provet_id}/")
    return client, form_data(page)


def submit(client, invoice, data):
    return lambda: client.post(f"/invoices/{invoice.provet_id}/", data)


def test_two_tabs_submitting_the_invoice_form_make_one_link(
    transactional_db, invoice, receptionist, manager, counting, rendezvous
):
    tabs = [open_tab(receptionist, invoice), open_tab(manager, invoice)]
    counting.seen.clear()
    race = rendezvous(2)

    answers = race.run([submit(client, invoice, data) for client, data in tabs])

    race.assert_others_queued()  # the other tab really waited on the lock
    assert sorted(answer.status_code for answer in answers) == [200, 302]
    [refused] = [answer for answer in answers if answer.status_code == 200]
    assert "already ask for" in refused.context["form"].errors["amount"][0]
    assert payable_in_paylinks(invoice) == [invoice.due_sum]
    assert payable_in_provet(invoice) == [invoice.due_sum]
    assert counting.count("POST") == 1


@needs_row_locks
def test_without_the_lock_two_tabs_would_make_two_full_links(
    transactional_db, invoice, receptionist, manager, counting, rendezvous, without_the_locks
):
    tabs = [open_tab(receptionist, invoice), open_tab(manager, invoice)]
    counting.seen.clear()
    race = rendezvous(2, guarded=False)

    answers = race.run([submit(client, invoice, data) for client, data in tabs])

    assert race.most_met == 2  # both had checked before either wrote
    assert [answer.status_code for answer in answers] == [302, 302]
    assert payable_in_paylinks(invoice) == [invoice.due_sum] * 2
    assert payable_in_provet(invoice) == [invoice.due_sum] * 2


def test_twenty_submits_of_one_form_make_one_link_and_one_post(
    transactional_db, invoice, receptionist, counting, rendezvous
):
    _, data = open_tab(receptionist, invoice)
    clients = [signed_in(receptionist) for _ in range(20)]
    counting.seen.clear()
    race = rendezvous(20)

    answers = race.run([submit(each, invoice, data) for each in clients])

    race.assert_others_queued()
    [link] = PaymentLink.objects.all()
    assert {answer["Location"] for answer in answers} == {f"/links/{link.code}/"}
    assert counting.count("POST") == 1
    assert payable_in_provet(invoice) == [invoice.due_sum]


def press_send_again(user, link):
    client = signed_in(user)
    page = client.get(f"/links/{link.code}/")
    token = page.context["send_again_token"]
    return lambda: client.post(f"/links/{link.code}/send-again/", {"form_token": token})


def test_two_people_pressing_send_again_make_one_new_link(
    transactional_db, invoice, receptionist, manager, counting, rendezvous
):
    old = create_link(draft_for(invoice, receptionist))
    presses = [press_send_again(receptionist, old), press_send_again(manager, old)]
    counting.seen.clear()
    race = rendezvous(2)

    answers = race.run(presses)

    race.assert_others_queued()
    [new] = PaymentLink.objects.filter(replaces=old)
    # Whoever pressed first, both are taken to the one new link.
    assert [answer["Location"] for answer in answers] == [f"/links/{new.code}/"] * 2
    assert payable_in_paylinks(invoice) == [invoice.due_sum]
    assert payable_in_provet(invoice) == [invoice.due_sum]
    assert (counting.count("POST"), counting.deletes()) == (1, 1)


@needs_row_locks
def test_without_the_locks_and_the_constraint_send_again_would_make_two(
    transactional_db, invoice, receptionist, manager, counting, rendezvous, without_the_locks
):
    old = create_link(draft_for(invoice, receptionist))
    presses = [press_send_again(receptionist, old), press_send_again(manager, old)]
    counting.seen.clear()
    race = rendezvous(2, guarded=False)
    [constraint] = [
        c for c in PaymentLink._meta.constraints if c.name == "link_one_live_replacement"
    ]
    with connection.schema_editor() as editor:
        editor.remove_constraint(PaymentLink, constraint)
    try:
        race.run(presses)
        assert race.most_met == 2
        assert PaymentLink.objects.filter(replaces=old).count() == 2
        assert payable_in_paylinks(invoice) == [invoice.due_sum] * 2
        assert payable_in_provet(invoice) == [invoice.due_sum] * 2
    finally:
        PaymentLink.objects.filter(replaces=old).delete()
        with connection.schema_editor() as editor:
            editor.add_constraint(PaymentLink, constraint)
