"""Keeping open links fresh without anyone pressing anything (DESIGN.md, step 3).

Every TICK, each practice gets a pass of its own (`poll_practice`, queued by tasks.poll). A pass
first asks Provet which invoices changed lately and checks their links at once. Then it claims the
links whose `next_check_at` has come, pushing `next_check_at` forward before Provet is asked (a
crash can't cause a hot loop, and a second worker skips a claimed link). When more links are due
than the pass's share of the practice's budget allows, the ones most likely to have changed go
first. Intervals adapt (paylinks/cadence.py): often while a link is young, when most payments
come, rarer as it ages, one last look just after it expires, none once its payment status is
final; an invoice link's own checks are rare, since the feed finds its payment. Every request is
spent from the practice's shared budget (clinics/budget.py): a pass stops when it is spent, and
a 429 pauses the practice until Retry-After; refused credentials pause it and say so in admin.
"""

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from clinics.models import Practice
from clinics.provet import (
    ProvetAuthError,
    ProvetBudgetSpent,
    ProvetClient,
    ProvetError,
    ProvetNotFound,
    ProvetPermissionError,
    ProvetRateLimited,
)
from clinics.provet import types as provet
from clinics.provet.errors import explain
from paylinks import shutdown
from paylinks.cadence import interval_for, next_check_at
from paylinks.invoices import update_snapshot
from paylinks.models import Invoice, LinkEvent, PaymentLink

logger = logging.getLogger(__name__)

AUTH_PAUSE = dt.timedelta(minutes=15)
# Added to the urgency of a link that expired since it was last seen: ahead of routine checks.
EXPIRED_UNSEEN = 10.0
# django-q2 schedules run at most once a minute; the poll task queues a pass per practice every
# TICK within it, and each pass spends its share of the practice's per-minute budget.
TICK = dt.timedelta(seconds=10)
PASSES_PER_MINUTE = 6
# Each pass asks which invoices changed in this window: longer than a pass, because Provet's
# filter has minute precision and clocks differ.
FEED_WINDOW = dt.timedelta(minutes=2)
FEED_PAGE_SIZE = 50
FEED_LIMIT = 200  # invoices read per pass; beyond that the per-link checks find the rest
# After a gap, a pass reads the changes since the last read, but no further back than this.
FEED_CATCH_UP = dt.timedelta(days=1)
# A pass starts no new check after this long (a slow Provet), so with one request's worst case
# after it (background requests aren't retried) it ends well inside the task timeout.
PASS_SECONDS = 20
CLAIM_LEASE = dt.timedelta(minutes=1)


def urgency(link, now: dt.datetime) -> float:
    """How likely the link is to have changed since it was last looked at.

    The intervals follow how often links of an age get paid, so the time since the last look,
    counted in the link's own interval, ranks a link unseen for 2 minutes at the age when
    payments are frequent above one unseen for 20 minutes at an age when they are rare.
    """
    last_look = link.checked_at or link.created_at
    score = (now - last_look) / interval_for(now - link.created_at, link.invoice_id is not None)
    if link.expires_at is not None and last_look < link.expires_at <= now:
        score += EXPIRED_UNSEEN  # it has expired unseen: its status has changed
    return score


@dataclass
class PollReport:
    checked: int = 0
    changed: int = 0
    paused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        paused = f", paused {', '.join(self.paused)}" if self.paused else ""
        return f"checked {self.checked}, changed {self.changed}{paused}"


def poll_due_links(now: dt.datetime | None = None, practice: Practice | None = None) -> PollReport:
    """One pass over every active practice (or one), in this process: for the `poll_links`
    command and the tests. The schedule gives each practice's pass its own task (tasks.py)."""
    report = PollReport()
    active = Practice.objects.filter(is_active=True)
    if practice is not None:
        active = active.filter(pk=practice.pk)
    for each in active:
        poll_practice(each, now, report)
    return report


