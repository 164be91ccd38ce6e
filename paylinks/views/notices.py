"""The notices on every staff page: a link of yours, or of your department today, was paid,
expired unpaid or couldn't be delivered.

A notice is a LinkEvent that announces link.paid, link.expired or link.delivery_failed (decided
when it was written, `paylinks.models.announced`); an expiry only while the link is still
expired unpaid (an expired link paid after all is one "Paid" notice). Whose:
the person made the link, or it was made today in a department where they made a link today
(reception works a department's desk together). Only events of the practice's today, in the
practice the person is working in, and only until that person dismisses them.

The page loads its notices once (no `after`), then polls with the newest event id it has seen:
"nothing new" is one query over the events written since, answered 204. New notices come with
an `HX-Trigger` that the home page's list of today's links refreshes itself on.
"""

import uuid
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.db.models import Case, CharField, Exists, OuterRef, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from clinics import formats
from clinics.models import Practice
from paylinks.access import current_practice, practices_for
from paylinks.models import (
    LINK_FIGURES,
    DeliveryMethod,
    EventType,
    LinkEvent,
    NoticeDismissal,
    PaymentLink,
)
from paylinks.views.going_back import page_to_go_back_to

Kind = NoticeDismissal.Kind

# The events that are notices: what each announces, as the kind of notice it is.
NOTICE_KINDS = {
    EventType.PAID: Kind.PAID,
    EventType.EXPIRED: Kind.EXPIRED,
    EventType.DELIVERY_FAILED: Kind.DELIVERY_FAILED,
}

# The most notices a page shows at once; dismissing one brings the next.
SHOWN = 8
# Events read to find them: a link has at most a few that count (expired, then paid).
READ = 50
# The event the home page's list refreshes on (templates/paylinks/home.html).
TRIGGER = "link-noticed"
# htmx stops polling on this status: the person has logged out or lost their practices.
STOP_POLLING = 286


@dataclass(frozen=True)
class Notice:
    kind: str
    link: PaymentLink

    @property
    def words(self) -> str:
        return notice_words(self.kind, self.link)

    @property
    def tone(self) -> str:
        return "good" if self.kind == Kind.PAID else "bad"


def notice_events(user, practice: Practice, after: int | None = None) -> QuerySet[LinkEvent]:
    """The person's undismissed notice events of today, newest first, each annotated with the
    kind of notice it is (`notice_kind`); only those after event id `after` when given.

    One query, whatever the number of links: the person's departments and the dismissals are
    subqueries of it."""
    start = practice.start_of_today()
    departments_today = PaymentLink.objects.filter(
        practice=practice, created_by=user, created_at__gte=start
    ).values("department")
    theirs = Q(link__created_by=user) | Q(
        link__created_at__gte=start, link__department__in=departments_today
    )
    # "Expired unpaid" only while it is (LINK_FIGURES, as the lists and dashboard say): not once
    # it was paid after all, sent again or cancelled, or the invoice was paid some other way.
    over = Q(announces=EventType.EXPIRED) & ~Q(
        link__in=PaymentLink.objects.filter(LINK_FIGURES["expired"])
    )
    dismissed = NoticeDismissal.objects.filter(
        user=user, link=OuterRef("link"), kind=OuterRef("notice_kind")
    )
    events = (
        LinkEvent.objects.filter(
            link__practice=practice, created_at__gte=start, announces__in=list(NOTICE_KINDS)
        )
        .exclude(over)
        .filter(theirs)
        .annotate(
            notice_kind=Case(
                *(When(announces=said, then=Value(kind)) for said, kind in NOTICE_KINDS.items()),
                output_field=CharField(),
            )
        )
        .exclude(Exists(dismissed))
    )
    if after is not None:
        events = events.filter(pk__gt=after)
    return events.select_related("link", "link__invoice").order_by("-pk")


def notices_from(events: list[LinkEvent]) -> list[Notice]:
    """One notice per link and kind, newest first."""
    notices: dict[tuple[int, str], Notice] = {}
    for event in events:
        notices.setdefault(
            (event.link_id, event.notice_kind),  # type: ignore[attr-defined]
            Notice(kind=event.notice_kind, link=event.link),  # type: ignore[attr-defined]
        )
    return list(notices.values())[:SHOWN]


