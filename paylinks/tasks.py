"""django-q2 tasks: tiny and idempotent; the schedules and the tests call these same functions."""

import functools
import time
from contextlib import suppress

from django.core.cache import cache
from django.utils import timezone
from django_q.tasks import async_task

from clinics.budget import Priority, priority
from clinics.models import Practice
from clinics.provet import ProvetBudgetSpent, ProvetError
from config.logs import bind, logged_task
from paylinks import drift, event_sending, followups, polling, webhooks
from paylinks.models import PaymentLink, WebhookDelivery
from paylinks.polling import PASSES_PER_MINUTE, TICK
from paylinks.reconcile import reconcile_unknown_links
from paylinks.refresh import WATCHED_INTERVAL, refresh_if_stale
from paylinks.shutdown import wait_or_stop


def background(task):
    """Its Provet requests are background work, after pages' (clinics/budget.py), even when it
    runs inside a request (tests run tasks at once)."""

    @functools.wraps(task)
    def run(*args, **kwargs):
        with priority(Priority.BACKGROUND):
            return task(*args, **kwargs)

    return run


@logged_task
def refresh_link(link_id: int) -> None:
    link = PaymentLink.objects.select_related("practice", "department", "invoice").get(pk=link_id)
    bind(practice=link.practice.code)
    # Someone is watching the link's page: a page read. When Provet can't answer, the next
    # look (the watched page or the poller) tries again.
    with priority(Priority.PAGE), suppress(ProvetError):
        refresh_if_stale(link)


def request_refresh(link: PaymentLink) -> bool:
    """Someone is watching this link: have a worker ask Provet, at most once per interval."""
    if link.is_final_for_display or link.cancelled_at:
        return False
    if not cache.add(f"paylinks:refresh:{link.pk}", 1, WATCHED_INTERVAL.total_seconds()):
        return False
    async_task("paylinks.tasks.refresh_link", link.pk, group="refresh")
    return True


@logged_task
@background
def reconcile() -> int:
    """Every minute: decide the links whose creation answer was lost."""
    return reconcile_unknown_links()


@logged_task
@background
def poll(ticks: int = PASSES_PER_MINUTE) -> str:
    """Every minute: every TICK, queue one poll pass per active practice (paylinks/polling.py).

    django-q2 schedules at most once a minute, and a minute is long to wait for a payment the
    client has just made, so one run queues passes through its minute. It only queues: each
    practice's pass is its own task, run by any free worker of any cluster, so a slow practice
    holds up no other. A practice has at most one pass queued or running. The run ends early
    when its cluster is stopping."""
    queued = 0
    start = time.monotonic()
    for number in range(ticks):
        if number and wait_or_stop(start + number * TICK.total_seconds() - time.monotonic()):
            break
        for practice_id in Practice.objects.filter(is_active=True).values_list("pk", flat=True):
            if cache.get(_pass_key("running", practice_id)) is None and cache.add(
                _pass_key("queued", practice_id), 1, PASS_QUEUED_FOR
            ):
                async_task("paylinks.tasks.poll_practice", practice_id, group="poll")
                queued += 1
    return f"queued {queued} passes"


@logged_task
@background
def poll_practice(practice_id: int) -> str:
    """One poll pass over one practice (paylinks/polling.py)."""
    cache.set(_pass_key("running", practice_id), 1, PASS_RUNNING_FOR)
    cache.delete(_pass_key("queued", practice_id))
    try:
        practice = Practice.objects.get(pk=practice_id)
        bind(practice=practice.code)
        return str(polling.poll_practice(practice))
    finally:
        cache.delete(_pass_key("running", practice_id))


# A practice has at most one pass queued or running. A queued pass holds it for up to two
# minutes, longer than a backed-up queue should keep it waiting, so an overloaded cluster doesn't
# queue it twice; a running one for the task timeout, so a pass whose worker was killed holds
# it no longer than that.
PASS_QUEUED_FOR = 120
PASS_RUNNING_FOR = 60


def _pass_key(stage: str, practice_id: int) -> str:
    return f"paylinks:poll-pass:{stage}:{practice_id}"


@logged_task
def find_drift_everywhere() -> int:
    """Every night: one drift check per practice, each its own task (paylinks/drift.py)."""
    practices = list(Practice.objects.filter(is_active=True).values_list("pk", flat=True))
    for practice_id in practices:
        async_task("paylinks.tasks.find_drift_for", practice_id, group="drift")
    return len(practices)


@logged_task
@background
def find_drift_for(practice_id: int) -> str:
    practice = Practice.objects.get(pk=practice_id)
    bind(practice=practice.code)
    findings = drift.find_drift(practice)
    return f"{len(findings)} open mismatches"


@logged_task
def follow_up_everywhere() -> int:
    """Every 5 minutes: one follow-up pass per practice that has automatic follow-up on and
    is open now (paylinks/followups.py). With none, one query and nothing queued."""
    practices = followups.practices_to_follow_up(timezone.now())
    for practice in practices:
        async_task("paylinks.tasks.follow_up_practice", practice.pk, group="follow-up")
    return len(practices)


@logged_task
@background
def follow_up_practice(practice_id: int) -> str:
    practice = Practice.objects.get(pk=practice_id)
    bind(practice=practice.code)
    return str(followups.follow_up_practice(practice))


@logged_task
@background
def after_webhook(delivery_id: int) -> str:
    """A webhook named an invoice or a prepayment payment: look at its links now."""
    delivery = WebhookDelivery.objects.select_related("practice").get(pk=delivery_id)
    bind(practice=delivery.practice.code)
    try:
        return str(webhooks.check_after(delivery))
    except ProvetBudgetSpent as spent:
        return f"not asked ({spent}); the poller will look again"  # its links are due now
    except ProvetError as error:
        return f"Provet could not answer ({error}); the poller will look again"


@logged_task
def send_event(delivery_id: int, attempts: int) -> str:
    """One attempt to send an outgoing event to an endpoint (paylinks/event_sending.py)."""
    return event_sending.attempt(delivery_id, attempts)


@logged_task
def send_due_events() -> str:
    """Every minute: queue the outgoing events whose retry is due."""
    return f"queued {event_sending.send_due()} attempts"
