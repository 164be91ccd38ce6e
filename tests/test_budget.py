"""One budget of Provet requests per practice, shared by every path, process and machine."""

import datetime as dt
import threading

import httpx
import pytest
from django.db import connection
from django.test import Client as DjangoClient
from django.utils import timezone

from clinics.budget import Budget, Priority, priority
from clinics.models import Practice, RequestBudget
from clinics.provet import ProvetBudgetSpent, ProvetRateLimited
from clinics.provet import client as provet_client
from clinics.provet.in_process import wsgi_transport
from paylinks.models import Invoice
from sandbox import control
from sandbox.models import Invoice as ProvetInvoice
from tests.conftest import add_fault, sandbox_invoice
from tests.racing import DEADLINE


class CountingTransport(httpx.BaseTransport):
    """The in-process sandbox, counting the API requests that reached it and its 429s."""

    def __init__(self) -> None:
        self.inner = wsgi_transport()
        self.lock = threading.Lock()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "/api/" in request.url.path:
            with self.lock:
                self.statuses.append(response.status_code)
        return response


@pytest.fixture
def sent(monkeypatch, in_process_provet) -> CountingTransport:
    transport = CountingTransport()
    monkeypatch.setattr(provet_client, "default_transport", lambda: transport)
    return transport


@pytest.fixture
def small_budget(practice) -> Practice:
    """10 requests a minute: background work may send 8 of them."""
    practice.rate_budget_per_minute = 10
    practice.save()
    RequestBudget.objects.all().delete()
    return practice


def read_departments(practice: Practice, times: int) -> int:
    """Ask Provet `times` times (one request each); answer how many were allowed."""
    allowed = 0
    with practice.provet_client() as client:
        for _ in range(times):
            try:
                client.list_departments()
            except ProvetBudgetSpent:
                continue
            allowed += 1
    return allowed


def test_background_work_stops_at_its_share_and_sends_nothing_more(small_budget, sent):
    assert read_departments(small_budget, 12) == 8
    assert len(sent.statuses) == 8


def test_pages_may_spend_what_background_work_leaves(small_budget, sent):
    read_departments(small_budget, 8)
    with priority(Priority.PAGE):
        assert read_departments(small_budget, 5) == 2
    assert len(sent.statuses) == 10


def test_every_client_of_the_practice_draws_on_the_same_count(small_budget, sent, other_practice):
    for _ in range(4):
        read_departments(small_budget, 2)  # a new client each time, as each task makes
    assert read_departments(small_budget, 1) == 0
    assert read_departments(other_practice, 1) == 1  # another installation, its own budget


def test_a_web_request_reads_at_page_priority(small_budget, receptionist, sent):
    read_departments(small_budget, 8)  # background work has spent its share
    client = DjangoClient()
    client.force_login(receptionist)
    page = client.get("/", {"q": sandbox_invoice(small_budget).invoice_number})
    assert page.status_code == 200
    assert len(sent.statuses) > 8  # the search was sent, from the part kept for pages


def test_the_previous_minute_still_counts_for_part_of_the_next(small_budget, sent, app_clock):
    minute = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    app_clock(minute + dt.timedelta(seconds=50))
    assert read_departments(small_budget, 8) == 8
    # 15 s into the next minute, 45/60 of the last minute's 8 are still inside the window.
    app_clock(minute + dt.timedelta(seconds=75))
    assert read_departments(small_budget, 8) == 2
    app_clock(minute + dt.timedelta(seconds=200))  # once those minutes are past: all of it
    assert read_departments(small_budget, 10) == 8


def test_a_429_on_a_page_read_pauses_background_work_everywhere(small_budget, sent):
    add_fault(small_budget, path="department/$", kind="429", retry_after=40)
    with priority(Priority.PAGE), pytest.raises(ProvetRateLimited):
        read_departments(small_budget, 1)
    small_budget.refresh_from_db()
    assert small_budget.paused_until > timezone.now() + dt.timedelta(seconds=35)
    with small_budget.provet_client() as client, pytest.raises(ProvetBudgetSpent) as refused:
        client.list_departments()
    assert "asked PayLinks to wait" in str(refused.value)
    with priority(Priority.PAGE):
        assert read_departments(small_budget, 1) == 1  # a person may still try
    assert sent.statuses == [429, 200]


def test_background_work_does_not_retry_a_429_inside_its_request(small_budget, sent):
    add_fault(small_budget, path="department/$", kind="429", retry_after=1, count=3)
    with small_budget.provet_client() as client, pytest.raises(ProvetRateLimited):
        client.list_departments()
    assert sent.statuses == [429]


def test_a_webhook_flood_stays_inside_the_budget(synced_practice, sent, app_clock):
    """Anyone with the address can send webhooks: their follow-ups are background work."""
    # The whole flood inside one minute: on a slow machine it could last into the next one,
    # where the sliding window rightly lets a few more through.
    app_clock(timezone.now().replace(second=20, microsecond=0))
    practice = synced_practice
    invoices = list(ProvetInvoice.objects.filter(installation__provet_id=practice.provet_id)[:40])
    control.set_rate_limits(practice.provet_id, {"GET /invoice/{id}/": 20})
    for row in invoices:  # PayLinks knows them, and has a link waiting on each
        Invoice.objects.create(
            practice=practice,
            provet_id=row.pk,
            number=str(row.pk),
            status=3,
            due_sum=1,
            fetched_at=timezone.now(),
        )
    RequestBudget.objects.all().delete()
    practice.rate_budget_per_minute = 20
    practice.save()
    web = DjangoClient()
    statuses = [
        web.post(f"/webhooks/provet/{practice.webhook_secret}/", {"invoice_id": row.pk})
        for row in invoices * 3
    ]
    assert {response.status_code for response in statuses} <= {200, 202, 204}
    assert 429 not in sent.statuses
    assert len(sent.statuses) <= 16  # background work's share of 20


# Processes race for the last request of the budget ------------------------------------------

RACERS = 12


def race(practice: Practice, spend) -> int:
    """Each thread (its own database connection) spends one request; answer how many could."""
    start = threading.Barrier(RACERS, timeout=DEADLINE)
    allowed: list[bool] = []

    def run():
        try:
            start.wait()
            spend(Budget(practice))
            allowed.append(True)
        except ProvetBudgetSpent:
            allowed.append(False)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer never finished"
    return sum(allowed)


@pytest.mark.django_db(transaction=True)
def test_racing_processes_never_spend_more_than_the_budget(seeded, in_process_provet):
    practice = Practice.objects.get(pk=make_practice_for_race(seeded).pk)
    assert race(practice, Budget.spend) == 4  # background's share of 5


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite writers never overlap")
@pytest.mark.django_db(transaction=True)
def test_control_a_count_read_then_written_lets_the_racers_through(seeded, in_process_provet):
    practice = make_practice_for_race(seeded)
    meeting = threading.Barrier(RACERS, timeout=DEADLINE)

    def read_then_write(budget: Budget) -> None:
        row, _ = RequestBudget.objects.get_or_create(practice_id=budget.practice.pk)
        if row.spent >= 4:
            raise ProvetBudgetSpent("spent", retry_after=60)
        meeting.wait()  # everyone has read the same count
        row.spent += 1
        row.save()

    assert race(practice, read_then_write) == RACERS


def make_practice_for_race(seeded) -> Practice:
    from tests.conftest import make_practice

    practice = make_practice(seeded[0], "http://localhost")
    practice.rate_budget_per_minute = 5
    practice.save()
    return practice
