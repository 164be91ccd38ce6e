"""`/<provet_id>/_control/`: the control operations as a small JSON API (no auth, no CSRF)."""

import json
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import clock, control, links, payer, ratelimit, responses
from sandbox.models import Fault, Installation, Webhook


def control_endpoint(*methods: str) -> Callable:
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, provet_id: int, **kwargs) -> HttpResponse:
            if not Installation.objects.filter(provet_id=provet_id).exists():
                return responses.not_found()
            if request.method not in methods:
                return responses.method_not_allowed(request.method or "", set(methods))
            try:
                body = json.loads(request.body or b"{}") if request.method == "POST" else {}
            except ValueError as exc:
                return responses.detail(400, f"JSON parse error - {exc}")
            if not isinstance(body, dict):
                return responses.detail(400, "Expected a JSON object.")
            try:
                return view(request, provet_id, body, **kwargs)
            except (ValueError, TypeError, KeyError) as exc:
                return responses.detail(400, str(exc))

        return wrapper

    return decorate


def _fault_json(fault: Fault) -> dict:
    return {
        "id": fault.pk,
        "path": fault.path,
        "method": fault.method or None,
        "kind": fault.kind,
        "count": fault.remaining,
        "latency_ms": fault.latency_ms,
        "retry_after": fault.retry_after,
        "seconds": fault.seconds,
    }


@control_endpoint("GET")
def overview(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    names = [
        "faults",
        "clock",
        "reset",
        "links/<external_id>/<pay|decline|cancel>",
        "webhooks",
        "webhooks/retry",
        "webhooks/deliveries",
        "permissions",
        "rate-limits",
        "rate-limits/counts",
        "outbox",
    ]
    base = request.build_absolute_uri(request.path)
    return JsonResponse({"endpoints": [f"{base}{name}/" for name in names]})


@control_endpoint("GET", "POST", "DELETE")
def faults_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    if request.method == "POST":
        fault = control.add_fault(
            provet_id,
            kind=str(body["kind"]),
            path=str(body.get("path", "")),
            method=str(body.get("method") or ""),
            count=body.get("count", 1),
            latency_ms=int(body.get("latency_ms", 1000)),
            retry_after=int(body.get("retry_after", 30)),
            seconds=float(body.get("seconds", 30)),
        )
        return JsonResponse(_fault_json(fault), status=201)
    if request.method == "DELETE":
        control.clear_faults(provet_id)
        return HttpResponse(status=204)
    faults = Fault.objects.filter(installation__provet_id=provet_id).order_by("id")
    return JsonResponse({"results": [_fault_json(f) for f in faults]})


@control_endpoint("GET", "POST")
def clock_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    if request.method == "POST":
        clock.advance(float(body["advance_seconds"]))
    return JsonResponse({"now": clock.now().isoformat(), "offset_seconds": clock.offset()})


@control_endpoint("POST")
def reset_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    control.reset(provet_id)
    return JsonResponse({"reset": True})


@control_endpoint("POST")
def link_view(
    request: HttpRequest, provet_id: int, body: dict, external_id, action: str
) -> HttpResponse:
    if action not in payer.OUTCOMES:
        return responses.not_found()
    try:
        link = control.settle_link(external_id, action, save_card=bool(body.get("save_card")))
    except payer.NotPayable as exc:
        return responses.field_errors({"non_field_errors": [f"Not pending: {exc}"]})
    return JsonResponse(
        {"external_id": str(link.external_id), "payment_status": link.payment_status}
    )


@control_endpoint("GET", "POST", "DELETE")
def webhooks_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    if request.method == "POST":
        hook = control.add_webhook(
            provet_id, str(body["url"]), int(body["trigger"]), int(body.get("content_type", 1))
        )
        return JsonResponse(_webhook_json(hook), status=201)
    if request.method == "DELETE":
        control.clear_webhooks(provet_id)
        return HttpResponse(status=204)
    hooks = Webhook.objects.filter(installation__provet_id=provet_id).order_by("id")
    return JsonResponse({"results": [_webhook_json(h) for h in hooks]})


def _webhook_json(hook: Webhook) -> dict:
    return {
        "id": hook.pk,
        "url": hook.url,
        "trigger": hook.trigger,
        "content_type": hook.content_type,
    }


@control_endpoint("POST")
def webhooks_retry_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    return JsonResponse({"attempted": control.retry_webhooks(provet_id)})


@control_endpoint("GET")
def deliveries_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    return JsonResponse({"results": control.deliveries(provet_id)})


@control_endpoint("GET", "POST")
def permissions_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    if request.method == "POST":
        control.set_invoice_permission(provet_id, bool(body["financial_invoices"]))
    user = control.installation(provet_id).integration_user
    return JsonResponse({"financial_invoices": bool(user and user.can_manage_invoices)})


@control_endpoint("GET", "POST", "DELETE")
def rate_limits_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    if request.method == "POST":
        return JsonResponse({"overrides": control.set_rate_limits(provet_id, body)})
    if request.method == "DELETE":
        control.clear_rate_limits(provet_id)
        return HttpResponse(status=204)
    return JsonResponse({"overrides": control.installation(provet_id).rate_limits})


@control_endpoint("GET")
def rate_limit_counts_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    """Requests let through and refused with 429 since the last reset, per endpoint."""
    return JsonResponse(ratelimit.counts(provet_id))


@control_endpoint("GET")
def outbox_view(request: HttpRequest, provet_id: int, body: dict) -> HttpResponse:
    installation = control.installation(provet_id)
    links.refresh_due(installation)
    messages = installation.outbox.select_related("postransaction").order_by("-created", "-id")
    return JsonResponse(
        {
            "results": [
                {
                    "id": m.pk,
                    "channel": m.channel,
                    "recipient": m.recipient,
                    "subject": m.subject,
                    "text": m.text,
                    "status": m.status,
                    "created": m.created.isoformat(),
                    "postransaction_id": m.postransaction_id,
                }
                for m in messages[:200]
            ]
        }
    )
