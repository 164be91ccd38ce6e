"""django-q2 tasks: tiny and idempotent; the schedules and the tests call these same functions."""

from contextlib import suppress

from django.core.cache import cache
from django_q.tasks import async_task

from clinics.models import Practice
from clinics.provet import ProvetError
from paylinks.models import PaymentLink
from paylinks.polling import poll_due_links
from paylinks.reconcile import reconcile_unknown_links
from paylinks.refresh import WATCHED_INTERVAL, refresh_if_stale


def refresh_link(link_id: int) -> None:
    link = PaymentLink.objects.select_related("practice", "department", "invoice").get(pk=link_id)
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


def reconcile() -> int:
    """Every minute: decide the links whose creation answer was lost."""
    return reconcile_unknown_links()


def poll() -> str:
    """Every minute: ask Provet about the links that are due (paylinks/polling.py)."""
    report = poll_due_links()
    return f"checked {report.checked}, changed {report.changed}, paused {report.paused}"


def poll_practice(practice_id: int) -> str:
    """A webhook made some of this practice's links due: look at them now."""
    report = poll_due_links(practice=Practice.objects.get(pk=practice_id))
    return f"checked {report.checked}, changed {report.changed}"
