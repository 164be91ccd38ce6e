"""'Send again': a new link in place of an old one, for what is still due.

One per old link, whoever presses first: the others are shown the new link. A still-payable old
link is cancelled in Provet before the new one is made (paylinks/create.py).
"""

from paylinks.create import AlreadyReplaced, LinkDraft, LinkNotCreated, create_link, made_with
from paylinks.invoices import refresh_invoice
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus
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
        raise LinkNotCreated("Wait until PayLinks knows whether this link exists.")
    if link.cancelled_at:
        raise LinkNotCreated("This link was cancelled. Make a new link from the invoice instead.")
    if link.is_open and link.postransaction_id:
        read_status(link, source=LinkEvent.Source.USER, user=user)  # the page may be stale
    if link.payment_status == PaymentStatus.ACCEPTED:
        raise LinkNotCreated("The client has already paid this link.")
    amount = link.amount
    if link.invoice is not None:
        invoice = refresh_invoice(link.practice, link.invoice.provet_id)
        if not invoice.is_payable:
            raise LinkNotCreated(f"Nothing is due on invoice {invoice}: it has been paid.")
        # What is still due, less what the invoice's other payable links ask for.
        amount = invoice.free_amount(replacing=link)
        if amount <= 0:
            replacement = link.live_replacement()  # made while we asked Provet?
            if replacement is not None:
                raise AlreadyReplaced(replacement)
            raise LinkNotCreated(
                f"Links waiting for payment already ask for everything due on invoice {invoice}."
            )
    return create_link(_draft_like(link, user=user, amount=amount, key=idempotency_key))


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
