"""The poller under pressure: two workers at once, a crash mid-pass, a storm of 429s."""

import datetime as dt
import threading

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from clinics.provet import client as provet_client
from clinics.provet.in_process import wsgi_transport
from paylinks import polling
from paylinks.cadence import interval_for
from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus
from sandbox import clock, control
from tests.conftest import draft_for
from tests.racing import DEADLINE


class CountingTransport(httpx.BaseTransport):
    """The in-process sandbox, with a record of every request made to it."""

    def __init__(self) -> None:
        self.inner = wsgi_transport()
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        with self.lock:
            self.seen.append((request.method, request.url.path, response.status_code))
        return response

    def status_checks(self) -> list[str]:
        return [
            path for method, path, _ in self.seen if method == "GET" and "postransaction/" in path
        ]

    def statuses(self) -> list[int]:
        return [status for _, path, status in self.seen if "postransaction/" in path]


@pytest.fixture
def counting(monkeypatch, in_process_provet) -> CountingTransport:
    transport = CountingTransport()
    monkeypatch.setattr(provet_client, "default_transport", lambda: transport)
    return transport


def due_links(invoice, user, count: int) -> tuple[list[PaymentLink], dt.datetime]:
    links = [create_link(draft_for(invoice, user, amount=1)) for _ in range(count)]
    now = timezone.now()
    PaymentLink.objects.filter(pk__in=[x.pk for x in links]).update(next_check_at=now)
    return links, now


def two_workers_at_once(now: dt.datetime, monkeypatch) -> None:
    """Two poller passes that both read the due list before either claims anything."""
    both_have_read = threading.Barrier(2, timeout=DEADLINE)
    read = polling.due_links

    def read_then_wait(*args, **kwargs):
        found = read(*args, **kwargs)
        both_have_read.wait()
        return found

    monkeypatch.setattr(polling, "due_links", read_then_wait)
    errors: list[BaseException] = []

    def worker():
        try:
            polling.poll_due_links(now=now)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer never finished"
    assert not errors, errors


needs_postgres = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="needs a database that serves two threads at once"
)


@needs_postgres
def test_two_workers_never_check_one_link_twice(
    transactional_db, invoice, receptionist, counting, monkeypatch
):
    links, now = due_links(invoice, receptionist, 4)
    control.settle_link(links[0].external_id, "pay")
    counting.seen.clear()
    # The race under test is between two due-list reads; the invoice feed has its own claim.
    monkeypatch.setattr(polling, "_links_on_changed_invoices", lambda practice, now: [])

    two_workers_at_once(now, monkeypatch)

    checks = counting.status_checks()
    assert sorted(checks) == sorted(set(checks)) and len(checks) == 4
    assert links[0].events.filter(kind=LinkEvent.Kind.PAYMENT_CHANGED).count() == 1


@needs_postgres
def test_without_the_claim_two_workers_would_check_every_link_twice(
    transactional_db, invoice, receptionist, counting, monkeypatch
):
    # The control: it shows the test above can fail, and what the claim prevents.
    _, now = due_links(invoice, receptionist, 4)
    counting.seen.clear()
    monkeypatch.setattr(polling, "_links_on_changed_invoices", lambda practice, now: [])
    monkeypatch.setattr(polling, "claim", lambda link, now: True)

    two_workers_at_once(now, monkeypatch)

    assert len(counting.status_checks()) == 8


def test_a_crash_in_the_middle_of_a_pass_loses_nothing(invoice, receptionist, monkeypatch):
    links, now = due_links(invoice, receptionist, 3)
    for link in links:
        control.settle_link(link.external_id, "pay")
    record = PaymentLink.record_status
    calls = []

    def dies_on_the_second(self, *args, **kwargs):
        calls.append(self.pk)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return record(self, *args, **kwargs)

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(PaymentLink, "record_status", dies_on_the_second)
        polling.poll_due_links(now=now)

    # No hot loop: the link the worker died on waits for its next time, like a checked one.
    assert polling.poll_due_links(now=now).checked == 1
    later = now + interval_for(dt.timedelta(0), on_invoice=True)
    polling.poll_due_links(now=later)
    for link in links:
        link.refresh_from_db()
        assert link.payment_status == PaymentStatus.ACCEPTED
        assert link.events.filter(kind=LinkEvent.Kind.PAYMENT_CHANGED).count() == 1


def test_a_link_whose_check_was_killed_is_due_again_after_the_lease_not_its_interval(
    invoice, receptionist, monkeypatch
):
    """A SIGKILLed worker never finishes the check it claimed: an old invoice link would wait
    hours for its next look, however paid it is."""
    (link,), now = due_links(invoice, receptionist, 1)
    control.settle_link(link.external_id, "pay")

    def killed(self, *args, **kwargs):
        raise SystemExit("worker killed")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(PaymentLink, "record_status", killed)
        polling.poll_due_links(now=now)

    assert polling.poll_due_links(now=now + dt.timedelta(seconds=30)).checked == 0  # claimed
    polling.poll_due_links(now=now + polling.CLAIM_LEASE)
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.ACCEPTED


def test_a_429_storm_is_obeyed(invoice, receptionist, counting, app_clock):
    practice = invoice.practice
    practice.rate_budget_per_minute = 300
    practice.save()
    links, now = due_links(invoice, receptionist, 12)
    control.set_rate_limits(practice.provet_id, {"GET /postransaction/{id}/": 5})
    counting.seen.clear()

    first = polling.poll_due_links(now=now)
    assert (first.checked, first.paused) == (5, [practice.name])
    assert counting.statuses().count(429) == 1
    practice.refresh_from_db()
    assert practice.paused_until > now + dt.timedelta(seconds=30)

    # Every pass while paused sends nothing, however many links are due.
    for seconds in range(10, 60, 10):
        app_clock(now + dt.timedelta(seconds=seconds))
        assert polling.poll_due_links(now=now + dt.timedelta(seconds=seconds)).checked == 0
    assert counting.statuses().count(429) == 1

    # Once Retry-After has passed (on Provet's clock too), the rest are checked.
    resume = practice.paused_until + dt.timedelta(seconds=1)
    clock.advance((resume - timezone.now()).total_seconds())
    app_clock(resume)
    PaymentLink.objects.filter(pk__in=[x.pk for x in links]).update(next_check_at=resume)
    assert polling.poll_due_links(now=resume).checked == 5
