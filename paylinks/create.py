"""Making a payment link: one POST to Provet per idempotency key, never a blind retry.

DESIGN.md "A link's life", steps 1 and 2: the link is written in `creating` with its key, then
posted; Provet's answer makes it `active`. An answer lost after the request left (timeout,
dropped connection, 5xx) makes it `unknown`, and the reconciler decides what happened.

Never more asked than is due: the reservation locks the invoice row and checks, in the same
transaction, that the invoice's payable links and the new one together ask for no more than its
due sum. A link made in place of another ("Send again", "Replace") is reserved under a lock on
the old link, one per old link (a unique constraint backs it), and is posted only once Provet
has confirmed that the old one is cancelled.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinics import formats
from clinics.models import Department, Practice
from clinics.provet import (
    ProvetError,
    ProvetRateLimited,
    ProvetUnavailable,
    ProvetValidationError,
)
from clinics.provet.errors import explain
from clinics.provet.types import PosTransaction
from paylinks.cancel import CannotCancel, cancel_link
from paylinks.models import (
    Invoice,
    LinkEvent,
    PaymentLink,
    PaymentStatus,
    Prepayment,
    Said,
    Tokenize,
)
from paylinks.reconcile import reconcile_link

# Provet Pay's fixed codes (reference: "Payment type should be 5003 and transaction type 4").
PAYMENT_TYPE_PROVET_PAY = 5003
TRANSACTION_TYPE_PAYMENT_LINK = 4

# Provet's field names, as they come back in a 400, mapped onto the form's.
PROVET_FIELDS = {
    "amount": "amount",
    "department": "department",
    "invoice": "__all__",
    "payment_link_data.email": "email",
    "payment_link_data.phone": "phone",
    "payment_link_data.description": "description",
    "payment_link_data.duration": "duration",
    "payment_link_data.return_url": "return_url",
    "payment_link_data.delivery_method": "delivery_method",
    "payment_link_data.tokenize": "tokenize",
    "payment_link_data.recurring_model": "recurring_model",
    "payment_link_data.invoice_id": "__all__",
    "prepayment_data.client_id": "client",
    "prepayment_data.department_id": "department",
    "prepayment_data.description": "description",
}


@dataclass
class LinkDraft:
    """Everything a link needs, already validated (see paylinks/forms.py)."""

    practice: Practice
    department: Department
    amount: Decimal
    delivery_method: int
    email: str
    phone: str
    description: str
    duration_minutes: int
    return_url: str
    tokenize: str
    recurring_model: str
    consent: bool
    # The staff member the link is made for: the signed-in one, or, for the automatic
    # follow-up, whoever made the link it sends again (their link, their notices).
    created_by: Any
    idempotency_key: str
    invoice: Invoice | None = None
    client_provet_id: int | None = None
    client_name: str = ""
    prepayment_description: str = ""
    replaces: PaymentLink | None = None
    # Sent again by the practice's automatic follow-up (paylinks/followups.py), not a person.
    sent_automatically: bool = False

    @property
    def source(self) -> str:
        """Who the link's events say acted."""
        return LinkEvent.Source.SYSTEM if self.sent_automatically else LinkEvent.Source.USER

    @property
    def actor(self) -> Any:
        """The person the link's events name: nobody when PayLinks sends it by itself."""
        return None if self.sent_automatically else self.created_by


class LinkNotCreated(Exception):
    """Provet refused the link or was never reached: nothing exists, here or there.

    `message` is in the language of the page that asked (it is shown at once); `english` is
    the same in English, for a link's timeline, which stores its words in English."""

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.english = message
        self.field_errors = field_errors or {}


def _refused(
    words: Callable[[], str], field_errors: dict[str, list[str]] | None = None
) -> LinkNotCreated:
    """A LinkNotCreated whose `words` (gettext and its placeholders) are said in the page's
    language and remembered in English, for the timeline of the link it was to replace."""
    refused = LinkNotCreated(words(), field_errors)
    with translation.override("en"):
        refused.english = words()
    return refused


class AlreadyReplaced(Exception):
    """Someone already made a link in this one's place: that one is the link to use."""

    def __init__(self, replacement: PaymentLink):
        super().__init__(f"already replaced by {replacement.code}")
        self.replacement = replacement


