"""'Send again': a new link in place of an old one, for what is still due.

One per old link, whoever presses first: the others are shown the new link. A still-payable old
link is cancelled in Provet before the new one is made (paylinks/create.py).

The automatic follow-up (paylinks/followups.py) sends expired links again by the same rules,
as PayLinks rather than a person: `send_again_automatically`.
"""

import secrets
from decimal import Decimal

from django.utils.translation import gettext as _

from paylinks.create import AlreadyReplaced, LinkDraft, LinkNotCreated, create_link, made_with
from paylinks.invoices import refresh_invoice
from paylinks.models import DeliveryMethod, Invoice, LinkEvent, PaymentLink, PaymentStatus
from paylinks.refresh import read_status


def send_again(link: PaymentLink, *, user, idempotency_key: str) -> PaymentLink:
    """Raises AlreadyReplaced (use that link), LinkNotCreated (nothing due, or Provet refused),
    or ProvetError."""
    made = made_with(idempotency_key, link.practice, user)
    if made is not None:
        return made  # the same button pressed twice
    # Cheap answers first; _reserve checks them again under a lock.
    replacement = link.live_replacement()
    if replacement is not None:
        raise AlreadyReplaced(replacement)
    if link.state in PaymentLink.UNDECIDED:
        raise LinkNotCreated(_("Wait until PayLinks knows whether this link exists."))
    if link.cancelled_at:
        raise LinkNotCreated(
            _("This link was cancelled. Make a new link from the invoice instead.")
        )
    if link.can_cancel:
        read_status(link, source=LinkEvent.Source.USER, user=user)  # the page may be stale
    if link.payment_status == PaymentStatus.ACCEPTED:
        raise LinkNotCreated(_("The client has already paid this link."))
    amount = link.amount
    if link.invoice is not None:
        amount = _still_free(link, refresh_invoice(link.practice, link.invoice.provet_id))
    return create_link(_draft_like(link, user=user, amount=amount, key=idempotency_key))


def _still_free(link: PaymentLink, invoice: Invoice) -> Decimal:
    """What a link in this one's place may ask for: what is due on the invoice (just read from
    Provet), less what its other payable links ask for. Raises LinkNotCreated, AlreadyReplaced."""
    problem = invoice.link_problem()
    if problem:
        raise LinkNotCreated(problem)
    amount = invoice.free_amount(replacing=link)
    if amount <= 0:
        replacement = link.live_replacement()  # made while we asked Provet?
        if replacement is not None:
            raise AlreadyReplaced(replacement)
        raise LinkNotCreated(
            _("Links waiting for payment already ask for everything due on invoice %(invoice)s.")
            % {"invoice": invoice}
        )
    return amount


def send_again_automatically(link: PaymentLink) -> PaymentLink:
    """The automatic follow-up: an expired invoice link sent again, by PayLinks itself.

    As *Send again*, with what Provet says right now: nothing when the invoice has been paid
    by any route, when the client no longer wants the link's channel, or when someone already
    sent it again. create_link's reservation checks, under the invoice's lock, that the
    practice's automatic sends for this invoice stay within `follow_up_max_sends`: two workers
    never both send it. The new link is `sent_automatically`, and its events are PayLinks' own.
    Raises LinkNotCreated, AlreadyReplaced or ProvetError (ProvetBudgetSpent among them).
    """
    assert link.invoice is not None, "only invoice links are followed up"
    replacement = link.live_replacement()
    if replacement is not None:
        raise AlreadyReplaced(replacement)
    invoice = refresh_invoice(link.practice, link.invoice.provet_id)
    amount = _still_free(link, invoice)
    method = method_the_client_accepts(link.delivery_method, invoice)
    if method is None:
        raise LinkNotCreated(_("The client doesn't want links by SMS or e-mail any more."))
    draft = _draft_like(link, user=link.created_by, amount=amount, key=_automatic_key())
    draft.sent_automatically = True
    draft.delivery_method = method
    draft.email = draft.email if DeliveryMethod(method).needs_email else ""
    draft.phone = draft.phone if DeliveryMethod(method).needs_phone else ""
    return create_link(draft)


def method_the_client_accepts(method: int, invoice: Invoice) -> int | None:
    """The link's delivery method without the channels the client opted out of in Provet;
    None when nothing is left to send it by."""
    wanted = DeliveryMethod(method)
    sms = wanted.needs_phone and not invoice.client_no_sms
    email = wanted.needs_email and not invoice.client_no_email
    if sms and email:
        return DeliveryMethod.SMS_AND_EMAIL
    if sms:
        return DeliveryMethod.SMS
    if email:
        return DeliveryMethod.EMAIL
    return None


def _automatic_key() -> str:
    # A new key per attempt: the lock and the one-live-replacement constraint are what make
    # an expired link be sent again once, not the key.
    return "auto-" + secrets.token_urlsafe(24)


def _draft_like(link: PaymentLink, *, user, amount, key: str) -> LinkDraft:
    practice = link.practice
    return LinkDraft(
        practice=practice,
        department=link.department,
        amount=amount,
        delivery_method=link.delivery_method,
        email=link.email,
        phone=link.phone,
        description=link.description,
        duration_minutes=link.duration_minutes or practice.default_duration_minutes,
        return_url=link.return_url,
        tokenize=link.tokenize,
        recurring_model=link.recurring_model,
        consent=link.consent_recorded_at is not None,
        created_by=user,
        idempotency_key=key,
        invoice=link.invoice,
        client_provet_id=link.prepayment.client_provet_id if link.prepayment else None,
        client_name=link.client_name,
        prepayment_description=link.prepayment.description if link.prepayment else "",
        replaces=link,
    )
