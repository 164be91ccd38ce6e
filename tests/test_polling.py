"""The poller: adaptive intervals, claims, forward-only statuses, pauses on 429 and bad keys."""

import datetime as dt

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from clinics.budget import Priority, priority
from clinics.models import Practice, RequestBudget
from clinics.provet import ProvetRateLimited
from clinics.provet import client as provet_client
from paylinks import tasks
from paylinks.cadence import AFTER_EXPIRY, interval_for, next_check_at
from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus
from paylinks.polling import PASSES_PER_MINUTE, due_links, poll_due_links
from paylinks.words import status_words
from sandbox import clock, control
from tests.conftest import add_fault, draft_for, link_made_in_provet


@pytest.fixture
def link(invoice, receptionist) -> PaymentLink:
    return create_link(draft_for(invoice, receptionist, duration_minutes=120))


def make_due(*links: PaymentLink) -> dt.datetime:
    now = timezone.now()
    PaymentLink.objects.filter(pk__in=[x.pk for x in links]).update(next_check_at=now)
    return now


def test_a_new_link_is_put_on_the_poller_s_list(link):
    assert link.next_check_at is not None
    first_check = interval_for(dt.timedelta(0), on_invoice=True)
    assert link.next_check_at - link.created_at < first_check + dt.timedelta(seconds=5)


def test_young_links_are_checked_often_and_old_ones_rarely():
    for on_invoice in (False, True):
        young = interval_for(dt.timedelta(minutes=1), on_invoice)
        older = interval_for(dt.timedelta(minutes=90), on_invoice)
        assert young < older
    assert interval_for(dt.timedelta(minutes=1), on_invoice=False) == dt.timedelta(seconds=30)


def test_invoice_links_leave_finding_their_payment_to_the_invoice_feed():
    """Each pass reads Provet's changed invoices, so an invoice link's own checks are rarer."""
    for minutes in (1, 30, 90, 600, 3000):
        age = dt.timedelta(minutes=minutes)
        assert interval_for(age, on_invoice=True) > interval_for(age, on_invoice=False)


def test_there_is_one_last_look_just_after_expiry(link):
    just_before = link.expires_at - dt.timedelta(seconds=10)
    assert next_check_at(link, just_before) == link.expires_at + AFTER_EXPIRY


def test_a_payment_is_found_without_anyone_pressing_anything(link):
    control.settle_link(link.external_id, "pay")
    report = poll_due_links(now=make_due(link))
    link.refresh_from_db()
    assert (report.checked, report.changed) == (1, 1)
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert link.next_check_at is None  # final: never checked again
    assert link.events.get(kind=LinkEvent.Kind.PAYMENT_CHANGED).source == "poller"


def test_a_claimed_link_is_pushed_forward_before_provet_is_asked(link):
    now = make_due(link)
    add_fault(link.practice, path="postransaction/\\d+/$", kind="500", count=10)
    poll_due_links(now=now)
    link.refresh_from_db()
    assert link.next_check_at > now  # a crash or an error can't cause a hot loop


def test_a_second_pass_at_the_same_moment_finds_nothing_to_do(link):
    now = make_due(link)
    assert poll_due_links(now=now).checked == 1
    assert poll_due_links(now=now).checked == 0


def test_a_429_pauses_the_practice_until_retry_after(link, app_clock):
    now = make_due(link)
    add_fault(link.practice, path="postransaction/\\d+/$", kind="429", retry_after=45)
    report = poll_due_links(now=now)
    link.practice.refresh_from_db()
    assert report.paused == [link.practice.name]
    # Paused by the client on the 429, from the wall clock (the pass's `now` is a moment earlier).
    paused_for = link.practice.paused_until - now
    assert dt.timedelta(seconds=45) <= paused_for < dt.timedelta(seconds=50)
    make_due(link)
    app_clock(now + dt.timedelta(seconds=30))
    assert poll_due_links(now=now + dt.timedelta(seconds=30)).checked == 0
    app_clock(now + dt.timedelta(seconds=50))
    assert poll_due_links(now=now + dt.timedelta(seconds=50)).checked == 1


