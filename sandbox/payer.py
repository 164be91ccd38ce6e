"""What the payer does on the payment page: pay, decline or cancel a pending link."""

import secrets
import string
import uuid
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from sandbox import clock, links, webhooks
from sandbox.models import Invoice, Payment, PaymentStatus, PosTransaction, Webhook

OUTCOMES = {
    "pay": PaymentStatus.ACCEPTED,
    "decline": PaymentStatus.FAILED,
    "cancel": PaymentStatus.ABORTED,
}
PSP_ALPHABET = string.ascii_uppercase + string.digits


class NotPayable(Exception):
    pass


def settle(external_id: uuid.UUID | str, action: str, save_card: bool = False) -> PosTransaction:
    """Move a pending link to Accepted, Failed or Aborted; raise NotPayable otherwise.

    Paying records an Adyen-style payment, lowers the invoice's due sum, and then, after the
    commit, fires the installation's webhooks.
    """
    if action not in OUTCOMES:
        raise ValueError(f"Unknown action {action!r}")
    pt = PosTransaction.objects.filter(external_id=external_id).select_related("installation")
    found = pt.first()
    if found is None:
        raise NotPayable("This payment link is no longer valid.")
    links.refresh_due(found.installation)
    deliveries: list[int] = []
    with transaction.atomic():
        link = PosTransaction.objects.select_for_update().get(pk=found.pk)
        if link.payment_status != PaymentStatus.PENDING:
            raise NotPayable(PaymentStatus(link.payment_status).label)
        now = clock.now()
        link.payment_status = OUTCOMES[action]
        link.modified = now
        if action == "cancel":
            link.aborted = now
        if action == "pay":
            link.card_saved = link.tokenize == "yes" or (link.tokenize == "ask" and save_card)
            link.payment = _record_payment(link, now)
            deliveries = _announce(link)
        link.save()
    webhooks.deliver(deliveries)
    return link


def _record_payment(link: PosTransaction, now) -> Payment:
    invoice = None
    if link.invoice_id is not None:
        invoice = Invoice.objects.select_for_update().get(pk=link.invoice_id)
        invoice.due_sum = max(invoice.due_sum - link.amount, 0)
        if invoice.due_sum == 0 and invoice.date_paid is None:
            invoice.date_paid = timezone.localdate(now, ZoneInfo(link.installation.timezone))
        invoice.modified = now
        invoice.save(update_fields=["due_sum", "date_paid", "modified"])
    return Payment.objects.create(
        installation_id=link.installation_id,
        invoice=invoice,
        client=invoice.client if invoice else link.prepayment_client,
        amount=link.amount,
        psp_reference="".join(secrets.choice(PSP_ALPHABET) for _ in range(16)),
        created=now,
    )


def _announce(link: PosTransaction) -> list[int]:
    installation = link.installation
    if link.invoice_id is None:
        return webhooks.enqueue(
            installation,
            Webhook.Trigger.UNALLOCATED_PAYMENT,
            unallocated_payment_id=link.payment.pk,
        )
    return [
        *webhooks.enqueue(installation, Webhook.Trigger.INVOICE, invoice_id=link.invoice_id),
        *webhooks.enqueue(
            installation, Webhook.Trigger.INVOICE_PAYMENT, invoice_id=link.invoice_id
        ),
    ]
