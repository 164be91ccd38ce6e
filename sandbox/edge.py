"""What happens to every request to an installation before and after its view runs:
faults, authentication, rate limits, due webhook retries, and the "drop" fault's cut."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import auth, clock, faults, paging, ratelimit, responses, webhooks
from sandbox.models import Fault, Installation
from sandbox.resources import RESOURCES


def provet_endpoint(*, authenticated: bool = True) -> Callable:
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, provet_id: int, **kwargs) -> HttpResponse:
            installation = Installation.objects.filter(provet_id=provet_id).first()
            if installation is None:
                return responses.not_found()
            fault = faults.take(installation, request)
            if fault is not None:
                early = faults.before(fault)
                if early is not None:
                    return early
            if authenticated:
                try:
                    auth.authenticate(request, installation)
                except auth.NotAuthenticated as exc:
                    return responses.detail(401, exc.detail, WWW_Authenticate='Bearer realm="api"')
                throttled = _throttle(request, installation, kwargs)
                if throttled is not None:
                    return throttled
            response = view(request, installation, **kwargs)
            if authenticated:
                webhooks.deliver_due(installation)
            if fault is not None and fault.kind == Fault.Kind.DROP:
                return faults.drop(request, response)
            return response

        return wrapper

    return decorate


def _throttle(
    request: HttpRequest, installation: Installation, kwargs: dict
) -> HttpResponse | None:
    resource = kwargs.get("resource", "")
    if resource not in RESOURCES:
        return None
    item = "pk" in kwargs
    key = ratelimit.endpoint(request.method or "GET", resource, item)
    cost = paging.cost(request) if request.method == "GET" and not item else 1
    limit = ratelimit.limit_for(key, installation.rate_limits)
    wait = ratelimit.hit(installation.provet_id, key, limit, cost, clock.now().timestamp())
    if wait is None:
        return None
    return responses.detail(
        429, f"Request was throttled. Expected available in {wait} seconds.", Retry_After=str(wait)
    )
