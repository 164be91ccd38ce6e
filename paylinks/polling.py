"""Keeping open links fresh without anyone pressing anything (DESIGN.md, step 3).

Every minute the schedule runs `poll_due_links`. It claims the links whose `next_check_at`
has come, a practice's rate budget at a time, pushing `next_check_at` forward before Provet is
asked (a crash can't cause a hot loop, and a second worker skips a claimed link). Intervals
adapt: often while a link is young, when most payments come, rarer as it ages, one last look
just after it expires, none once its payment status is final. A 429 pauses the practice until
Retry-After has passed; refused credentials pause it and say so in admin.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from clinics.models import Practice
from clinics.provet import (
    ProvetAuthError,
    ProvetError,
    ProvetNotFound,
    ProvetPermissionError,
    ProvetRateLimited,
)
from clinics.sync import explain
from paylinks.models import LinkEvent, PaymentLink

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


def next_check_at(link: PaymentLink, now: dt.datetime) -> dt.datetime | None:
    """When the poller should next look at this link, or None when it never needs to."""
    if link.state != PaymentLink.State.ACTIVE or link.cancelled_at:
        return None
    age = now - link.created_at
    interval = next((every for upto, every in INTERVALS if age < upto), OLDEST_INTERVAL)
    due = now + interval
    if link.expires_at is not None:
        last_look = link.expires_at + AFTER_EXPIRY
        if now >= last_look:
            # The last look has been taken and Provet still says pending: ask once an hour
            # rather than never, in case Provet's expiry lags.
            return now + OLDEST_INTERVAL
        due = min(due, last_look)
    return due


def schedule(link: PaymentLink, now: dt.datetime | None = None) -> None:
    """Put a newly active link on the poller's list."""
    link.next_check_at = next_check_at(link, now or timezone.now())
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=link.next_check_at)


@dataclass
class PollReport:
    checked: int = 0
    changed: int = 0
    paused: list[str] = field(default_factory=list)


def poll_due_links(now: dt.datetime | None = None, practice: Practice | None = None) -> PollReport:
    now = now or timezone.now()
    report = PollReport()
    practices = Practice.objects.filter(is_active=True).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    )
    if practice is not None:
        practices = practices.filter(pk=practice.pk)
    for each in practices:
        _poll_practice(each, now, report)
    return report


def _poll_practice(practice: Practice, now: dt.datetime, report: PollReport) -> None:
    due = list(
        PaymentLink.objects.filter(
            practice=practice,
            state=PaymentLink.State.ACTIVE,
            postransaction_id__isnull=False,
            next_check_at__lte=now,
        )
        .select_related("practice", "invoice")
        .order_by("next_check_at")[: practice.rate_budget_per_minute]
    )
    if not due:
        return
    with practice.provet_client() as client:
        for link in due:
            # Claim: only the worker whose update lands asks Provet about this link.
            claimed = PaymentLink.objects.filter(
                pk=link.pk, next_check_at=link.next_check_at
            ).update(next_check_at=next_check_at(link, now))
            if not claimed:
                continue
            assert link.postransaction_id is not None  # filtered above
            try:
                posted = client.get_postransaction(link.postransaction_id)
            except ProvetNotFound:
                link.record_cancelled(
                    user=None, source=LinkEvent.Source.POLLER, message="Deleted in Provet Cloud"
                )
                report.checked += 1
                continue
            except ProvetRateLimited as error:
                _pause(practice, now + dt.timedelta(seconds=error.retry_after), "")
                report.paused.append(practice.name)
                return
            except (ProvetAuthError, ProvetPermissionError) as error:
                _pause(practice, now + AUTH_PAUSE, explain(error))
                report.paused.append(practice.name)
                return
            except ProvetError as error:
                logger.warning("poll link %s: %s", link.code, error)
                continue
            report.checked += 1
            if link.record_status(posted, source=LinkEvent.Source.POLLER, now=now):
                report.changed += 1
    if practice.connection_problem:
        Practice.objects.filter(pk=practice.pk).update(connection_problem="")


def _pause(practice: Practice, until: dt.datetime, problem: str) -> None:
    logger.warning("pausing %s until %s %s", practice, until, problem)
    Practice.objects.filter(pk=practice.pk).update(paused_until=until, connection_problem=problem)
