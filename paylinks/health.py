"""`GET /healthz`: is PayLinks alive enough to keep statuses fresh? For a load balancer or a
monitor: no login, no secrets, no names; 200 when healthy, 503 when not."""

import datetime as dt

from django.db import connection
from django.db.models import Min, Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker

from clinics.models import Practice

# The poll schedule runs every minute; a practice not passed over for this long has a poller
# that is stuck or not running at all.
STALE_AFTER = dt.timedelta(minutes=3)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "broker": _broker()}
    polling = _polling() if checks["database"] == "ok" else {}
    healthy = all(value == "ok" for value in checks.values()) and not polling.get("stale")
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", **checks, "polling": polling},
        status=200 if healthy else 503,
    )


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"


def _broker() -> str:
    try:
        broker = get_broker()
        broker.ping()
        broker.queue_size()
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"


def _polling() -> dict:
    """How many active practices the poller has passed over lately, and how many it hasn't."""
    now = timezone.now()
    active = Practice.objects.filter(is_active=True)
    stale = active.filter(Q(polled_at__isnull=True) | Q(polled_at__lt=now - STALE_AFTER))
    oldest = active.aggregate(oldest=Min("polled_at"))["oldest"]
    return {
        "practices": active.count(),
        "stale": stale.count(),
        "oldest_pass_seconds": round((now - oldest).total_seconds()) if oldest else None,
        "queued_tasks": get_broker().queue_size(),
    }