def test_refused_credentials_pause_the_practice_and_say_why(link):
    link.practice.client_secret = "wrong"
    link.practice.save()
    poll_due_links(now=make_due(link))
    link.practice.refresh_from_db()
    assert link.practice.paused_until is not None
    assert "refused the credentials" in link.practice.connection_problem


def test_a_pass_spends_its_share_of_the_per_minute_budget(invoice, receptionist):
    links = [create_link(draft_for(invoice, receptionist, amount=1)) for _ in range(3)]
    invoice.practice.rate_budget_per_minute = 2 * PASSES_PER_MINUTE
    invoice.practice.save()
    RequestBudget.objects.all().delete()  # making the links spent some of this minute's
    assert poll_due_links(now=make_due(*links)).checked == 2


def test_when_the_budget_is_short_the_links_most_likely_paid_go_first(invoice, receptionist):
    young, old = (create_link(draft_for(invoice, receptionist, amount=1)) for _ in range(2))
    now = make_due(young, old)
    # Young: unseen for 2 minutes at an age when clients pay (every 30 s is its pace). Old:
    # unseen for 20 minutes at an age when few do (every 15 minutes).
    PaymentLink.objects.filter(pk=young.pk).update(
        created_at=now - dt.timedelta(minutes=3), checked_at=now - dt.timedelta(minutes=2)
    )
    PaymentLink.objects.filter(pk=old.pk).update(
        created_at=now - dt.timedelta(hours=8), checked_at=now - dt.timedelta(minutes=20)
    )
    assert [link.pk for link in due_links(invoice.practice, now, budget=1)] == [young.pk]
    assert len(due_links(invoice.practice, now, budget=5)) == 2


def test_a_link_that_expired_unseen_is_looked_at_before_routine_checks(invoice, receptionist):
    routine = create_link(draft_for(invoice, receptionist, amount=1))  # first in table order
    expiring = create_link(draft_for(invoice, receptionist, amount=1, duration_minutes=120))
    now = expiring.expires_at + dt.timedelta(minutes=1)
    make_due(routine, expiring)
    PaymentLink.objects.filter(pk=expiring.pk).update(
        checked_at=expiring.expires_at - dt.timedelta(minutes=1)
    )
    PaymentLink.objects.filter(pk=routine.pk).update(
        created_at=now - dt.timedelta(hours=3), checked_at=now - dt.timedelta(minutes=6)
    )
    assert due_links(invoice.practice, now, budget=1)[0].pk == expiring.pk


def test_a_429_stops_the_practice_s_pass_at_once(invoice, receptionist, in_process_provet):
    links = [create_link(draft_for(invoice, receptionist, amount=1)) for _ in range(3)]
    now = make_due(*links)
    add_fault(invoice.practice, path="postransaction/\\d+/$", kind="429", retry_after=45, count=5)
    report = poll_due_links(now=now)
    assert report.paused == [invoice.practice.name]
    # The one Provet refused is still due, at its time; the others weren't even claimed.
    assert PaymentLink.objects.filter(next_check_at=now).count() == 3


def test_a_429_on_any_endpoint_pauses_all_background_work(link, app_clock):
    now = make_due(link)
    add_fault(link.practice, path="invoice/$", kind="429", retry_after=45, count=1)
    report = poll_due_links(now=now)
    link.practice.refresh_from_db()
    assert report.checked == 0
    assert link.practice.paused_until >= now + dt.timedelta(seconds=45)
    app_clock(link.practice.paused_until + dt.timedelta(seconds=1))
    assert poll_due_links(now=timezone.now()).checked == 1


def test_a_pass_after_a_gap_reads_every_invoice_change_since_the_last_read(link):
    """Passes more than the feed's window apart (a backed-up queue, a pause) miss nothing."""
    now = timezone.now()
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=now + dt.timedelta(hours=3))
    poll_due_links(now=now)  # reads the feed: nothing has changed
    control.settle_link(link.external_id, "pay")
    later = now + dt.timedelta(minutes=5)
    clock.advance(5 * 60)
    poll_due_links(now=later)
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.ACCEPTED


