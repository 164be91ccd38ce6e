"""The nightly drift check: where invoices and links disagree, a person should look.

Webhooks and the poller keep links and invoice snapshots fresh, but a lost webhook or a payment
taken by another route can leave them disagreeing. Once a night this re-reads the invoices that
matter from Provet and records what still disagrees as open `DriftFinding`s:
- an accepted link whose payment the invoice doesn't show (it is still due);
- a paid invoice that still has open links (the client could pay twice);
- a link whose creation outcome has been unknown for over an hour.
A finding stays open until a later check no longer sees it.

It also gives each attempt the reconciler marked "not created" one more look: Provet may show a
postransaction late. One that turned up is adopted, and cancelled again if the invoice's other
links already ask for all that is due.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, Max, Q, QuerySet, Sum, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from clinics.models import Practice
from clinics.provet import ProvetError
from paylinks.cancel import CannotCancel, cancel_link
from paylinks.invoices import refresh_due_sums
from paylinks.models import DriftFinding, Invoice, LinkEvent, PaymentLink, PaymentStatus, Said
from paylinks.reconcile import look_again_at_failed
from paylinks.refresh import read_status

logger = logging.getLogger(__name__)

UNKNOWN_TOO_LONG = dt.timedelta(hours=1)
# Provet takes a moment to allocate a link's payment to its invoice.
ALLOCATION_DELAY = dt.timedelta(minutes=10)
# Invoices re-read per practice per night, the least recently read first, so a large practice
# is covered over a few nights without spending its rate limit at once.
MAX_READS = 150
# Attempts that failed lately get another look each night while they are this young (one or
# two looks, as the night falls), unless something looked at them within the last hour.
FAILED_LOOK_WITHIN = dt.timedelta(days=2)
FAILED_LOOK_QUIET = dt.timedelta(hours=1)

Kind = DriftFinding.Kind


@dataclass(frozen=True)
class Mismatch:
    kind: str
    message: Said
    invoice_id: int | None = None
    link_id: int | None = None


def open_findings(practices) -> QuerySet[DriftFinding]:
    """The mismatches the last check found and no later check has seen resolved."""
    return DriftFinding.objects.filter(
        practice__in=practices, resolved_at__isnull=True
    ).select_related("practice", "invoice", "link")


def find_drift(practice: Practice, now: dt.datetime | None = None) -> list[DriftFinding]:
    """Re-read the invoices that matter, record what disagrees, resolve what no longer does."""
    now = now or timezone.now()
    try:
        refresh_due_sums(practice, set(_invoices_to_read(practice, now)))
        # A paid invoice's open links may simply be paid and not yet polled: ask about them.
        for link in _open_links(practice).filter(invoice__due_sum__lte=0):
            read_status(link, source=LinkEvent.Source.SYSTEM, now=now)
        for link in _failed_not_looked_at_again(practice, now):
            if look_again_at_failed(link, now):
                _keep_within_due(link)
    except ProvetError as error:
        # Compare what we have: a stale snapshot can only hide a mismatch for a night.
        logger.warning("drift check %s: could not re-read from Provet: %s", practice, error)
    return _record(practice, find_mismatches(practice, now), now)


def _failed_not_looked_at_again(practice: Practice, now: dt.datetime) -> QuerySet[PaymentLink]:
    return PaymentLink.objects.filter(
        Q(checked_at__isnull=True) | Q(checked_at__lt=now - FAILED_LOOK_QUIET),
        practice=practice,
        state=PaymentLink.State.FAILED,
        postransaction_id__isnull=True,
        created_at__gte=now - FAILED_LOOK_WITHIN,
    ).select_related("practice", "department", "invoice", "prepayment")


def _keep_within_due(link: PaymentLink) -> None:
    """A link found late must not make the invoice ask for more than is due: cancel it."""
    if link.invoice is None or not link.is_open:
        return
    invoice = link.invoice
    invoice.refresh_from_db()
    if invoice.asked_for() <= invoice.due_sum:
        return
    try:
        # A refusal's words are stored on the timeline: in English, whoever runs the check.
        with translation.override("en"):
            cancel_link(
                link,
                user=None,
                source=LinkEvent.Source.SYSTEM,
                message=gettext_noop(
                    "Found late; cancelled because the invoice's other links already ask for "
                    "what is due"
                ),
            )
    except CannotCancel as refusal:
        link.event(LinkEvent.Kind.ERROR, LinkEvent.Source.SYSTEM, message=str(refusal))


def _open_links(practice: Practice) -> QuerySet[PaymentLink]:
    return (
        PaymentLink.objects.counted_as("outstanding")
        .filter(practice=practice)
        .select_related("practice", "invoice")
    )


def _invoices_to_read(practice: Practice, now: dt.datetime) -> list[int]:
    links = PaymentLink.objects.filter(practice=practice, invoice__isnull=False)
    accepted_recently = links.filter(
        payment_status=PaymentStatus.ACCEPTED,
        paid_at__gte=now - dt.timedelta(days=30),
    )
    # Invoices with a paid link first: a stale one would be reported as unallocated.
    paid_first = Case(
        When(pk__in=accepted_recently.values("invoice"), then=Value(0)), default=Value(1)
    )
    return list(
        Invoice.objects.filter(
            Q(pk__in=_open_links(practice).values("invoice"))
            | Q(pk__in=accepted_recently.values("invoice")),
            practice=practice,
        )
        .order_by(paid_first, "fetched_at")
        .values_list("pk", flat=True)[:MAX_READS]
    )


def find_mismatches(practice: Practice, now: dt.datetime) -> list[Mismatch]:
    """Compare the invoice snapshots and the links, in the database."""
    found: list[Mismatch] = []
    accepted = Q(links__payment_status=PaymentStatus.ACCEPTED)
    unallocated = (
        Invoice.objects.filter(practice=practice)
        .annotate(paid_by_links=Sum("links__amount", filter=accepted))
        .annotate(last_paid_at=Max("links__paid_at", filter=accepted))
        .filter(
            paid_by_links__gt=0,
            last_paid_at__lte=now - ALLOCATION_DELAY,
            # Judged only on a snapshot read after Provet had time to allocate the payment.
            fetched_at__gte=F("last_paid_at") + ALLOCATION_DELAY,
            # Paying the links should have brought the due sum down at least this far.
            due_sum__gt=F("total_with_vat") - F("paid_by_links"),
        )
    )
    for invoice in unallocated:
        link = invoice.links.filter(payment_status=PaymentStatus.ACCEPTED).latest("paid_at")
        found.append(
            Mismatch(
                Kind.PAID_LINK_INVOICE_DUE,
                Said(
                    gettext_noop(
                        "Invoice %(invoice)s still shows %(due_amount)s due although links paid "
                        "%(paid_amount)s: check the payment was allocated in Provet."
                    ),
                    {
                        "invoice": str(invoice),
                        "due_amount": str(invoice.due_sum),
                        "paid_amount": str(invoice.paid_by_links),
                        "currency": practice.currency,
                    },
                ),
                invoice.pk,
                link.pk,
            )
        )
    for link in _open_links(practice).filter(invoice__due_sum__lte=0):
        found.append(
            Mismatch(
                Kind.PAID_INVOICE_OPEN_LINKS,
                Said(
                    gettext_noop(
                        "Invoice %(invoice)s is paid but this %(amount)s link is still open: "
                        "cancel it so the client isn't asked to pay twice."
                    ),
                    {
                        "invoice": str(link.invoice),
                        "amount": str(link.amount),
                        "currency": link.currency,
                    },
                ),
                link.invoice_id,
                link.pk,
            )
        )
    unknown = PaymentLink.objects.filter(
        practice=practice,
        state=PaymentLink.State.UNKNOWN,
        created_at__lte=now - UNKNOWN_TOO_LONG,
    )
    for link in unknown:
        found.append(
            Mismatch(
                Kind.UNKNOWN_TOO_LONG,
                _still_unknown(link),
                link.invoice_id,
                link.pk,
            )
        )
    return found


def _record(practice: Practice, found: list[Mismatch], now: dt.datetime) -> list[DriftFinding]:
    with transaction.atomic():
        existing = {
            (f.kind, f.invoice_id, f.link_id): f
            for f in DriftFinding.objects.select_for_update().filter(
                practice=practice, resolved_at__isnull=True
            )
        }
        current = []
        for mismatch in found:
            finding = existing.pop((mismatch.kind, mismatch.invoice_id, mismatch.link_id), None)
            if finding is None:
                finding = DriftFinding.objects.create(
                    practice=practice,
                    kind=mismatch.kind,
                    invoice_id=mismatch.invoice_id,
                    link_id=mismatch.link_id,
                    found_at=now,
                    **_message_fields(mismatch.message),
                )
            elif finding.message_values != mismatch.message.values:
                for name, value in _message_fields(mismatch.message).items():
                    setattr(finding, name, value)
                finding.save(update_fields=["message", "message_template", "message_values"])
            current.append(finding)
        DriftFinding.objects.filter(pk__in=[f.pk for f in existing.values()]).update(
            resolved_at=now
        )
    return current


def _still_unknown(link: PaymentLink) -> Said:
    values = {"amount": str(link.amount), "currency": link.currency}
    if link.invoice_id:
        values["invoice"] = str(link.invoice)
        if link.last_error:
            template = gettext_noop(
                "Whether Provet made this %(amount)s link for invoice %(invoice)s is still "
                "unknown: %(why)s"
            )
        else:
            template = gettext_noop(
                "Whether Provet made this %(amount)s link for invoice %(invoice)s is still "
                "unknown: check it in Provet."
            )
    elif link.last_error:
        template = gettext_noop(
            "Whether Provet made this %(amount)s prepayment link is still unknown: %(why)s"
        )
    else:
        template = gettext_noop(
            "Whether Provet made this %(amount)s prepayment link is still unknown: "
            "check it in Provet."
        )
    if link.last_error:
        values["why"] = link.last_error
    return Said(template, values)


def _message_fields(said: Said) -> dict:
    return {
        "message": said.english()[:300],
        "message_template": said.template,
        "message_values": said.values,
    }
