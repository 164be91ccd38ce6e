"""Where a form goes back to after it is sent: the page named in its `next` field."""

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def page_to_go_back_to(request: HttpRequest) -> str | None:
    """The `next` of a POST, if it is a path on this site; None for anything else, so a
    crafted form can't send a person to another site."""
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None
