"""Sending outgoing events: a signed POST per delivery, retried with backoff for a day.

The body is the event as JSON: `{"id", "type", "created", "data": {"link": {...}}}`. Headers:
`PayLinks-Event-Id`, `PayLinks-Timestamp` (Unix seconds) and `PayLinks-Signature: v1=<hex>`, an
HMAC-SHA256 with the endpoint's secret over `f"{timestamp}.{body}"`; for a day after a
rotation, a second `v1=` signed with the previous secret follows, comma-separated.

A request goes to the endpoint's URL only: no redirect is followed, no proxy used, and it gets
5 seconds. In production it must be https and every address its host resolves to public (no
private, loopback, link-local or reserved one), checked before each attempt. A 2xx answer
delivers it; anything else is tried again after 30 s, 1, 2, 4 ... minutes (at most 3 hours
apart) until a day has passed, and then the delivery has failed (admin lists it, and *Send
again* starts another day).

Each attempt is claimed by a conditional update of `attempts` before the request, so the
first attempt (queued when the event's transaction commits), the every-minute sweep of due
retries and admin's *Send again* never send one attempt twice; a worker that dies mid-attempt
leaves the claim to run out (CLAIM), and the sweep tries again. A delivery due to an endpoint
that has been switched off fails without being sent.

This is not Provet: these requests use httpx directly, not clinics/provet/.
"""

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django_q.tasks import async_task

from paylinks.models import EventDelivery, OutgoingEvent

logger = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds, for connecting, sending and the answer each
RETRY_FOR = dt.timedelta(days=1)
FIRST_RETRY = dt.timedelta(seconds=30)
LONGEST_WAIT = dt.timedelta(hours=3)
# How long an attempt holds its delivery: longer than a request can take. A delivery whose
# worker died (or whose queued first attempt was lost) is taken up by the sweep after it.
CLAIM = dt.timedelta(minutes=2)
DUE_PER_SWEEP = 500
# Plain http is accepted for these hosts only, and only while developing.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class UnsafeDestination(Exception):
    """PayLinks won't send events to this URL; the message says why, for the admin."""


def check_url(url: str) -> None:
    """Refuse a URL events must not go to. Raises UnsafeDestination.

    Production: https only, and every address the host resolves to must be public.
    Development: https anywhere, or http to localhost."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeDestination(_("Give a full address starting with https://."))
    if parts.scheme == "http" and (settings.PRODUCTION or host not in LOCAL_HOSTS):
        raise UnsafeDestination(
            _("Use https: events carry payment details.")
            if settings.PRODUCTION
            else _(
                "Use https: events carry payment details. Plain http is only for localhost in "
                "development."
            )
        )
    if settings.PRODUCTION:
        _check_addresses(host, parts.port or 443)


def _check_addresses(host: str, port: int) -> None:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeDestination(_("%(host)s could not be found (DNS).") % {"host": host}) from None
    for *_rest, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            address = mapped
        if not address.is_global or address.is_multicast:
            raise UnsafeDestination(
                _(
                    "%(host)s is at %(address)s, a private, loopback, link-local or reserved "
                    "address: events go only to public addresses."
                )
                % {"host": host, "address": address}
            )


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def body_of(event: OutgoingEvent) -> bytes:
    """The same bytes on every attempt: receivers drop a repeated `id`."""
    document = {
        "id": str(event.id),
        "type": event.type,
        "created": event.created_at.isoformat(),
        "data": event.data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def first_claim(now: dt.datetime) -> dt.datetime:
    """A new delivery's first attempt is queued on commit; the sweep waits for it this long."""
    return now + CLAIM


def queue_attempt(delivery_id: int, attempts: int) -> None:
    """Have a worker make attempt number `attempts + 1` of the delivery."""
    async_task("paylinks.tasks.send_event", delivery_id, attempts, group="events")


