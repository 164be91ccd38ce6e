"""'Send again': a new link for what is still due; the old one, if still payable, is cancelled."""

from clinics.provet import ProvetError
from paylinks.create import LinkDraft, LinkNotCreated, create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus
from paylinks.refresh import CannotCancel, cancel_link, read_status


def reissue_link(link: PaymentLink, *, user, idempotency_key: str) -> PaymentLink:
    """Raises LinkNotCreated (nothing due, or Provet refused) or ProvetError."""
    if link.state in (PaymentLink.State.CREATING, PaymentLink.State.UNKNOWN):
        raise LinkNotCreated("Wait until PayLinks knows whether this link exists.")
    if link.postransaction_id and not link.cancelled_at:
        read_status(link, source=LinkEvent.Source.USER, user=user)  # the page may be stale
    if link.payment_status == PaymentStatus.ACCEPTED:
        raise LinkNotCreated("The client has already paid this link.")
    amount = link.amount
    if link.invoice is not None:
        invoice = refresh_invoice(link.practice, link.invoice.provet_id)
        if not invoice.is_payable:
            raise LinkNotCreated(f"Nothing is due on invoice {invoice}: it has been paid.")
        amount = invoice.due_sum
    practice = link.practice
    new = create_link(
        LinkDraft(
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
            idempotency_key=idempotency_key,
            invoice=link.invoice,
            client_provet_id=link.prepayment.client_provet_id if link.prepayment else None,
            client_name=link.client_name,
            prepayment_description=link.prepayment.description if link.prepayment else "",
            replaces=link,
        )
    )
    link.refresh_from_db()
    if new.state == PaymentLink.State.ACTIVE and link.is_open:
        # The client must not be able to pay twice.
        try:
            cancel_link(link, user=user)
        except (CannotCancel, ProvetError) as error:
            link.event(
                LinkEvent.Kind.ERROR,
                LinkEvent.Source.USER,
                user,
                message=f"Could not cancel after sending again: {error}",
            )
    return new
