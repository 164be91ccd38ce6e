"""Provet's webhooks (DESIGN.md, step 4): a hint that an invoice or a prepayment was paid.

Provet's webhooks are not signed, so the secret in the URL says which practice it is, and the
body is never trusted: it only makes the named invoice's links due now, and the poller reads
the truth through the API, at once, in a task.
"""

import datetime as dt
import json

from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django_q.tasks import async_task

from clinics.models import Practice
from paylinks.invoices import refresh_due_sums
from paylinks.models import Invoice, PaymentLink, WebhookDelivery
from paylinks.polling import PollReport, check_recently_closed, check_webhook_links

# Deliveries about one invoice within this long cause one check (check_after).
COALESCE = dt.timedelta(seconds=5)
# A webhook names an id or two; a body larger than this is not one, and is not read.
MAX_BODY_BYTES = 64 * 1024
# Provet's bodies are flat objects; deeper nesting is refused before it is parsed.
MAX_DEPTH = 8
# Provet's ids are positive and are kept in PositiveIntegerFields, which hold this much on every
# database PayLinks runs on.
MAX_ID = 2**31 - 1
ID_KEYS = ("invoice_id", "unallocated_payment_id")


class MalformedWebhook(ValueError):
    """A body PayLinks can't read; the message says why, and is Provet's answer."""

    status = 400


class WebhookTooLarge(MalformedWebhook):
    status = 413


def parse_body(request: HttpRequest) -> dict[str, int]:
    """The ids in a form-encoded or JSON body: invoice_id and/or unallocated_payment_id."""
    if _content_length(request) > MAX_BODY_BYTES:
        raise WebhookTooLarge(f"The body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    data: object
    if "json" in (request.content_type or ""):
        if _depth(request.body) > MAX_DEPTH:
            raise MalformedWebhook(f"The JSON body is nested deeper than {MAX_DEPTH} levels.")
        try:
            data = json.loads(request.body, parse_constant=_not_json)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read
            raise MalformedWebhook("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise MalformedWebhook("The JSON body is not an object.")
    else:
        try:
            data = request.POST.dict()
        except (MultiPartParserError, SuspiciousOperation):  # e.g. too many fields
            raise MalformedWebhook("The form body can't be read.") from None
    ids = {key: _provet_id(key, data[key]) for key in ID_KEYS if data.get(key) not in (None, "")}
    if not ids:
        raise MalformedWebhook("The body names no invoice_id or unallocated_payment_id.")
    return ids


def _provet_id(key: str, value: object) -> int:
    """A JSON integer or a string of ASCII digits, 1 to MAX_ID; never a float, a boolean, NaN."""
    number = None
    if type(value) is int:
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) <= 10:
        number = int(value)
    if number is None or not 1 <= number <= MAX_ID:
        raise MalformedWebhook(f"{key} must be a whole number from 1 to {MAX_ID}.")
    return number


def _depth(body: bytes) -> int:
    """How deep the body's arrays and objects nest (brackets inside strings don't count); the
    scan stops as soon as it is past MAX_DEPTH."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _content_length(request: HttpRequest) -> int:
    """The length the sender announced; Django reads no more of the body than that."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _text(raw: str) -> str:
    """Text any database stores: PostgreSQL refuses NUL characters."""
    return raw.replace("\x00", "\ufffd")


def _kept_body(request: HttpRequest) -> str:
    """The body as the delivery keeps it: its start, as text; nothing of a body too large to read.

    Read before request.POST is, which would leave the body unreadable."""
    if _content_length(request) > MAX_BODY_BYTES:
        return ""
    return _text(request.body.decode("utf-8", errors="replace"))[:10_000]


def receive(practice: Practice, request: HttpRequest) -> WebhookDelivery:
    """Store the delivery and make the links it concerns due now. Raises MalformedWebhook.

    A body that can't be read is stored too, with the reason."""
    delivery = WebhookDelivery(
        practice=practice,
        content_type=_text(request.content_type or "")[:100],
        body=_kept_body(request),
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
    if (delivery.links_made_due or known_invoice) and _first_in_window(delivery):
        # A worker reads the truth from Provet; the answer to Provet doesn't wait for it.
        async_task("paylinks.tasks.after_webhook", delivery.pk, group="webhook")
    return delivery


def _first_in_window(delivery: WebhookDelivery) -> bool:
    """Whether this delivery is the first for its invoice (or for the practice's unallocated
    payments) within COALESCE: only that one is followed up.

    Provet sends more than one trigger for a payment and retries what it thinks failed, and
    anyone who has the URL can repeat it: one read of Provet answers them all. A delivery
    coalesced away has still made its links due, so the poller's next pass reads them."""
    subject = delivery.invoice_provet_id or "unallocated"
    key = f"paylinks:webhook:{delivery.practice_id}:{subject}"
    return cache.add(key, delivery.pk, COALESCE.total_seconds())


def check_after(delivery: WebhookDelivery) -> PollReport:
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
    report = check_webhook_links(practice, links.values_list("pk", flat=True))
    dropped = refresh_due_sums(practice, set(invoices.values_list("pk", flat=True)))
    if dropped:
        late = check_recently_closed(practice, dropped)
        report.checked += late.checked
        report.changed += late.changed
    return report
