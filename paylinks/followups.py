"""Automatic follow-up: an invoice link that expired unpaid is sent again by PayLinks itself.

Off unless a practice's admin turns it on (Practice.auto_follow_up). Then, every few minutes
(paylinks/schedules.py), a pass over the practice finds the invoice links that expired unpaid at
least `follow_up_delay_hours` ago, since it was turned on, and sends each again the way *Send
again* does (paylinks/send_again.py), only while the practice is open (its opening days and hours
in its time zone) and at most `follow_up_max_sends` times per invoice.

Right before sending, the invoice and its client are read again from Provet: nothing is sent
when it was paid by any route, when the client opted out of the link's channel, or when a person
sent the link again meanwhile. What keeps two workers from sending the same follow-up twice is in
the reservation's transaction (send_again.send_again_automatically), not here: here is only what is
worth trying. Its Provet requests are background work (clinics/budget.py): a pass stops when the
practice's budget is spent, and the next pass goes on.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from clinics.models import Practice
from clinics.provet import ProvetBudgetSpent, ProvetError
from clinics.provet.errors import explain
from paylinks.create import AlreadyReplaced, LinkNotCreated
from paylinks.models import DeliveryMethod, DeliveryStatus, PaymentLink
from paylinks.send_again import send_again_automatically

logger = logging.getLogger(__name__)

# Links that expired longer ago than the delay and this are left to the desk: after a long
# closure or an outage PayLinks doesn't send a pile of old links at once.
LATEST = dt.timedelta(days=7)
# Sends per pass and practice: each reads the invoice and its client first (about five
# requests), and a pass runs every few minutes.
SENDS_PER_PASS = 10
# A link whose follow-up failed (Provet refused it, or couldn't answer) is tried again after
# this long, not on every pass.
RETRY_AFTER = dt.timedelta(hours=1)


@dataclass
class FollowUpReport:
    sent: list[PaymentLink] = field(default_factory=list)
    skipped: int = 0
    stopped: str = ""

    def __str__(self) -> str:
        stopped = f", stopped: {self.stopped}" if self.stopped else ""
        return f"sent {len(self.sent)}, skipped {self.skipped}{stopped}"


def practices_to_follow_up(now: dt.datetime) -> list[Practice]:
    """The practices whose follow-ups may go out now: turned on, active, and open."""
    turned_on = Practice.objects.filter(is_active=True, auto_follow_up=True)
    return [practice for practice in turned_on if practice.is_open_at(now)]


def follow_up_practice(practice: Practice, now: dt.datetime | None = None) -> FollowUpReport:
    """One pass over one practice: send again what is due to be sent again, now."""
    now = now or timezone.now()
    report = FollowUpReport()
    practice.refresh_from_db()  # turned off or closed since the pass was queued?
    if not (practice.is_active and practice.auto_follow_up and practice.is_open_at(now)):
        return report
    if practice.pause_ends_at(now):
        report.stopped = "Provet asked PayLinks to wait"
        return report
    for link in candidates(practice, now)[:SENDS_PER_PASS]:
        if not cache.add(_attempt_key(link), 1, RETRY_AFTER.total_seconds()):
            continue  # tried lately, by this pass's predecessor or another worker
        try:
            report.sent.append(send_again_automatically(link))
        except (LinkNotCreated, AlreadyReplaced) as reason:
            report.skipped += 1
            logger.info("not sent again automatically: link %s: %s", link.code, reason)
        except ProvetBudgetSpent as spent:
            cache.delete(_attempt_key(link))  # not tried: the next pass may
            report.stopped = str(spent)
            break
        except ProvetError as error:
            report.skipped += 1
            logger.info("not sent again automatically: link %s: %s", link.code, explain(error))
    return report


def candidates(practice: Practice, now: dt.datetime) -> list[PaymentLink]:
    """The practice's links worth sending again now, by what PayLinks already knows, the
    longest expired first, one per invoice: the send itself checks everything again with Provet.

    An invoice link that expired unpaid (not cancelled, not sent nowhere) at least the delay
    ago, after follow-up was turned on and not too long ago; nobody sent it again; its invoice
    was still due when last read, its client took the link's channel, no other link of it is
    waiting for payment, and it has automatic sends left."""
    expired_before = now - dt.timedelta(hours=practice.follow_up_delay_hours)
    expired_after = expired_before - LATEST
    if practice.follow_up_since is not None:
        expired_after = max(expired_after, practice.follow_up_since)
    waiting = PaymentLink.objects.filter(PaymentLink.open_q(), invoice=OuterRef("invoice"))
    automatic_sends = (
        PaymentLink.objects.automatic_sends()
        .filter(invoice=OuterRef("invoice"))
        .order_by()
        .values("invoice")
        .annotate(count=Count("pk"))
        .values("count")
    )
    reachable = (
        Q(delivery_method=DeliveryMethod.SMS_AND_EMAIL)
        & ~Q(invoice__client_no_sms=True, invoice__client_no_email=True)
        | Q(delivery_method=DeliveryMethod.SMS, invoice__client_no_sms=False)
        | Q(delivery_method=DeliveryMethod.EMAIL, invoice__client_no_email=False)
    )
    links = (
        PaymentLink.objects.counted_as("expired")
        .filter(
            reachable,
            practice=practice,
            invoice__isnull=False,
            expires_at__lte=expired_before,
            expires_at__gt=expired_after,
        )
        .exclude(Exists(waiting))
        # An address that could not be reached would not be reached again.
        .exclude(delivery_status=DeliveryStatus.FAILED)
        .annotate(automatic=Coalesce(Subquery(automatic_sends), 0))
        .filter(automatic__lt=practice.follow_up_max_sends)
        .select_related("practice", "invoice", "department", "prepayment")
        .order_by("expires_at", "pk")
    )
    one_per_invoice: dict[int, PaymentLink] = {}
    for link in links:
        assert link.invoice_id is not None
        one_per_invoice.setdefault(link.invoice_id, link)
    return list(one_per_invoice.values())


def _attempt_key(link: PaymentLink) -> str:
    return f"paylinks:follow-up:{link.pk}"
