"""A clinic's own system, as far as PayLinks' outgoing events go: `/sandbox/_receiver/<name>/`.

POST: keeps the request (headers, body), checks its signature when the receiver knows the
endpoint's secret, and answers `answer_status` (200 unless told otherwise). GET: the page of
what it received, newest first. `_control/` (JSON, for the demo and tests): GET what it received,
POST `{"secret": ..., "status": ...}` to set it up, DELETE to forget what it received.

It checks signatures with its own few lines, as a receiver would (README, "Outgoing events"):
the sandbox imports nothing of PayLinks.
"""

import hashlib
import hmac
import json
from collections.abc import Mapping

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sandbox import clock
from sandbox.models import EventReceiver, ReceivedEvent

KEPT_HEADERS = ("Content-Type", "User-Agent")
SIGNATURE_PREFIX = "v1="


def receiver(name: str) -> EventReceiver:
    found, _ = EventReceiver.objects.get_or_create(name=name, defaults={"created": clock.now()})
    return found


def _existing(name: str) -> EventReceiver:
    """For reading: a receiver nobody has posted to or set up yet is shown empty, not made."""
    return EventReceiver.objects.filter(name=name).first() or EventReceiver(name=name)


def configure(name: str, *, secret: str | None = None, status: int | None = None) -> EventReceiver:
    """Tell the receiver the endpoint's secret, and/or what to answer."""
    target = receiver(name)
    if secret is not None:
        target.secret = secret
    if status is not None:
        if not 100 <= int(status) <= 599:
            raise ValueError("status must be an HTTP status code")
        target.answer_status = int(status)
    target.save()
    return target


def signature_is_valid(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Any `v1=` in the header is the HMAC-SHA256 of `{timestamp}.{body}` with the secret."""
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    given = [part.strip() for part in header.split(",")]
    return any(
        hmac.compare_digest(expected.hexdigest(), part.removeprefix(SIGNATURE_PREFIX))
        for part in given
        if part.startswith(SIGNATURE_PREFIX)
    )


def receive(name: str, headers: Mapping[str, str], body: bytes) -> ReceivedEvent:
    """`headers` as Django's request.headers: their names in any case."""
    target = receiver(name)
    valid = None
    if target.secret:
        valid = signature_is_valid(
            target.secret,
            headers.get("PayLinks-Timestamp", ""),
            body,
            headers.get("PayLinks-Signature", ""),
        )
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        document = {}
    kept = {
        key: value
        for key, value in headers.items()
        if key in KEPT_HEADERS or key.lower().startswith("paylinks-")
    }
    return ReceivedEvent.objects.create(
        receiver=target,
        received_at=clock.now(),
        headers=kept,
        body=body.decode(errors="replace"),
        event_id=str(document.get("id", ""))[:64],
        event_type=str(document.get("type", ""))[:40],
        signature_valid=valid,
        answered=target.answer_status,
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def inbox(request: HttpRequest, name: str) -> HttpResponse:
    if request.method == "POST":
        received = receive(name, request.headers, request.body)
        return JsonResponse({"received": received.event_id}, status=received.answered)
    target = _existing(name)
    received = target.received.all()[:200] if target.pk else []
    rows = [(event, _pretty(event.body)) for event in received]
    return render(request, "sandbox/receiver.html", {"receiver": target, "rows": rows})


@csrf_exempt
@require_http_methods(["GET", "POST", "DELETE"])
def control_view(request: HttpRequest, name: str) -> HttpResponse:
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("Expected a JSON object.")
            configure(name, secret=body.get("secret"), status=body.get("status"))
        except (ValueError, TypeError) as exc:
            return JsonResponse({"detail": str(exc)}, status=400)
    if request.method == "DELETE":
        ReceivedEvent.objects.filter(receiver__name=name).delete()
        return HttpResponse(status=204)
    target = _existing(name)
    received = target.received.all()[:200] if target.pk else []
    return JsonResponse(
        {
            "name": target.name,
            "has_secret": bool(target.secret),
            "answer_status": target.answer_status,
            "received": [_json(event) for event in received],
        }
    )


def _json(event: ReceivedEvent) -> dict:
    return {
        "received_at": event.received_at.isoformat(),
        "event_id": event.event_id,
        "event_type": event.event_type,
        "signature_valid": event.signature_valid,
        "answered": event.answered,
        "headers": event.headers,
        "body": event.body,
    }


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body
