"""Deciding what happened to a link whose creation answer was lost (DESIGN.md, step 2).

Provet may have made the postransaction anyway. The reconciler reads what Provet has (the
invoice's postransactions, or the newest ones for a prepayment) and adopts the one that matches:
same amount and department, made after the attempt, not already some other link's, and for a
prepayment, for the same client. None after a grace period: the attempt failed and may be made
again. Several, or a prepayment link whose client Provet doesn't tell: a person decides.
"""

import datetime as dt
import logging

from django.utils import timezone
from django.utils.translation import gettext_noop

from clinics.provet import ProvetClient, ProvetError, ProvetNotFound
from clinics.provet.types import PosTransaction, id_from_url
from paylinks.models import LinkEvent, PaymentLink, Said

logger = logging.getLogger(__name__)

# Provet can take a moment to show a postransaction whose answer was lost; until this has
# passed, "not found" means "not yet", not "never".
GRACE = dt.timedelta(minutes=2)
# Clocks differ: a postransaction "created" a little before our attempt can still be it.
CLOCK_SKEW = dt.timedelta(minutes=5)
RETRY_AFTER = dt.timedelta(seconds=30)
# Longer than a POST can take (token, connect and read timeouts): a link still `creating`
# after this was abandoned by a process that died.
STUCK_AFTER = dt.timedelta(minutes=2)
RECENT_PAGES = 3


def reconcile_link(link: PaymentLink, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    if link.state != PaymentLink.State.UNKNOWN or link.needs_review:
        return
    link.checked_at = now
    PaymentLink.objects.filter(pk=link.pk).update(checked_at=now)
    try:
        with link.practice.provet_client() as client:
            sure, unsure = _matches(client, link)
    except ProvetError as error:
        logger.warning("reconcile link %s: %s", link.code, error)
        _try_again_later(link, now)
        return
    if len(sure) == 1:
        link.adopt(
            sure[0],
            source=LinkEvent.Source.SYSTEM,
            kind=LinkEvent.Kind.RECONCILED,
            message=Said(
                gettext_noop("Found in Provet after the lost answer (postransaction %(id)s)"),
                {"id": sure[0].id},
            ),
        )
    elif sure or unsure:
        ids = ", ".join(str(m.id) for m in sure or unsure)
        reason = (
            "Several Provet links could be this one"
            if len(sure or unsure) > 1
            else "A Provet link could be this one, but Provet doesn't say which client it is for"
        )
        link.mark(
            PaymentLink.State.UNKNOWN,
            source=LinkEvent.Source.SYSTEM,
            message=f"{reason} (postransactions {ids}).",
            candidates=sorted(m.id for m in sure or unsure),
        )
    elif now - link.created_at >= GRACE:
        link.mark(
            PaymentLink.State.FAILED,
            source=LinkEvent.Source.SYSTEM,
            message=gettext_noop(
                "Provet has no such link: it was not created. It can be made again."
            ),
        )
    else:
        _try_again_later(link, now)


def look_again_at_failed(link: PaymentLink, now: dt.datetime) -> bool:
    """The nightly second look at an attempt marked failed: adopt its postransaction if it has
    turned up in Provet since. Answers whether it did. Raises ProvetError."""
    link.checked_at = now
    PaymentLink.objects.filter(pk=link.pk).update(checked_at=now)
    with link.practice.provet_client() as client:
        sure, _ = _matches(client, link)
    # Candidates a person has already said are not this link stay so.
    sure = [candidate for candidate in sure if candidate.id not in link.review_candidates]
    if len(sure) != 1:
        return False
    if link.replaces is not None and link.replaces.live_replacement() is not None:
        # The old link was replaced again meanwhile: this one stands on its own now.
        PaymentLink.objects.filter(pk=link.pk).update(replaces=None)
        link.replaces = None
    link.adopt(
        sure[0],
        source=LinkEvent.Source.SYSTEM,
        kind=LinkEvent.Kind.RECONCILED,
        message=Said(
            gettext_noop("Found in Provet after all, on the nightly check (postransaction %(id)s)"),
            {"id": sure[0].id},
        ),
        failed_too=True,
    )
    return True


def reconcile_unknown_links(now: dt.datetime | None = None) -> int:
    """Every unknown link whose next look is due (the task behind the schedule)."""
    now = now or timezone.now()
    sweep_stuck(now)
    due = PaymentLink.objects.filter(
        state=PaymentLink.State.UNKNOWN, needs_review=False, next_check_at__lte=now
    ).select_related("practice", "department", "invoice")
    count = 0
    for link in due:
        # Claim it first: a second worker running the same schedule skips it.
        claimed = PaymentLink.objects.filter(pk=link.pk, next_check_at=link.next_check_at).update(
            next_check_at=now + RETRY_AFTER
        )
        if claimed:
            reconcile_link(link, now)
            count += 1
    return count


def sweep_stuck(now: dt.datetime) -> None:
    """A link left in `creating` (the process died between the reservation and Provet's
    answer) may or may not exist in Provet: treat it as a lost answer."""
    stuck = PaymentLink.objects.filter(
        state=PaymentLink.State.CREATING, created_at__lte=now - STUCK_AFTER
    )
    for link in stuck:
        link.mark(
            PaymentLink.State.UNKNOWN,
            source=LinkEvent.Source.SYSTEM,
            message=gettext_noop(
                "Creating the link was interrupted; checking whether Provet made it."
            ),
        )


def _try_again_later(link: PaymentLink, now: dt.datetime) -> None:
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=now + RETRY_AFTER)
    link.next_check_at = now + RETRY_AFTER