def notice_words(kind: str, link: PaymentLink) -> str:
    """What happened, as a receptionist would say it."""
    values = {
        "invoice": str(link.invoice) if link.invoice_id else "",
        "client": link.client_name or _("a client"),
        "amount": formats.money(link.amount, link.currency),
    }
    invoice = bool(link.invoice_id)
    if kind == Kind.PAID:
        if invoice:
            return _("Paid: invoice %(invoice)s, %(amount)s") % values
        return _("Paid: prepayment from %(client)s, %(amount)s") % values
    if kind == Kind.EXPIRED:
        if invoice:
            return _("Link for invoice %(invoice)s expired unpaid") % values
        return _("Prepayment link for %(client)s expired unpaid") % values
    return _failed_delivery_words(link, invoice) % values


def _failed_delivery_words(link: PaymentLink, invoice: bool) -> str:
    method = link.delivery_method
    if method == DeliveryMethod.SMS:
        if invoice:
            return _("Couldn't deliver the SMS for invoice %(invoice)s")
        return _("Couldn't deliver the SMS for the prepayment of %(client)s")
    if method == DeliveryMethod.EMAIL:
        if invoice:
            return _("Couldn't deliver the e-mail for invoice %(invoice)s")
        return _("Couldn't deliver the e-mail for the prepayment of %(client)s")
    if invoice:
        return _("Couldn't deliver the SMS or e-mail for invoice %(invoice)s")
    return _("Couldn't deliver the SMS or e-mail for the prepayment of %(client)s")


@require_GET
def notices(request: HttpRequest) -> HttpResponse:
    """The page's notices (no `after`), or those since event id `after`: 204 when none.

    Not @login_required: a redirect to the login page would be swapped into the page."""
    if not request.user.is_authenticated:
        return HttpResponse(status=STOP_POLLING)
    after_text = request.GET.get("after", "")
    if after_text and not (after_text.isascii() and after_text.isdecimal()):
        return HttpResponseBadRequest(_("after must be an event id."))
    after = int(after_text) if after_text else None
    try:
        practice = current_practice(request)
    except Http404:
        return HttpResponse(status=STOP_POLLING)
    events = list(notice_events(request.user, practice, after)[:READ])
    if after is not None and not events:
        return HttpResponse(status=204)
    response = render(
        request,
        "paylinks/_notices.html",
        {
            "notices": notices_from(events),
            # Newest first: the first event is the newest the page has now seen.
            "after": events[0].pk if events else 0,
            "next": _page_path(request),
        },
    )
    if after is not None:
        response["HX-Trigger"] = TRIGGER
    return response


@login_required
@require_POST
def dismiss_notice(request: HttpRequest) -> HttpResponse:
    """Dismiss one notice for this person: it doesn't come back, on any page or after a reload."""
    kind = request.POST.get("kind", "")
    if kind not in Kind.values:
        return HttpResponseBadRequest(_("Unknown kind of notice."))
    link = get_object_or_404(
        PaymentLink.objects.filter(practice__in=practices_for(request.user)),
        code=_uuid_or_404(request.POST.get("link", "")),
    )
    # The unique constraint keeps one row when two tabs dismiss it at once.
    NoticeDismissal.objects.bulk_create(
        [NoticeDismissal(user_id=_person_id(request), link=link, kind=kind)], ignore_conflicts=True
    )
    if getattr(request, "htmx", False):
        return HttpResponse("")  # the notice is removed from the page
    return redirect(page_to_go_back_to(request) or "paylinks:home")


def _person_id(request: HttpRequest) -> int:
    """The signed-in person's id (@login_required has let no one else in)."""
    person_id = request.user.pk
    assert person_id is not None
    return person_id


def _uuid_or_404(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise Http404 from None


def _page_path(request: HttpRequest) -> str:
    """The page the notices are shown on, to come back to after a dismissal without htmx."""
    htmx = getattr(request, "htmx", None)
    return (htmx and htmx.current_url_abs_path) or ""
