"""Provet's webhooks: ids only, form-encoded or JSON, retried until a 200 (ten attempts at most).

Delivery is synchronous (no worker in the sandbox): right after the change commits, and lazily
for due retries whenever the sandbox serves an API request.
"""

import json
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

from sandbox import clock
from sandbox.models import Installation, Webhook, WebhookAttempt, WebhookDelivery

TIMEOUT = 3  # seconds
FIRST_RETRY = 10  # seconds; doubled after every failed attempt


def enqueue(installation: Installation, trigger: int, **ids: int) -> list[int]:
    """Record one delivery per webhook listening to `trigger`; answer their ids."""
    now = clock.now()
    created = []
    for hook in installation.webhooks.filter(trigger=trigger).order_by("id"):
        fields = {**ids, "timestamp": now.isoformat()}
        if hook.content_type == Webhook.ContentType.JSON:
            body, content_type = json.dumps(fields), "application/json"
        else:
            body, content_type = urlencode(fields), "application/x-www-form-urlencoded"
        delivery = WebhookDelivery.objects.create(
            webhook=hook, body=body, content_type=content_type, next_attempt_at=now, created=now
        )
        created.append(delivery.pk)
    return created


def deliver(delivery_ids: list[int]) -> None:
    for delivery in WebhookDelivery.objects.filter(
        pk__in=delivery_ids, status=WebhookDelivery.Status.PENDING
    ).select_related("webhook"):
        attempt(delivery)


def deliver_due(installation: Installation | None = None, everything: bool = False) -> int:
    """Attempt pending deliveries whose retry time has come (all pending with `everything`)."""
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
    if installation is not None:
        pending = pending.filter(webhook__installation=installation)
    if not everything:
        pending = pending.filter(next_attempt_at__lte=clock.now())
    deliveries = list(pending.select_related("webhook").order_by("id"))
    for delivery in deliveries:
        attempt(delivery)
    return len(deliveries)


def attempt(delivery: WebhookDelivery) -> bool:
    # Claim the attempt first, so two requests serving retries at once don't both send it,
    # and push its retry time on: the receiver may call the sandbox back while this attempt
    # is still in flight (PayLinks reads the link after a webhook), and that request must not
    # send the same delivery again.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
    ).update(
        attempts=delivery.attempts + 1,
        next_attempt_at=clock.now() + timedelta(seconds=TIMEOUT + FIRST_RETRY),
    )
    if not claimed:
        return False
    delivery.attempts += 1
    request = urllib.request.Request(  # noqa: S310 (add_webhook allows only http and https)
        delivery.webhook.url,
        data=delivery.body.encode(),
        headers={"Content-Type": delivery.content_type, "User-Agent": "Provet-Cloud-Sandbox"},
        method="POST",
    )
    status_code, error = None, ""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            status_code = answer.status
    except urllib.error.HTTPError as exc:
        status_code = exc.code
        exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(exc)[:500]
    now = clock.now()
    WebhookAttempt.objects.create(delivery=delivery, at=now, status_code=status_code, error=error)
    if status_code == 200:
        delivery.status = WebhookDelivery.Status.DELIVERED
    elif delivery.attempts >= WebhookDelivery.MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    else:
        delay = FIRST_RETRY * 2 ** (delivery.attempts - 1)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    delivery.save(update_fields=["status", "next_attempt_at"])
    return delivery.status == WebhookDelivery.Status.DELIVERED
