"""Deciding which Provet link a link is, when several could be (DESIGN.md "A link's life", step 2).

When a link's create answer was lost and several of Provet's postransactions match it, the
reconciler leaves the choice to a person (`needs_review`, with `review_candidates`). A manager
or admin compares the candidates side by side, says which one is this link (*This is the one*),
and then cancels the others in Provet (*Cancel the others*), so the invoice is never asked for
more than is due.

Provet is the truth and is read again on every look. The candidates stay on the link after the
choice (`review_candidates`), so the ones left out are those that aren't its postransaction;
what was chosen and what was cancelled is on the link's timeline.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinics import formats
from clinics.models import Practice
from clinics.provet import ProvetClient, ProvetNotFound
from clinics.provet.types import PosTransaction
from paylinks.cancel import delete_in_provet
from paylinks.models import DeliveryStatus, LinkEvent, PaymentLink, PaymentStatus, Said


class CannotReview(Exception):
    """The decision can't be taken; the message says why, in a manager's words."""


class NotUnderReview(CannotReview):
    pass


class NotACandidate(CannotReview):
    pass


@dataclass(frozen=True)
class Candidate:
    """A postransaction that could be the link (before the choice) or was left out (after)."""

    id: int
    amount: Decimal | None = None
    created: dt.datetime | None = None
    payment_status: int | None = None
    delivery_status: int | None = None
    payer_url: str = ""
    owner: PaymentLink | None = None  # another PayLinks link whose postransaction it is
    gone: bool = False  # Provet no longer has it

    @property
    def status(self) -> str:
        if self.gone:
            return _("Cancelled in Provet")
        if self.payment_status is None:
            return _("Not a payment link")
        return str(PaymentStatus(self.payment_status).label)

    @property
    def tone(self) -> str:
        if self.gone:
            return "neutral"
        if self.payment_status == PaymentStatus.ACCEPTED:
            return "good"
        return "waiting" if self.payment_status == PaymentStatus.PENDING else "bad"

    @property
    def delivery(self) -> str:
        if self.delivery_status is None:
            return ""
        return str(DeliveryStatus(self.delivery_status).label)

    @property
    def paid(self) -> bool:
        return not self.gone and self.payment_status == PaymentStatus.ACCEPTED

    @property
    def choosable(self) -> bool:
        return not self.gone and self.owner is None and self.payment_status is not None

    @property
    def cancellable(self) -> bool:
        """Still asks a client to pay, and no other link of ours made it (a link imported
        from the invoice after the choice is the duplicate itself, brought in)."""
        return (
            not self.gone
            and self.payment_status == PaymentStatus.PENDING
            and (self.owner is None or self.owner.imported)
        )


def can_review(user, link: PaymentLink) -> bool:
    """Managers and admins of the link's practice decide; reception staff see the link only."""
    return Practice.objects.managed_by(user).filter(pk=link.practice_id).exists()


def is_waiting(link: PaymentLink) -> bool:
    return link.needs_review and link.state == PaymentLink.State.UNKNOWN


def was_chosen(link: PaymentLink) -> bool:
    """This link's postransaction was chosen among its candidates."""
    return not link.needs_review and link.postransaction_id in link.review_candidates


def left_out(link: PaymentLink) -> list[int]:
    """The candidates not chosen."""
    return [pk for pk in link.review_candidates if pk != link.postransaction_id]


def candidates(link: PaymentLink) -> list[Candidate]:
    """The postransactions that could be this link, as Provet has them now. Raises ProvetError."""
    return _read(link, list(link.review_candidates))


def others(link: PaymentLink) -> list[Candidate]:
    """After the choice: the candidates left out, as Provet has them now. Raises ProvetError."""
    return _read(link, left_out(link))