def test_a_practice_has_at_most_one_pass_queued_or_running(link):
    from django.core.cache import cache

    practice = link.practice.pk
    assert tasks.poll(ticks=1) == "queued 1 passes"  # run at once in tests, keys freed after
    cache.set(f"paylinks:poll-pass:running:{practice}", 1, 60)
    assert tasks.poll(ticks=1) == "queued 0 passes"
    cache.delete(f"paylinks:poll-pass:running:{practice}")
    cache.set(f"paylinks:poll-pass:queued:{practice}", 1, 60)
    assert tasks.poll(ticks=1) == "queued 0 passes"


def test_the_command_runs_one_pass(link, capsys):
    make_due(link)
    call_command("poll_links", "--once", "--practice", str(link.practice.provet_id))
    assert "checked 1" in capsys.readouterr().out


def test_a_payment_the_poller_finds_marks_the_invoice_s_other_links_superseded(
    invoice, receptionist
):
    first = create_link(draft_for(invoice, receptionist))
    second = link_made_in_provet(invoice)
    control.settle_link(first.external_id, "pay")
    make_due(first)
    tasks.poll(ticks=1)
    second.refresh_from_db()
    assert status_words(second)[0] == "Superseded: the invoice is paid"


def test_a_payment_on_an_old_link_is_found_through_the_invoice_s_change(link):
    # The link was just checked and isn't due for a while; its invoice changing in Provet is
    # what tells the poller to look now.
    later = timezone.now() + dt.timedelta(seconds=20)
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=later + dt.timedelta(hours=1))
    control.settle_link(link.external_id, "pay")
    report = poll_due_links(now=later)
    link.refresh_from_db()
    link.invoice.refresh_from_db()
    assert report.checked == 1
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert link.invoice.due_sum == 0


def test_a_payment_that_raced_the_expiry_is_found_when_the_invoice_s_due_sum_drops(link):
    # PayLinks saw the link expire; Provet took the client's payment a moment later anyway.
    PaymentLink.objects.filter(pk=link.pk).update(
        state=PaymentLink.State.CLOSED,
        payment_status=PaymentStatus.EXPIRED,
        next_check_at=None,
        checked_at=timezone.now(),
    )
    control.settle_link(link.external_id, "pay")
    report = poll_due_links(now=timezone.now() + dt.timedelta(seconds=20))
    link.refresh_from_db()
    assert report.checked == 1
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert link.events.get(kind=LinkEvent.Kind.PAYMENT_CHANGED).old_value == "Expired"


def test_a_link_that_ended_long_ago_is_not_read_again(link):
    PaymentLink.objects.filter(pk=link.pk).update(
        state=PaymentLink.State.CLOSED,
        payment_status=PaymentStatus.EXPIRED,
        next_check_at=None,
        checked_at=timezone.now() - dt.timedelta(days=3),  # when it was seen to expire
    )
    control.settle_link(link.external_id, "pay")
    assert poll_due_links(now=timezone.now() + dt.timedelta(seconds=20)).checked == 0


def test_an_unchanged_invoice_costs_no_link_check(link):
    later = timezone.now() + dt.timedelta(seconds=20)
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=later + dt.timedelta(hours=1))
    assert poll_due_links(now=later).checked == 0


def test_refused_credentials_never_cut_short_a_pause_provet_asked_for(
    link, monkeypatch, in_process_provet
):
    """While the poller's token request is on its way, a page's read meets a 429 asking
    PayLinks to wait an hour; then the poller hears its credentials refused. Its own pause is
    shorter: the practice still waits the hour Provet asked for."""
    page_copy = Practice.objects.get(pk=link.practice_id)  # still with the good credentials
    add_fault(page_copy, path="department/$", kind="429", retry_after=3600)
    link.practice.client_secret = "wrong"
    link.practice.save()

    page_reads = []

    class PageReadMeanwhile(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/oauth2/token/") and not page_reads:
                page_reads.append(request)
                with (
                    priority(Priority.PAGE),
                    page_copy.provet_client() as client,
                    pytest.raises(ProvetRateLimited),
                ):
                    client.list_departments()
            return in_process_provet.handle_request(request)

    monkeypatch.setattr(provet_client, "default_transport", PageReadMeanwhile)
    poll_due_links(now=make_due(link))
    link.practice.refresh_from_db()
    assert "refused the credentials" in link.practice.connection_problem
    assert link.practice.paused_until > timezone.now() + dt.timedelta(minutes=59)
