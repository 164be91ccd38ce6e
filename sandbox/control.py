"""Operations on the sandbox for tests and demos, also served as JSON under `_control/`."""

from sandbox import clock, payer, ratelimit, webhooks
from sandbox.models import (
    Fault,
    Installation,
    PosTransaction,
    ProvetUser,
    Webhook,
    WebhookDelivery,
)

FAULT_KINDS = tuple(Fault.Kind.values)


def installation(provet_id: int) -> Installation:
    return Installation.objects.get(provet_id=provet_id)


def add_fault(
    provet_id: int,
    kind: str,
    path: str = "",
    method: str = "",
    count: int | None = 1,
    latency_ms: int = 1000,
    retry_after: int = 30,
    seconds: float = 30,
) -> Fault:
    """Make the next `count` matching requests (every one with count=None) misbehave.

    `path` is a regular expression searched in the request path; `method` is optional.
    """
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    return Fault.objects.create(
        installation=installation(provet_id),
        kind=kind,
        path=path,
        method=(method or "").upper(),
        remaining=count,
        latency_ms=latency_ms,
        retry_after=retry_after,
        seconds=seconds,
    )


def clear_faults(provet_id: int) -> None:
    Fault.objects.filter(installation__provet_id=provet_id).delete()


def settle_link(external_id, action: str, save_card: bool = False) -> PosTransaction:
    """Pay, decline or cancel a link as its payer would (action: pay, decline, cancel)."""
    return payer.settle(external_id, action, save_card=save_card)


def add_webhook(provet_id: int, url: str, trigger: int, content_type: int = 1) -> Webhook:
    if not url.startswith(("http://", "https://")):
        raise ValueError("A webhook URL starts with http:// or https://")
    return Webhook.objects.create(
        installation=installation(provet_id),
        url=url,
        trigger=Webhook.Trigger(trigger),
        content_type=Webhook.ContentType(content_type),
    )


def clear_webhooks(provet_id: int) -> None:
    Webhook.objects.filter(installation__provet_id=provet_id).delete()


def retry_webhooks(provet_id: int | None = None) -> int:
    """Attempt every pending delivery now, whatever its backoff says; answer how many."""
    target = installation(provet_id) if provet_id is not None else None
    return webhooks.deliver_due(target, everything=True)


def deliveries(provet_id: int) -> list[dict]:
    rows = WebhookDelivery.objects.filter(webhook__installation__provet_id=provet_id)
    return [
        {
            "id": d.pk,
            "webhook_id": d.webhook_id,
            "url": d.webhook.url,
            "trigger": d.webhook.trigger,
            "body": d.body,
            "content_type": d.content_type,
            "status": d.status,
            "attempts": [
                {"at": a.at.isoformat(), "status_code": a.status_code, "error": a.error}
                for a in d.attempt_log.order_by("id")
            ],
            "next_attempt_at": d.next_attempt_at.isoformat(),
        }
        for d in rows.select_related("webhook").prefetch_related("attempt_log").order_by("id")
    ]


def set_invoice_permission(provet_id: int, allowed: bool) -> None:
    """Grant or take away the integration user's "Financial: Invoices" permission."""
    installation(provet_id).users.filter(is_integration=True).update(can_manage_invoices=allowed)


def set_rate_limits(provet_id: int, limits: dict[str, int]) -> dict[str, int]:
    """Override per-minute limits, e.g. {"GET /department/": 5}; answer all overrides."""
    target = installation(provet_id)
    target.rate_limits = {**target.rate_limits, **{k: int(v) for k, v in limits.items()}}
    target.save(update_fields=["rate_limits"])
    return target.rate_limits


def clear_rate_limits(provet_id: int) -> None:
    Installation.objects.filter(provet_id=provet_id).update(rate_limits={})
    ratelimit.reset(provet_id)


def reset(provet_id: int | None = None) -> None:
    """Back to a calm sandbox: no faults, webhooks, rate-limit history or overrides; real time.

    With a provet_id only that installation's state is cleared (the clock is shared by all).
    """
    scope = Installation.objects.all()
    if provet_id is not None:
        scope = scope.filter(provet_id=provet_id)
    Fault.objects.filter(installation__in=scope).delete()
    Webhook.objects.filter(installation__in=scope).delete()
    scope.update(rate_limits={})
    ProvetUser.objects.filter(installation__in=scope, is_integration=True).update(
        can_manage_invoices=True
    )
    ratelimit.reset(provet_id)
    clock.reset()