def poll_practice(
    practice: Practice, now: dt.datetime | None = None, report: PollReport | None = None
) -> PollReport:
    """One pass over one practice: the links on its changed invoices, then its due links, within
    the pass's share of its budget and PASS_SECONDS."""
    now = now or timezone.now()
    report = report or PollReport()
    deadline = time.monotonic() + PASS_SECONDS
    # The poller is alive, whether Provet lets it ask or not (/healthz).
    Practice.objects.filter(pk=practice.pk).update(polled_at=now)
    if not Practice.objects.filter(pk=practice.pk).unpaused(now).exists():
        return report
    budget = pass_budget(practice)
    changed = _links_on_changed_invoices(practice, now)[:budget]
    if _claim_and_check(practice, changed, now, report, deadline=deadline):
        due = due_links(practice, now, budget - len(changed))
        _claim_and_check(practice, due, now, report, deadline=deadline)
    return report


def pass_budget(practice: Practice) -> int:
    """One pass's share of the practice's per-minute budget (at least one link)."""
    return max(1, practice.rate_budget_per_minute // PASSES_PER_MINUTE)


def _links_on_changed_invoices(practice: Practice, now: dt.datetime) -> list[PaymentLink]:
    """The open links on invoices whose due sum Provet changed lately: most likely paid.

    One request per pass (more in a busy minute) to `GET /invoice/?modified__gte=` (a
    documented filter, minutes precision, its own rate limit) finds a payment on any invoice
    link, young or old, within a pass, where per-link checks alone would reach an old link
    only every hour or so. The snapshot's due sum is updated, so a change is acted on once,
    and the invoice's other open links show as superseded when it reaches zero.
    """
    on_invoices = PaymentLink.objects.filter(practice=practice, invoice__isnull=False)
    if not (
        on_invoices.filter(state=PaymentLink.State.ACTIVE).exists()
        or on_invoices.recently_closed(now).exists()
    ):
        return []
    remote: list[provet.Invoice] = []
    # Everything changed since the last read, so a gap between passes (a queue backed up, a
    # pause) loses no payment; the window's margin covers minute precision and clock skew.
    since = now - FEED_WINDOW
    if practice.feed_read_at is not None:
        since = max(min(since, practice.feed_read_at - FEED_WINDOW), now - FEED_CATCH_UP)
    try:
        with practice.provet_client() as client:
            changes = client.iterate(
                "invoice/",
                provet.Invoice.from_json,
                {"modified__gte": since},
                page_size=FEED_PAGE_SIZE,
            )
            for change in changes:
                remote.append(change)
                if len(remote) >= FEED_LIMIT:
                    logger.warning("invoice changes for %s: more than %s", practice, FEED_LIMIT)
                    break
        Practice.objects.filter(pk=practice.pk).update(feed_read_at=now)
    except ProvetRateLimited:
        return []  # the budget is spent, or Provet asked to wait (the client paused us)
    except (ProvetAuthError, ProvetPermissionError) as error:
        _pause(practice, now + AUTH_PAUSE, _explained_in_english(error))
        return []
    except ProvetError as error:
        logger.info("invoice changes for %s: %s", practice, error)
    by_id = {change.id: change for change in remote}
    changed, dropped = [], []
    for invoice in Invoice.objects.filter(practice=practice, provet_id__in=by_id):
        # Of two workers that saw the change, one is told of it and acts on it.
        told = update_snapshot(invoice, by_id[invoice.provet_id], now)
        if told.changed:
            changed.append(invoice.pk)
        if told.due_dropped:
            dropped.append(invoice.pk)
    if not changed:
        return []
    links = PaymentLink.objects.filter(practice=practice).filter(
        Q(state=PaymentLink.State.ACTIVE, invoice__in=changed)
        # Money arrived: it may be a payment that raced a link's ending.
        | Q(pk__in=PaymentLink.objects.filter(invoice__in=dropped).recently_closed(now))
    )
    links.update(next_check_at=now)
    return list(links.select_related("practice"))


def check_webhook_links(practice: Practice, link_ids: Iterable[int], now=None) -> PollReport:
    """Check these links now, if they are still due (a webhook named their invoice).

    They are claimed like the poller's own, and their changes are put down to the webhook."""
    now = now or timezone.now()
    report = PollReport()
    if Practice.objects.filter(pk=practice.pk).unpaused(now).exists():
        # Capped like a pass (an unallocated payment names every open prepayment link); the
        # rest stay due for the poller.
        links = _due(practice, now).filter(pk__in=list(link_ids)).order_by("-created_at")
        _claim_and_check(
            practice, list(links[: pass_budget(practice)]), now, report, LinkEvent.Source.WEBHOOK
        )
    return report


def check_recently_closed(practice: Practice, invoice_ids: Iterable[int], now=None) -> PollReport:
    """Money arrived on these invoices (a webhook said so): read their links that ended unpaid
    lately once more, in case the payment raced a link's ending."""
    now = now or timezone.now()
    report = PollReport()
    if Practice.objects.filter(pk=practice.pk).unpaused(now).exists():
        links = PaymentLink.objects.filter(
            practice=practice, invoice__in=list(invoice_ids)
        ).recently_closed(now)
        links.update(next_check_at=now)
        chosen = list(links.select_related("practice")[: pass_budget(practice)])
        _claim_and_check(practice, chosen, now, report, LinkEvent.Source.WEBHOOK)
    return report


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
        "pk", "created_at", "checked_at", "expires_at", "invoice_id", named=True
    )
    ranked = sorted(due, key=lambda link: urgency(link, now), reverse=True)[:budget]
    chosen = _due(practice, now).in_bulk([link.pk for link in ranked])
    return [chosen[link.pk] for link in ranked if link.pk in chosen]


