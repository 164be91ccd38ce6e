"""Keeping open links fresh without anyone pressing anything (DESIGN.md, step 3).

The every-minute schedule runs `poll_due_links` once every TICK through its minute. A pass first
asks Provet which invoices changed lately and checks their links at once. Then it claims the
links whose `next_check_at` has come, pushing `next_check_at` forward before Provet is asked (a
crash can't cause a hot loop, and a second worker skips a claimed link). When more links are due
than the practice's budget allows, the ones most likely to have changed go first. Intervals
adapt: often while a link is young, when most payments come, rarer as it ages, one last look
just after it expires, none once its payment status is final. A 429 pauses the practice until
Retry-After has passed; refused credentials pause it and say so in admin.
"""

import datetime as dt
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from clinics.models import Practice
from clinics.provet import (
    ProvetAuthError,
    ProvetClient,
    ProvetError,
    ProvetNotFound,
    ProvetPermissionError,
    ProvetRateLimited,
)
from clinics.sync import explain
from paylinks.models import Invoice, LinkEvent, PaymentLink

logger = logging.getLogger(__name__)

# (age of the link up to, check every): most clients pay within minutes of the message.
INTERVALS = [
    (dt.timedelta(minutes=10), dt.timedelta(seconds=30)),
    (dt.timedelta(hours=1), dt.timedelta(minutes=1)),
    (dt.timedelta(hours=6), dt.timedelta(minutes=5)),
    (dt.timedelta(days=1), dt.timedelta(minutes=15)),
]
OLDEST_INTERVAL = dt.timedelta(hours=1)
# Provet marks a link expired a moment after its expiration time: look once just after.
AFTER_EXPIRY = dt.timedelta(seconds=30)
AUTH_PAUSE = dt.timedelta(minutes=15)
# django-q2 schedules run at most once a minute; the poll task makes a pass every TICK within
# it, and each pass spends its share of the practice's per-minute budget.
TICK = dt.timedelta(seconds=10)
PASSES_PER_MINUTE = 6
# Each pass asks which invoices changed in this window: longer than a pass, because Provet's
# filter has minute precision and clocks differ.
FEED_WINDOW = dt.timedelta(minutes=2)
FEED_PAGE_SIZE = 50


def interval_for(age: dt.timedelta) -> dt.timedelta:
    return next((every for upto, every in INTERVALS if age < upto), OLDEST_INTERVAL)


def next_check_at(link: PaymentLink, now: dt.datetime) -> dt.datetime | None:
    """When the poller should next look at this link, or None when it never needs to."""
    if link.state != PaymentLink.State.ACTIVE or link.cancelled_at:
        return None
    due = now + interval_for(now - link.created_at)
    if link.expires_at is not None:
        last_look = link.expires_at + AFTER_EXPIRY
        if now >= last_look:
            # The last look has been taken and Provet still says pending: ask once an hour
            # rather than never, in case Provet's expiry lags.
            return now + OLDEST_INTERVAL
        due = min(due, last_look)
    return due


def urgency(link, now: dt.datetime) -> float:
    """How likely the link is to have changed since it was last looked at.

    The intervals follow how often links of an age get paid, so the time since the last look,
    counted in the link's own interval, ranks a link unseen for 2 minutes at the age when
    payments are frequent above one unseen for 20 minutes at an age when they are rare.
    """
    since = now - (link.checked_at or link.created_at)
    score = since / interval_for(now - link.created_at)
    if link.expires_at is not None and (link.checked_at or link.created_at) < link.expires_at:
        score = max(score, 1.0)  # it has expired unseen: its status will have changed
    return score


def schedule(link: PaymentLink, now: dt.datetime | None = None) -> None:
    """Put a newly active link on the poller's list."""
    link.next_check_at = next_check_at(link, now or timezone.now())
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=link.next_check_at)


@dataclass
class PollReport:
    checked: int = 0
    changed: int = 0
    paused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        paused = f", paused {', '.join(self.paused)}" if self.paused else ""
        return f"checked {self.checked}, changed {self.changed}{paused}"


def poll_due_links(now: dt.datetime | None = None, practice: Practice | None = None) -> PollReport:
    """One pass over every practice (or one): check the due links, within budget."""
    now = now or timezone.now()
    report = PollReport()
    practices = _unpaused(Practice.objects.filter(is_active=True), now)
    if practice is not None:
        practices = practices.filter(pk=practice.pk)
    for each in practices:
        budget = math.ceil(each.rate_budget_per_minute / PASSES_PER_MINUTE)
        changed = _links_on_changed_invoices(each, now)
        _check(each, changed[:budget], now, report)
        _check(each, due_links(each, now, budget - min(len(changed), budget)), now, report)
    return report


