"""django-q2 tasks: tiny and idempotent; the schedules and the tests call these same functions."""

import time
from contextlib import suppress

from django.core.cache import cache
from django_q.tasks import async_task

from clinics.models import Practice
from clinics.provet import ProvetError
from config.logs import bind, logged_task
from paylinks import drift, webhooks
from paylinks.models import PaymentLink, WebhookDelivery
from paylinks.polling import PASSES_PER_MINUTE, TICK, poll_due_links
from paylinks.reconcile import reconcile_unknown_links
from paylinks.refresh import WATCHED_INTERVAL, refresh_if_stale


@logged_task
def refresh_link(link_id: int) -> None:
    link = PaymentLink.objects.select_related("practice", "department", "invoice").get(pk=link_id)
    bind(practice=link.practice.code)
    # When Provet can't answer, the next look (a watched page or the poller) tries again.
    with suppress(ProvetError):
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
def reconcile() -> int:
    """Every minute: decide the links whose creation answer was lost."""
    return reconcile_unknown_links()


@logged_task
def poll(passes: int = PASSES_PER_MINUTE) -> str:
    """Every minute: a pass over the due links every TICK (paylinks/polling.py).

    django-q2 can't schedule more often than once a minute, and a minute is long to wait for a
    payment the client has just made, so one run makes several passes."""
    reports = []
    start = time.monotonic()
    for number in range(passes):
        due = start + number * TICK.total_seconds()
        if time.monotonic() - due > TICK.total_seconds():
            break  # Provet is slow today: leave the rest of the minute to the next run
        time.sleep(max(0.0, due - time.monotonic()))
        reports.append(str(poll_due_links()))
    return "; ".join(reports)


@logged_task
def check_drift() -> int:
    """Every night: one drift check per practice, each its own task (paylinks/drift.py)."""
    practices = list(Practice.objects.filter(is_active=True).values_list("pk", flat=True))
    for practice_id in practices:
        async_task("paylinks.tasks.check_drift_for", practice_id, group="drift")
    return len(practices)


@logged_task
def check_drift_for(practice_id: int) -> str:
    practice = Practice.objects.get(pk=practice_id)
    bind(practice=practice.code)
    findings = drift.check_drift(practice)
    return f"{len(findings)} open mismatches"


@logged_task
def after_webhook(delivery_id: int) -> str:
    """A webhook named an invoice or a prepayment payment: look at its links now."""
    delivery = WebhookDelivery.objects.select_related("practice").get(pk=delivery_id)
    bind(practice=delivery.practice.code)
    with suppress(ProvetError):
        return str(webhooks.follow_up(delivery))
    return "Provet could not answer; the poller will look again"