def create_link(draft: LinkDraft) -> PaymentLink:
    """Create the link once; the same key again returns the same link without calling Provet.

    Raises LinkNotCreated (nothing was made), or AlreadyReplaced when `draft.replaces` has a
    replacement already."""
    existing = made_with(draft.idempotency_key, draft.practice, draft.created_by)
    if existing is not None:
        return existing
    try:
        link, reserved = _reserve(draft)
    except IntegrityError:
        # Another request with the same key (a double click, a second tab), or another
        # replacement of the same link, got there first (the constraints behind the locks).
        existing = made_with(draft.idempotency_key, draft.practice, draft.created_by)
        if existing is not None:
            return existing
        replacement = draft.replaces.live_replacement() if draft.replaces else None
        if replacement is None:
            raise LinkNotCreated(
                _("This form has expired: reload the page and try again.")
            ) from None
        raise AlreadyReplaced(replacement) from None
    if not reserved:
        return link
    cancelled = draft.replaces is not None and _cancel_replaced(draft, link)
    try:
        _claim_for_posting(link)
        posted = _post(draft, link)
    except LinkNotCreated as refused:
        if cancelled:
            assert draft.replaces is not None
            draft.replaces.event(
                LinkEvent.Kind.ERROR,
                draft.source,
                draft.actor,
                message=Said(
                    gettext_noop("Cancelled, but the link to replace it was not made: %(why)s"),
                    {"why": refused.english},
                ),
            )
        raise
    _note_replacement(draft, link)
    if posted is None:
        reconcile_link(link)  # the answer was lost: find out now whether it exists
    else:
        link.adopt(
            posted,
            source=draft.source,
            user=draft.actor,
            kind=LinkEvent.Kind.CREATED,
            message=_created_message(link),
            values={"delivery_method": link.delivery_method},
        )
    return link


def _post(draft: LinkDraft, link: PaymentLink) -> PosTransaction | None:
    """POST the reserved link once. None: the answer was lost (the link is now `unknown`).

    Raises LinkNotCreated when Provet certainly made nothing (the reservation is gone)."""
    try:
        with draft.practice.provet_client() as client:
            return client.create_postransaction(provet_body(draft, link, client.url_for))
    except ProvetUnavailable as error:
        if not error.request_sent:
            _discard(link)
            reason = str(error)
            raise _refused(
                lambda: (
                    _("Provet Cloud could not be reached, so nothing was created. %(reason)s")
                    % {"reason": reason}
                )
            ) from error
        link.mark(
            PaymentLink.State.UNKNOWN,
            source=LinkEvent.Source.SYSTEM,
            message=f"Provet's answer was lost ({error}); checking whether the link exists.",
        )
        return None
    except ProvetValidationError as error:
        _discard(link)
        raise _refused(
            lambda: _("Provet Cloud did not accept the link."),
            map_field_errors(error.flat_errors()),
        ) from error
    except ProvetRateLimited as error:
        _discard(link)
        seconds = f"{error.retry_after:.0f}"
        raise _refused(
            lambda: (
                _("Provet Cloud is busy, so nothing was created. Try again in %(seconds)s seconds.")
                % {"seconds": seconds}
            )
        ) from error
    except ProvetError as error:
        _discard(link)
        cause = error
        raise _refused(
            lambda: _("Nothing was created: %(reason)s") % {"reason": explain(cause)}
        ) from error


def _note_replacement(draft: LinkDraft, link: PaymentLink) -> None:
    if draft.replaces is not None:
        draft.replaces.event(
            LinkEvent.Kind.REISSUED,
            draft.source,
            draft.actor,
            message=Said(
                gettext_noop("Replaced by a new link for %(amount)s"),
                {"amount": str(link.amount), "currency": link.currency},
            ),
        )


def made_with(key: str, practice: Practice, user) -> PaymentLink | None:
    """The link this person already made with this key. A key someone else used is refused:
    it must never hand over, or act on, another person's or practice's link."""
    existing = PaymentLink.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.practice_id != practice.pk or existing.created_by_id != getattr(user, "pk", None):
        raise LinkNotCreated(_("This form has expired: reload the page and try again."))
    return existing


def _cancel_replaced(draft: LinkDraft, link: PaymentLink) -> bool:
    """Before the replacement is posted, the link it replaces must be unpayable in Provet.
    Answers whether it had to be cancelled.

    When Provet doesn't confirm the cancel, or the old link was paid meanwhile, nothing new is
    made: the reservation goes, the old link keeps what Provet last said, and its timeline
    says why. Raises LinkNotCreated."""
    old = draft.replaces
    assert old is not None
    old.refresh_from_db()
    if old.payment_status == PaymentStatus.ACCEPTED:
        _discard(link)  # paid since the reservation: its money is no longer free
        raise LinkNotCreated(_("No new link was made: the client has just paid the old link."))
    if old.cancelled_at:
        _discard(link)  # a colleague's Cancel won the race: it stands
        raise LinkNotCreated(_(_CANCELLED_MEANWHILE))
    if not old.can_cancel:
        return False  # expired, failed or cancelled already: nothing can be paid with it
    try:
        cancel_link(
            old,
            user=draft.actor,
            source=draft.source,
            message="Cancelled to be replaced by a new link",
            reason=LinkEvent.Reason.REPLACED,
        )
    except CannotCancel as refusal:
        _discard(link)
        raise LinkNotCreated(
            _("No new link was made: %(reason)s") % {"reason": refusal}
        ) from refusal
    except ProvetError as error:
        _discard(link)
        with translation.override("en"):  # stored: in English, whoever's page it was
            why = explain(error)
        old.event(
            LinkEvent.Kind.ERROR,
            draft.source,
            draft.actor,
            message=Said(
                gettext_noop("Not replaced: Provet did not confirm the cancel (%(why)s)."),
                {"why": why},
            ),
        )
        raise LinkNotCreated(
            _(
                "No new link was made: Provet Cloud did not confirm that the old link is "
                "cancelled, so the client may still pay it. Try again in a moment. (%(reason)s)"
            )
            % {"reason": explain(error)}
        ) from error
    return True


