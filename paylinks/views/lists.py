"""The lists: today's and open links first, filters and search, and the follow-up queue."""

import uuid

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clinics.models import Practice
from paylinks.access import current_practice, links_for, practices_for
from paylinks.forms import new_form_token
from paylinks.link_filters import LinkFilterForm
from paylinks.models import PaymentLink, PaymentLinkQuerySet

PAGE_SIZE = 25


@login_required
def link_list(request: HttpRequest) -> HttpResponse:
    # The dashboard's figures name their practice, which need not be the one worked in.
    named = _named_practice(request)
    practice = named or current_practice(request)
    form = LinkFilterForm(request.GET or None, practice=practice)
    links = form.apply(_practice_links(request, practice))
    # Open links first, then the newest.
    links = links.annotate(
        open_first=Case(
            When(PaymentLink.open_q(), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    ).order_by("open_first", "-created_at")
    page = Paginator(links, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "paylinks/links.html",
        {
            "practice": practice,
            "named_practice": named,
            "form": form,
            "page": page,
            "query": query.urlencode(),
        },
    )


def _named_practice(request: HttpRequest) -> Practice | None:
    """The practice in `?practice=<code>`, if it is one of this person's."""
    try:
        code = uuid.UUID(request.GET.get("practice", ""))
    except ValueError:
        return None
    return practices_for(request.user).filter(code=code).first()


@login_required
def followup(request: HttpRequest) -> HttpResponse:
    """Expired unpaid links whose money is still due and that nobody has sent again yet."""
    practice = current_practice(request)
    links = _practice_links(request, practice).counted_as("expired").order_by("-expires_at")
    page = Paginator(links, PAGE_SIZE).get_page(request.GET.get("page"))
    # Each row's "Send again" is a form of its own, with its own one-time token.
    rows = [(link, new_form_token()) for link in page]
    return render(
        request, "paylinks/followup.html", {"practice": practice, "page": page, "rows": rows}
    )


def _practice_links(request: HttpRequest, practice) -> PaymentLinkQuerySet:
    return (
        links_for(request.user)
        .filter(practice=practice)
        .select_related("invoice", "department", "created_by", "practice")
    )