def choose(link: PaymentLink, postransaction_id: int, user) -> list[Candidate]:
    """Take `postransaction_id`, one of the link's candidates, as the link's own.

    Returns the other candidates as Provet has them now (those still pending are to be
    cancelled). Raises NotUnderReview when the link is no longer waiting for a decision,
    NotACandidate for an id that can't be chosen, ProvetError when Provet can't answer.
    """
    link.refresh_from_db()
    if not is_waiting(link):
        raise NotUnderReview(_("Someone has already decided which Provet link this is."))
    if postransaction_id not in link.review_candidates:
        raise NotACandidate(
            _(
                "Postransaction %(id)s is not one of the Provet links that matched this one; "
                "nothing was changed."
            )
            % {"id": postransaction_id}
        )
    ids = list(link.review_candidates)
    with link.practice.provet_client() as client:
        read = {pk: _get(client, pk) for pk in ids}
    posted = read[postransaction_id]
    if posted is None:
        raise NotACandidate(
            _("Postransaction %(id)s is no longer in Provet.") % {"id": postransaction_id}
        )
    if _owners(link, [postransaction_id]):
        raise NotACandidate(
            _("Postransaction %(id)s already belongs to another link.") % {"id": postransaction_id}
        )

    rest = [pk for pk in ids if pk != postransaction_id]
    chosen = {"name": formats.person(user), "id": postransaction_id}
    if rest:
        others = ", ".join(str(pk) for pk in rest)
        message = Said(
            gettext_noop(
                "Chosen by %(name)s: postransaction %(id)s is this link. "
                "The others that matched: %(others)s."
            ),
            chosen | {"others": others},
        )
    else:
        message = Said(
            gettext_noop("Chosen by %(name)s: postransaction %(id)s is this link."), chosen
        )
    try:
        link.adopt(
            posted,
            source=LinkEvent.Source.USER,
            kind=LinkEvent.Kind.RECONCILED,
            user=user,
            message=message,
        )
    except IntegrityError as taken:  # another link took it meanwhile (a unique constraint)
        raise NotACandidate(
            _("Postransaction %(id)s already belongs to another link.") % {"id": postransaction_id}
        ) from taken
    if link.postransaction_id != postransaction_id:
        raise NotUnderReview(_("Someone else decided which Provet link this is a moment ago."))
    owners = _owners(link, rest)
    return [_candidate(pk, read[pk], owners.get(pk)) for pk in rest]


def none_of_these(link: PaymentLink, user) -> None:
    """A person says no candidate is this link: the attempt was not created.

    The candidates stay on the link, so the nightly second look never adopts one of them; on
    an invoice they are then imported as links of their own, and count as such.
    Raises NotUnderReview when someone decided meanwhile."""
    with transaction.atomic():
        locked = PaymentLink.objects.select_for_update().get(pk=link.pk)
        if not is_waiting(locked):
            raise NotUnderReview(_("Someone has already decided which Provet link this is."))
        locked.state = PaymentLink.State.FAILED
        locked.needs_review = False
        locked.next_check_at = None
        locked.last_error = (
            f"None of the matching Provet links is this one ({formats.person(user)})."
        )
        locked.save(update_fields=["state", "needs_review", "next_check_at", "last_error"])
        with translation.override("en"):  # the states' words are stored: in English
            locked.event(
                LinkEvent.Kind.ERROR,
                LinkEvent.Source.USER,
                user,
                PaymentLink.State.UNKNOWN.label,
                PaymentLink.State.FAILED.label,
                locked.last_error,
            )
    link.refresh_from_db()


@dataclass(frozen=True)
class Outcome:
    postransaction_id: int
    cancelled: bool
    message: str


def cancel_others(link: PaymentLink, user) -> list[Outcome]:
    """Cancel in Provet the candidates left out by the choice that still ask to be paid.

    A candidate another link of ours made is left alone; one imported from the invoice since
    the choice is cancelled, and so is its imported link. Each cancellation, and each paid
    duplicate that can't be, leaves an event on this link's timeline; one already gone from
    Provet is skipped, so pressing again cancels nothing twice. Raises NotUnderReview before
    the choice, ProvetError when Provet can't answer (what was done until then stays done).
    """
    link.refresh_from_db()
    if not was_chosen(link):
        raise NotUnderReview(_("First say which Provet link this is; then cancel the others."))
    pending = left_out(link)
    owners = _owners(link, pending)
    outcomes = []
    with link.practice.provet_client() as client:
        for pk in pending:
            owner = owners.get(pk)
            if owner is not None and not owner.imported:
                continue  # another PayLinks link's own: not this link's duplicate
            outcome = _cancel_one(client, link, pk, owner, user)
            if outcome is not None:
                outcomes.append(outcome)
    return outcomes