def _claim_for_posting(link: PaymentLink) -> None:
    """Take the reservation back just before the POST; its clock starts again.

    Cancelling a replaced link first can be slow. If the reconciler's sweep has meanwhile
    taken the reservation for abandoned (reconcile.STUCK_AFTER, counted from `created_at`),
    nothing is posted: the sweep's verdict stands. Raises LinkNotCreated."""
    now = timezone.now()
    claimed = PaymentLink.objects.filter(pk=link.pk, state=PaymentLink.State.CREATING).update(
        created_at=now
    )
    link.created_at = now
    if not claimed:
        raise _refused(
            lambda: _(
                "Provet Cloud took too long, so nothing was sent to it. Try again in a moment."
            )
        )


def provet_body(draft: LinkDraft, link: PaymentLink, url_for) -> dict:
    data: dict = {
        "duration": draft.duration_minutes,
        "delivery_method": draft.delivery_method,
        "description": draft.description,
    }
    if draft.email:
        data["email"] = draft.email
    if draft.phone:
        data["phone"] = draft.phone
    if draft.return_url:
        data["return_url"] = draft.return_url
    if draft.tokenize != Tokenize.OFF:
        data["tokenize"] = draft.tokenize
        data["recurring_model"] = draft.recurring_model
    body: dict = {
        "amount": draft.amount,
        "terminal_id": 0,
        "payment_type": PAYMENT_TYPE_PROVET_PAY,
        "transaction_type": TRANSACTION_TYPE_PAYMENT_LINK,
        "creator": draft.practice.provet_user_url,
        "department": url_for("department", draft.department.provet_id),
        "payment_link_data": data,
    }
    if draft.invoice is not None:
        body["invoice"] = url_for("invoice", draft.invoice.provet_id)
    else:
        body["prepayment_data"] = {
            "client_id": draft.client_provet_id,
            "department_id": draft.department.provet_id,
            "description": draft.prepayment_description or draft.description,
        }
    return body


def map_field_errors(flat: dict[str, list[str]]) -> dict[str, list[str]]:
    mapped: dict[str, list[str]] = {}
    for name, messages in flat.items():
        field = PROVET_FIELDS.get(name, "__all__")
        mapped.setdefault(field, []).extend(f"Provet Cloud: {m}" for m in messages)
    return mapped


@transaction.atomic
def _reserve(draft: LinkDraft) -> tuple[PaymentLink, bool]:
    """Write the link in `creating`, or find the one this key already made (then False).

    The locks make requests for one invoice, and replacements of one link, take turns: what
    each checks here still holds when it writes. Raises LinkNotCreated or AlreadyReplaced."""
    invoice = _lock_invoice(draft.invoice) if draft.invoice is not None else None
    if draft.replaces is not None:
        _check_replaceable(_lock_link(draft.replaces))
    existing = made_with(draft.idempotency_key, draft.practice, draft.created_by)
    if existing is not None:
        return existing, False
    if invoice is not None:
        _check_not_above_due(invoice, draft)
        if draft.sent_automatically:
            _check_automatic_sends_left(invoice, draft.practice)
    prepayment = None
    if draft.invoice is None:
        assert draft.client_provet_id is not None, "a prepayment is for a client"
        prepayment = Prepayment.objects.create(
            practice=draft.practice,
            department=draft.department,
            client_provet_id=draft.client_provet_id,
            client_name=draft.client_name,
            description=draft.prepayment_description,
        )
    consent = draft.consent and draft.tokenize == Tokenize.YES
    consent_by, consent_at = (draft.actor, timezone.now()) if consent else (None, None)
    if consent and draft.sent_automatically and draft.replaces is not None:
        # Sent again by itself: the consent is the one recorded for the link it replaces.
        consent_by = draft.replaces.consent_recorded_by
        consent_at = draft.replaces.consent_recorded_at
    link = PaymentLink.objects.create(
        practice=draft.practice,
        invoice=draft.invoice,
        prepayment=prepayment,
        department=draft.department,
        client_name=draft.invoice.client_name if draft.invoice else draft.client_name,
        amount=draft.amount,
        currency=draft.practice.currency,
        delivery_method=draft.delivery_method,
        email=draft.email,
        phone=draft.phone,
        description=draft.description,
        duration_minutes=draft.duration_minutes,
        return_url=draft.return_url,
        tokenize=draft.tokenize,
        recurring_model=draft.recurring_model if draft.tokenize else "",
        consent_recorded_by=consent_by,
        consent_recorded_at=consent_at,
        created_by=draft.created_by,
        idempotency_key=draft.idempotency_key,
        replaces=draft.replaces,
        sent_automatically=draft.sent_automatically,
    )
    return link, True


