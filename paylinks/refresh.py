"""Asking Provet about one link now: "Check now", and a link page someone is watching."""

import datetime as dt

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinics import formats
from clinics.provet import ProvetNotFound
from paylinks.models import LinkEvent, PaymentLink
from paylinks.reconcile import reconcile_link

# "Check now" asks Provet at most this often per link, however often it is pressed.
CHECK_NOW_INTERVAL = dt.timedelta(seconds=5)


class PracticePaused(Exception):
    """Provet asked PayLinks to wait (a 429), or refused its credentials: nobody asks it now."""

    def __init__(self, message: str, until: dt.datetime):
        super().__init__(message)
        self.until = until


def offers_check_now(link: PaymentLink, *, replaced: bool) -> bool:
    """Whether the link page offers "Check now": only while asking Provet could still change
    something a person waits for. A final link (paid, cancelled, expired, replaced, failed)
    is left to the poller's late look."""
    if link.state == PaymentLink.State.UNKNOWN:
        return not link.needs_review  # a person decides that one, not Provet
    return link.can_cancel and not replaced


def check_now(link: PaymentLink, *, user, now: dt.datetime | None = None) -> bool:
    """Refresh the link from Provet unless it was checked a moment ago; return whether it asked.

    However often it is pressed, in however many tabs and processes, Provet is asked about a
    link at most once per CHECK_NOW_INTERVAL: the claim is a conditional update of
    `checked_at`. Raises PracticePaused while the practice waits on Provet, ProvetError when
    Provet can't answer.
    """
    now = now or timezone.now()
    paused_until = link.practice.pause_ends_at(now)
    if paused_until:
        raise PracticePaused(
            _("Provet Cloud asked PayLinks to wait until %(time)s; the link is checked after that.")
            % {"time": formats.time(timezone.localtime(paused_until, link.practice.zone))},
            until=paused_until,
        )
    asks_provet = link.state == PaymentLink.State.UNKNOWN or (
        link.postransaction_id is not None and not link.cancelled_at
    )
    if not asks_provet or not _claim_check(link, now):
        return False
    if link.state == PaymentLink.State.UNKNOWN:
        reconcile_link(link, now)
        return True
    changed = read_status(link, source=LinkEvent.Source.USER, user=user, now=now)
    if not changed:
        link.event(
            LinkEvent.Kind.REFRESHED, LinkEvent.Source.USER, user, message=gettext_noop("No change")
        )
    return True


def _claim_check(link: PaymentLink, now: dt.datetime) -> bool:
    """Only the request whose conditional update lands asks Provet."""
    recent = Q(checked_at__gt=now - CHECK_NOW_INTERVAL)
    claimed = PaymentLink.objects.filter(pk=link.pk).exclude(recent).update(checked_at=now)
    if claimed:
        link.checked_at = now
    return bool(claimed)


def read_status(link: PaymentLink, *, source: str, user=None, now=None) -> bool:
    """Read the link's postransaction from Provet and record what changed. Raises ProvetError."""
    assert link.postransaction_id is not None, "only a link Provet knows can be read"
    with link.practice.provet_client() as client:
        try:
            posted = client.get_postransaction(link.postransaction_id)
        except ProvetNotFound:
            link.record_cancelled(
                user=None,
                source=LinkEvent.Source.SYSTEM,
                message=gettext_noop("Deleted in Provet Cloud"),
                reason=LinkEvent.Reason.DELETED_IN_PROVET,
            )
            return True
    return link.record_status(posted, source=source, user=user, now=now)


# While someone watches a link page, its statuses are read from Provet at most this often.
WATCHED_INTERVAL = dt.timedelta(seconds=4)


def refresh_if_stale(link: PaymentLink, now: dt.datetime | None = None) -> None:
    """Keep a watched link fresh: the page's htmx poll comes here. Raises ProvetError."""
    now = now or timezone.now()
    if link.is_final_for_display or link.cancelled_at:
        return
    if link.checked_at and now - link.checked_at < WATCHED_INTERVAL:
        return
    if link.practice.pause_ends_at(now):
        return  # the poller picks it up once Provet lets PayLinks ask again
    if link.state == PaymentLink.State.UNKNOWN:
        reconcile_link(link, now)
        return
    if link.postransaction_id is None:
        return
    read_status(link, source=LinkEvent.Source.SYSTEM, now=now)