def _links_on_changed_invoices(practice: Practice, now: dt.datetime) -> list[PaymentLink]:
    """The open links on invoices whose due sum Provet changed lately: most likely paid.

    One request per pass to `GET /invoice/?modified__gte=` (a documented filter, minutes
    precision, its own rate limit) finds a payment on any invoice link, young or old, within
    a pass, where per-link checks alone would reach an old link only every hour or so. The
    snapshot's due sum is updated, so a change is acted on once, and the invoice's other open
    links show as superseded when it reaches zero.
    """
    if not PaymentLink.objects.filter(
        practice=practice, state=PaymentLink.State.ACTIVE, invoice__isnull=False
    ).exists():
        return []
    try:
        with practice.provet_client() as client:
            remote = client.list_invoices(
                {"modified__gte": now - FEED_WINDOW}, page_size=FEED_PAGE_SIZE
            ).results
    except ProvetError as error:
        # The per-link checks still run; a busy invoice list only slows the finding down.
        logger.info("invoice changes for %s: %s", practice, error)
        return []
    by_id = {invoice.id: invoice for invoice in remote}
    changed = []
    for invoice in Invoice.objects.filter(practice=practice, provet_id__in=by_id):
        fresh = by_id[invoice.provet_id]
        if (fresh.due_sum, fresh.status) == (invoice.due_sum, invoice.status):
            continue
        # Conditional, like a claim: of two workers that saw the change, one acts on it.
        if Invoice.objects.filter(
            pk=invoice.pk, due_sum=invoice.due_sum, status=invoice.status
        ).update(
            due_sum=fresh.due_sum, status=fresh.status, date_paid=fresh.date_paid, fetched_at=now
        ):
            changed.append(invoice.pk)
    if not changed:
        return []
    links = PaymentLink.objects.filter(
        practice=practice, state=PaymentLink.State.ACTIVE, invoice__in=changed
    )
    links.update(next_check_at=now)
    return list(links.select_related("practice"))


def check_links(practice: Practice, link_ids: Iterable[int], now=None) -> PollReport:
    """Check these links now, if they are still due (a webhook named their invoice).

    They are claimed like the poller's own, and their changes are put down to the webhook."""
    now = now or timezone.now()
    report = PollReport()
    if _unpaused(Practice.objects.filter(pk=practice.pk), now).exists():
        links = _due(practice, now).filter(pk__in=list(link_ids))
        _check(practice, list(links), now, report, source=LinkEvent.Source.WEBHOOK)
    return report


def _unpaused(practices, now: dt.datetime):
    return practices.filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))


def _due(practice: Practice, now: dt.datetime):
    return PaymentLink.objects.filter(
        practice=practice,
        state=PaymentLink.State.ACTIVE,
        postransaction_id__isnull=False,
        next_check_at__lte=now,
    ).select_related("practice")


def due_links(practice: Practice, now: dt.datetime, budget: int) -> list[PaymentLink]:
    """The due links this pass can afford, the most likely to have changed first."""
    # Rank on a few columns of every due link, then load only the ones chosen.
    due = _due(practice, now).values_list(
        "pk", "created_at", "checked_at", "expires_at", named=True
    )
    ranked = sorted(due, key=lambda link: urgency(link, now), reverse=True)[:budget]
    chosen = _due(practice, now).in_bulk([link.pk for link in ranked])
    return [chosen[link.pk] for link in ranked if link.pk in chosen]


def claim(link: PaymentLink, now: dt.datetime) -> bool:
    """Only the worker whose conditional update lands asks Provet about this link."""
    return bool(
        PaymentLink.objects.filter(pk=link.pk, next_check_at=link.next_check_at).update(
            next_check_at=next_check_at(link, now)
        )
    )


def _check(
    practice: Practice,
    links: list[PaymentLink],
    now: dt.datetime,
    report: PollReport,
    source: str = LinkEvent.Source.POLLER,
) -> None:
    if not links:
        return
    with practice.provet_client() as client:
        for link in links:
            if not claim(link, now):
                continue
            try:
                _check_one(client, link, now, report, source)
            except ProvetRateLimited as error:
                _pause(practice, now + dt.timedelta(seconds=error.retry_after), "")
                report.paused.append(practice.name)
                return
            except (ProvetAuthError, ProvetPermissionError) as error:
                _pause(practice, now + AUTH_PAUSE, explain(error))
                report.paused.append(practice.name)
                return
            except ProvetError as error:
                # Already pushed forward: it is looked at again at its next time.
                logger.warning("poll link %s: %s", link.code, error)
    if practice.connection_problem:
        Practice.objects.filter(pk=practice.pk).update(connection_problem="")


def _check_one(
    client: ProvetClient, link: PaymentLink, now: dt.datetime, report: PollReport, source: str
) -> None:
    assert link.postransaction_id is not None  # only links Provet knows are due
    try:
        posted = client.get_postransaction(link.postransaction_id)
    except ProvetNotFound:
        link.record_cancelled(user=None, source=source, message="Deleted in Provet Cloud")
        report.checked += 1
        return
    report.checked += 1
    if link.record_status(posted, source=source, now=now):
        report.changed += 1


def _pause(practice: Practice, until: dt.datetime, problem: str) -> None:
    logger.warning("pausing %s until %s %s", practice, until, problem)
    Practice.objects.filter(pk=practice.pk).update(paused_until=until, connection_problem=problem)