def _check_automatic_sends_left(invoice: Invoice, practice: Practice) -> None:
    """The automatic follow-up sends an invoice at most `follow_up_max_sends` times: counted
    under the invoice's lock, so two workers never both send the last one."""
    if automatic_sends(invoice) >= practice.follow_up_max_sends:
        raise LinkNotCreated(
            _("Already sent automatically %(count)s times for invoice %(invoice)s.")
            % {"count": practice.follow_up_max_sends, "invoice": invoice}
        )


def automatic_sends(invoice: Invoice) -> int:
    """Links the automatic follow-up made for this invoice (attempts Provet never made aside)."""
    return invoice.links.automatic_sends().count()


def _lock_invoice(invoice: Invoice) -> Invoice:
    """The invoice row, locked until the reservation commits: one reservation at a time."""
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


def _lock_link(link: PaymentLink) -> PaymentLink:
    return PaymentLink.objects.select_for_update().get(pk=link.pk)


def _check_replaceable(old: PaymentLink) -> None:
    replacement = old.live_replacement()
    if replacement is not None:
        raise AlreadyReplaced(replacement)
    if old.state in PaymentLink.UNDECIDED:
        raise LinkNotCreated(_("Wait until PayLinks knows whether the old link exists."))
    if old.payment_status == PaymentStatus.ACCEPTED:
        raise LinkNotCreated(_("The client has already paid the old link."))
    if old.cancelled_at:
        raise LinkNotCreated(_(_CANCELLED_MEANWHILE))


_CANCELLED_MEANWHILE = gettext_noop(
    "No new link was made: someone cancelled the old link meanwhile. Make a new link from the "
    "invoice if it is still wanted."
)


def _check_not_above_due(invoice: Invoice, draft: LinkDraft) -> None:
    """Under the invoice's lock: the payable links, this one included, ask for no more than
    is due. A split bill passes; a second full link does not."""
    problem = above_due(invoice, draft.amount, replacing=draft.replaces)
    if problem:
        raise LinkNotCreated(problem, {"amount": [problem]})


def above_due(invoice: Invoice, amount: Decimal, *, replacing: PaymentLink | None) -> str:
    """Why a link for `amount` would ask for more than is due, or "" when it wouldn't."""
    free = invoice.free_amount(replacing=replacing)
    if amount <= free:
        return ""
    currency = invoice.practice.currency
    asked = invoice.asked_for(excluding=replacing)
    amounts = {
        "free": formats.money(free, currency),
        "asked": formats.money(asked, currency),
        "due": formats.money(invoice.due_sum, currency),
    }
    if replacing is not None and amount <= invoice.due_sum:
        return (
            _(
                "Even in place of that link, at most %(free)s is free: the invoice's other links "
                "waiting for payment ask for %(asked)s of the %(due)s due."
            )
            % amounts
        )
    if asked and amount <= invoice.due_sum:
        return (
            _(
                "Links waiting for payment already ask for %(asked)s of the %(due)s due, so at "
                "most %(free)s is free. Ask for less, or replace the waiting link."
            )
            % amounts
        )
    return _("Only %(due)s is due on this invoice; the link can't ask for more.") % amounts


def _discard(link: PaymentLink) -> None:
    """Provet certainly made nothing: leave nothing here either, and free the key."""
    with transaction.atomic():
        prepayment_id = link.prepayment_id
        link.delete()
        if prepayment_id:
            Prepayment.objects.filter(pk=prepayment_id).delete()


def _created_message(link: PaymentLink) -> str:
    """The created event's note, stored in English whoever's desk made the link; the timeline
    says how it was sent in the reader's language, from the delivery method's code."""
    with translation.override("en"):
        method = link.get_delivery_method_display()
    parts = [f"{link.amount} {link.currency}", method]
    if link.consent_recorded_at:
        parts.append("client consented to saving the card")
    if link.replaces is not None:
        parts.append(f"in place of the link for {link.replaces.amount} {link.currency}")
    return ", ".join(parts)