def claim(link: PaymentLink, now: dt.datetime) -> bool:
    """Only the worker whose conditional update lands asks Provet about this link.

    The claim holds for CLAIM_LEASE; the link's next time is set once Provet has answered. A
    worker killed in between (SIGKILL, a lost machine) leaves the link due again a minute on,
    not after its whole interval, which for an old invoice link is hours."""
    return bool(
        PaymentLink.objects.filter(pk=link.pk, next_check_at=link.next_check_at).update(
            next_check_at=now + CLAIM_LEASE
        )
    )


def _checked(link: PaymentLink, now: dt.datetime) -> None:
    """Provet answered (or failed to): the link's next time, unless it needs none any more."""
    PaymentLink.objects.filter(pk=link.pk, next_check_at=now + CLAIM_LEASE).update(
        next_check_at=next_check_at(link, now)
    )


def _claim_and_check(
    practice: Practice,
    links: list[PaymentLink],
    now: dt.datetime,
    report: PollReport,
    source: str = LinkEvent.Source.POLLER,
    deadline: float | None = None,
) -> bool:
    """Claim and check these links; return False when the pass should end: Provet made the
    practice pause, the budget is spent, time is up or the worker is stopping."""
    if not links:
        return True
    deadline = deadline or time.monotonic() + PASS_SECONDS
    with practice.provet_client() as client:
        for link in links:
            if shutdown.stop_requested() or time.monotonic() > deadline:
                return False  # the rest stay due for the next pass
            if not claim(link, now):
                continue
            try:
                _check_one(client, link, now, report, source)
                _checked(link, now)
            except ProvetRateLimited as error:
                # Not answered: still due, at the time it had.
                PaymentLink.objects.filter(pk=link.pk).update(next_check_at=link.next_check_at)
                if not isinstance(error, ProvetBudgetSpent):
                    report.paused.append(practice.name)  # the client has paused the practice
                return False
            except (ProvetAuthError, ProvetPermissionError) as error:
                _pause(practice, now + AUTH_PAUSE, _explained_in_english(error))
                report.paused.append(practice.name)
                return False
            except ProvetError as error:
                logger.warning("poll link %s: %s", link.code, error)
                _checked(link, now)  # looked at again at its next time
    if practice.connection_problem:
        Practice.objects.filter(pk=practice.pk).update(connection_problem="")
    return True


def _check_one(
    client: ProvetClient, link: PaymentLink, now: dt.datetime, report: PollReport, source: str
) -> None:
    assert link.postransaction_id is not None  # only links Provet knows are due
    try:
        posted = client.get_postransaction(link.postransaction_id)
    except ProvetNotFound:
        link.record_cancelled(
            user=None,
            source=source,
            message=gettext_noop("Deleted in Provet Cloud"),
            reason=LinkEvent.Reason.DELETED_IN_PROVET,
        )
        report.checked += 1
        return
    report.checked += 1
    if link.record_status(posted, source=source, now=now):
        report.changed += 1


def _explained_in_english(error: ProvetError) -> str:
    """`explain(error)` as stored (`connection_problem`): in English, even when a webhook's
    request has a language active."""
    with translation.override("en"):
        return explain(error)


def _pause(practice: Practice, until: dt.datetime, problem: str) -> None:
    logger.warning("pausing %s until %s %s", practice, until, problem)
    practice.pause(until, problem)