def _matches(
    client: ProvetClient, link: PaymentLink
) -> tuple[list[PosTransaction], list[PosTransaction]]:
    """The postransactions that could be this link: those sure to be for its invoice or
    client, and prepayment links whose client Provet can't tell yet."""
    owned = (
        PaymentLink.objects.filter(practice=link.practice, postransaction_id__isnull=False)
        .exclude(pk=link.pk)
        .values_list("postransaction_id", flat=True)
    )
    known = {pk for pk in owned if pk is not None}
    matches = [
        candidate
        for candidate in _candidates(client, link, known)
        if candidate.id not in known
        and candidate.payment_link is not None
        and candidate.amount == link.amount
        and candidate.department_id == link.department.provet_id
        and candidate.invoice_id == (link.invoice.provet_id if link.invoice else None)
        and (candidate.created is None or candidate.created >= link.created_at - CLOCK_SKEW)
    ]
    if link.prepayment is None:
        return matches, []
    sure, unsure = [], []
    for candidate in matches:
        client_id = _prepayment_client(client, candidate)
        if client_id == link.prepayment.client_provet_id:
            sure.append(candidate)
        elif client_id is None:
            unsure.append(candidate)
        # Another client's prepayment link is never this one.
    return sure, unsure


def _prepayment_client(client: ProvetClient, candidate: PosTransaction) -> int | None:
    """The client a prepayment link is for, as its unallocated payment tells (None: unknown).

    Provet's answer names no client; the unallocated payment that holds the money does."""
    if not candidate.unallocated_payment_url:
        return None
    try:
        payment = client.get(candidate.unallocated_payment_url)
    except ProvetNotFound:
        return None
    return id_from_url(payment.get("client")) if isinstance(payment, dict) else None


def _candidates(client: ProvetClient, link: PaymentLink, known: set[int]) -> list[PosTransaction]:
    if link.invoice is not None:
        urls = client.get_invoice(link.invoice.provet_id).postransactions
        return [
            client.get_postransaction_by_url(url) for url in urls if id_from_url(url) not in known
        ]
    # A prepayment has no invoice to look through: read the newest postransactions, from the
    # last page backwards, until they are older than the attempt.
    first = client.list_postransactions(page_size=50)
    found = list(first.results)
    for number in range(first.num_pages, max(first.num_pages - RECENT_PAGES, 1), -1):
        page = client.page("postransaction/", PosTransaction.from_json, page=number)
        found.extend(page.results)
        oldest = min((p.created for p in page.results if p.created), default=None)
        if oldest is not None and oldest < link.created_at - CLOCK_SKEW:
            break
    unique = {p.id: p for p in found}
    return list(unique.values())
