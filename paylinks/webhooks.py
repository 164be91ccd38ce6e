"""Provet's webhooks (DESIGN.md, step 4): a hint that an invoice or a prepayment was paid.

Provet's webhooks are not signed, so the secret in the URL says which practice it is, and the
body is never trusted: it only makes the named invoice's links due now, and the poller reads
the truth through the API, at once, in a task.
"""

import json

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_q.tasks import async_task

from clinics.models import Practice
from paylinks.invoices import refresh_due_sums
from paylinks.models import Invoice, PaymentLink, WebhookDelivery
from paylinks.polling import PollReport, check_links


class MalformedWebhook(ValueError):
    pass


def parse_body(request: HttpRequest) -> dict[str, int]:
    """The ids in a form-encoded or JSON body: invoice_id and/or unallocated_payment_id."""
    if "json" in (request.content_type or ""):
        try:
            data = json.loads(request.body)
        except ValueError:
            raise MalformedWebhook("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise MalformedWebhook("The JSON body is not an object.")
    else:
        data = request.POST.dict()
    ids = {}
    for key in ("invoice_id", "unallocated_payment_id"):
        if data.get(key) in (None, ""):
            continue
        try:
            ids[key] = int(data[key])
        except (TypeError, ValueError):
            raise MalformedWebhook(f"{key} is not a number.") from None
    if not ids:
        raise MalformedWebhook("The body names no invoice_id or unallocated_payment_id.")
    return ids


def receive(practice: Practice, request: HttpRequest) -> WebhookDelivery:
    """Store the delivery and make the links it concerns due now. Raises MalformedWebhook."""
    delivery = WebhookDelivery(
        practice=practice,
        content_type=(request.content_type or "")[:100],
        body=request.body.decode("utf-8", errors="replace")[:10_000],
    )
    try:
        ids = parse_body(request)
    except MalformedWebhook as error:
        delivery.error = str(error)
        delivery.save()
        raise
    delivery.invoice_provet_id = ids.get("invoice_id")
    delivery.unallocated_payment_id = ids.get("unallocated_payment_id")
    delivery.trigger = "invoice" if delivery.invoice_provet_id else "unallocated payment"
    links = PaymentLink.objects.filter(practice=practice, state=PaymentLink.State.ACTIVE)
    if delivery.invoice_provet_id:
        links = links.filter(invoice__provet_id=delivery.invoice_provet_id)
    else:
        # An unallocated payment doesn't say which prepayment: look at all the open ones.
        links = links.filter(prepayment__isnull=False)
    with transaction.atomic():
        delivery.links_made_due = links.update(next_check_at=timezone.now())
        delivery.save()
    known_invoice = (
        delivery.invoice_provet_id is not None
        and Invoice.objects.filter(practice=practice, provet_id=delivery.invoice_provet_id).exists()
    )
    if delivery.links_made_due or known_invoice:
        # A worker reads the truth from Provet; the answer to Provet doesn't wait for it.
        async_task("paylinks.tasks.after_webhook", delivery.pk, group="webhook")
    return delivery


def follow_up(delivery: WebhookDelivery) -> PollReport:
    """In a worker: read the invoice's due sum again and check the links the delivery made due.

    Raises ProvetError when the invoice can't be read (the links are still checked by the poller).
    """
    practice = delivery.practice
    links = PaymentLink.objects.filter(practice=practice, state=PaymentLink.State.ACTIVE)
    invoices = Invoice.objects.none()
    if delivery.invoice_provet_id:
        invoices = Invoice.objects.filter(practice=practice, provet_id=delivery.invoice_provet_id)
        links = links.filter(invoice__in=invoices)
    else:
        links = links.filter(prepayment__isnull=False)
    report = check_links(practice, links.values_list("pk", flat=True))
    refresh_due_sums(practice, set(invoices.values_list("pk", flat=True)))
    return report