def send_due(now: dt.datetime | None = None) -> int:
    """Queue an attempt for each delivery whose retry is due (every minute); answer how many."""
    now = now or timezone.now()
    due = EventDelivery.objects.filter(
        status=EventDelivery.Status.PENDING, next_attempt_at__lte=now
    ).order_by("next_attempt_at")
    queued = 0
    for pk, attempts, next_at in due.values_list("pk", "attempts", "next_attempt_at")[
        :DUE_PER_SWEEP
    ]:
        # Queued once, however many sweeps run before a worker takes it.
        claimed = EventDelivery.objects.filter(
            pk=pk, status=EventDelivery.Status.PENDING, attempts=attempts, next_attempt_at=next_at
        ).update(next_attempt_at=now + CLAIM)
        if claimed:
            queue_attempt(pk, attempts)
            queued += 1
    return queued


def send_again(delivery: EventDelivery) -> None:
    """Admin's *Send again*: attempt it now, and retry it for another day."""
    now = timezone.now()
    with transaction.atomic():
        locked = EventDelivery.objects.select_for_update().get(pk=delivery.pk)
        locked.status = EventDelivery.Status.PENDING
        locked.retry_until = now + RETRY_FOR
        locked.next_attempt_at = first_claim(now)
        locked.save(update_fields=["status", "retry_until", "next_attempt_at"])
        attempts = locked.attempts
        transaction.on_commit(lambda: queue_attempt(locked.pk, attempts), robust=True)


def attempt(delivery_id: int, attempts: int, now: dt.datetime | None = None) -> str:
    """Make attempt number `attempts + 1` of a delivery, unless it has been made already."""
    now = now or timezone.now()
    claimed = EventDelivery.objects.filter(
        pk=delivery_id, status=EventDelivery.Status.PENDING, attempts=attempts
    ).update(attempts=attempts + 1, last_attempt_at=now, next_attempt_at=now + CLAIM)
    if not claimed:
        return "made already"
    delivery = EventDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    if not delivery.endpoint.is_active:
        delivery.status = EventDelivery.Status.FAILED
        delivery.next_attempt_at = None
        delivery.last_error = gettext_noop("Not sent: the endpoint is switched off")
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
        return "endpoint switched off"
    status_code, error = _post(delivery, now)
    _record(delivery, now, status_code, error)
    outcome = f"{delivery.status} after attempt {delivery.attempts}"
    logger.info(
        "event %s %s to endpoint %s at %s: %s",
        delivery.event.type,
        delivery.event_id,
        delivery.endpoint_id,
        urlsplit(delivery.endpoint.url).hostname,
        status_code or error,
    )
    return outcome


def _post(delivery: EventDelivery, now: dt.datetime) -> tuple[int | None, str]:
    endpoint = delivery.endpoint
    try:
        with translation.override("en"):  # the refusal is stored (`last_error`): in English
            check_url(endpoint.url)
    except UnsafeDestination as refusal:
        return None, f"Not sent: {refusal}"
    body = body_of(delivery.event)
    timestamp = int(now.timestamp())
    signatures = ", ".join(
        f"v1={signature(secret, timestamp, body)}" for secret in endpoint.signing_secrets(now)
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"PayLinks/{settings.VERSION}",
        "PayLinks-Event-Id": str(delivery.event_id),
        "PayLinks-Timestamp": str(timestamp),
        "PayLinks-Signature": signatures,
    }
    try:
        # No proxy from the environment: the address checked is the one connected to.
        with (
            httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", endpoint.url, content=body, headers=headers) as answer,
        ):
            return answer.status_code, ""  # the answer's body is never read
    except httpx.TimeoutException:
        return None, f"No answer within {TIMEOUT:.0f} seconds"
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:300]


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt."""
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 20), LONGEST_WAIT)


def _record(delivery: EventDelivery, now: dt.datetime, status_code: int | None, error: str) -> None:
    delivery.last_status_code = status_code
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = EventDelivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        delivery.last_error = ""
    else:
        if status_code is not None:
            error = f"Answered {status_code}" + (
                ": redirects are not followed" if 300 <= status_code < 400 else ""
            )
        delivery.last_error = error[:300]
        wait = backoff(delivery.attempts)
        if now + wait > delivery.retry_until:
            delivery.status = EventDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + wait
    delivery.save(
        update_fields=[
            "status",
            "delivered_at",
            "next_attempt_at",
            "last_status_code",
            "last_error",
        ]
    )
