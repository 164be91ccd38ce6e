"""Where an API caller is scoped to their practices: the pages' scoping (paylinks/access.py).

Anything outside the caller's practices is a 404, never a 403 that would tell it exists.
"""

import uuid
from typing import cast

from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from rest_framework.request import Request

from clinics.models import Practice
from paylinks.access import current_practice, links_for, practices_for
from paylinks.api.serializers import LINK_RELATED, with_link_extras
from paylinks.models import PaymentLink


def practice_for(request: Request, code: object = None) -> Practice:
    """The practice asked for (`practice`, a code), if it is the caller's; else the one they
    work in: an API key's own practice, or the one a person chose on the pages."""
    code = code or request.query_params.get("practice")
    if not code:
        return current_practice(cast(HttpRequest, request))
    try:
        code = uuid.UUID(str(code))
    except ValueError:
        raise Http404(_("No such practice.")) from None
    practice = practices_for(request.user).filter(code=code).first()
    if practice is None:
        raise Http404(_("No such practice."))
    return practice


def link_for(request: Request, code: str) -> PaymentLink:
    """One of the caller's links, by its code."""
    try:
        uuid.UUID(code)
    except ValueError:
        raise Http404(_("No such link.")) from None
    link = with_link_extras(links_for(request.user).select_related(*LINK_RELATED)).filter(code=code)
    found = link.first()
    if found is None:
        raise Http404(_("No such link."))
    return found


def reload(link: PaymentLink) -> PaymentLink:
    """The link as it is now, with what the API shows of it."""
    links = PaymentLink.objects.with_replaced().select_related(*LINK_RELATED)
    return with_link_extras(links).get(pk=link.pk)


def provet_number(value: str) -> int:
    """A Provet id from the address; anything else is nothing there."""
    if not value.isascii() or not value.isdecimal() or not 0 < int(value) < 2**31:
        raise Http404(_("No such object."))
    return int(value)