def _cancel_one(
    client: ProvetClient, link: PaymentLink, pk: int, owner: PaymentLink | None, user
) -> Outcome | None:
    posted = _get(client, pk)
    if posted is None:
        return None  # gone from Provet already: nobody can pay it
    status = posted.payment_link.payment_status if posted.payment_link else None
    if status == PaymentStatus.ACCEPTED:
        return _refused_paid(link, pk, owner, posted, user)
    if status != PaymentStatus.PENDING:
        return None  # expired, failed or aborted: nobody can pay it any more
    refusal = delete_in_provet(client, pk)
    if refusal is not None:
        now = refusal.posted
        if now and now.payment_link and now.payment_link.payment_status == PaymentStatus.ACCEPTED:
            return _refused_paid(link, pk, owner, now, user)
        words = refusal.reasons
        # The timeline keeps it in English; the person pressing reads it in their language.
        refused = Said(
            gettext_noop("Provet Cloud would not cancel postransaction %(id)s: %(reasons)s"),
            {"id": pk, "reasons": words},
        )
        link.event(LinkEvent.Kind.ERROR, LinkEvent.Source.USER, user, message=refused)
        shown = _("Provet Cloud would not cancel postransaction %(id)s: %(reasons)s") % {
            "id": pk,
            "reasons": words,
        }
        return Outcome(pk, False, shown)
    cancelled = Said(
        gettext_noop("Cancelled postransaction %(id)s in Provet: a duplicate of this link."),
        {"id": pk},
    )
    link.event(
        LinkEvent.Kind.CANCELLED,
        LinkEvent.Source.USER,
        user,
        message=cancelled,
        reason=LinkEvent.Reason.DUPLICATE_CANCELLED,
    )
    if owner is not None:
        owner.record_cancelled(
            user=user,
            source=LinkEvent.Source.USER,
            message=Said(
                gettext_noop("A duplicate of link %(code)s, cancelled from its review"),
                {"code": str(link.code)},
            ),
        )
    shown = _("Cancelled postransaction %(id)s in Provet: a duplicate of this link.") % {"id": pk}
    return Outcome(pk, True, shown)


def _refused_paid(
    link: PaymentLink, pk: int, owner: PaymentLink | None, posted: PosTransaction, user
) -> Outcome:
    refused = Said(
        gettext_noop(
            "Did not cancel postransaction %(id)s in Provet: the client has already paid it. "
            "If it was a duplicate, refund it in Provet."
        ),
        {"id": pk},
    )
    link.event(LinkEvent.Kind.ERROR, LinkEvent.Source.USER, user, message=refused)
    if owner is not None:
        owner.record_status(posted, source=LinkEvent.Source.USER, user=user)
    shown = _(
        "Did not cancel postransaction %(id)s in Provet: the client has already paid it. "
        "If it was a duplicate, refund it in Provet."
    ) % {"id": pk}
    return Outcome(pk, False, shown)


def _read(link: PaymentLink, ids: list[int]) -> list[Candidate]:
    owners = _owners(link, ids)
    with link.practice.provet_client() as client:
        return [_candidate(pk, _get(client, pk), owners.get(pk)) for pk in ids]


def _get(client: ProvetClient, pk: int) -> PosTransaction | None:
    try:
        return client.get_postransaction(pk)
    except ProvetNotFound:
        return None


def _candidate(pk: int, posted: PosTransaction | None, owner: PaymentLink | None) -> Candidate:
    if posted is None:
        return Candidate(id=pk, owner=owner, gone=True)
    info = posted.payment_link
    return Candidate(
        id=pk,
        amount=posted.amount,
        created=posted.created,
        payment_status=info.payment_status if info else None,
        delivery_status=info.delivery_status if info else None,
        payer_url=info.url if info else "",
        owner=owner,
    )


def _owners(link: PaymentLink, ids: list[int]) -> dict[int, PaymentLink]:
    """Other PayLinks links whose postransaction is one of `ids`."""
    owned = PaymentLink.objects.filter(practice=link.practice, postransaction_id__in=ids).exclude(
        pk=link.pk
    )
    return {other.postransaction_id: other for other in owned if other.postransaction_id}
