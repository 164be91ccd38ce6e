"""The link page: payer URL, QR code, live statuses, timeline, and the actions on a link."""

import datetime as dt

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from clinics import formats
from clinics.provet import ProvetError
from clinics.provet.errors import explain
from paylinks import review
from paylinks.access import links_for
from paylinks.cancel import CannotCancel, cancel_link
from paylinks.create import AlreadyReplaced, LinkNotCreated
from paylinks.forms import FORM_TOKEN, new_form_token
from paylinks.models import PaymentLink, PaymentStatus
from paylinks.refresh import PracticePaused, check_now, offers_check_now
from paylinks.send_again import send_again
from paylinks.tasks import request_refresh
from paylinks.views.going_back import page_to_go_back_to
from paylinks.words import Seen, clock, status_words, what_changed


def _get_link_for_user(request: HttpRequest, code) -> PaymentLink:
    """Another practice's link is a 404, not a 403 that would confirm it exists."""
    return get_object_or_404(
        links_for(request.user).select_related(
            "practice", "invoice", "prepayment", "department", "created_by"
        ),
        code=code,
    )


@login_required
def link_detail(request: HttpRequest, code) -> HttpResponse:
    link = _get_link_for_user(request, code)
    return render(request, "paylinks/link.html", _context(link, request.user))


@login_required
def link_status(request: HttpRequest, code) -> HttpResponse:
    """The live part of the link page, polled by htmx while the link is not final."""
    link = _get_link_for_user(request, code)
    if request_refresh(link):
        link.refresh_from_db()  # a synchronous worker (tests, one-process set-ups) already ran
    return render(request, "paylinks/_link_status.html", _context(link, request.user))


@login_required
@require_POST
def link_check(request: HttpRequest, code) -> HttpResponse:
    """Check now: ask Provet, and say what it found ("Paid at 10:43", "No change since 10:41")."""
    link = _get_link_for_user(request, code)
    if not offers_check_now(link, replaced=link.is_replaced):
        # A page left open from before the link ended: nothing left to find out.
        messages.info(
            request,
            _("%(status)s: nothing more to check on this link.")
            % {"status": status_words(link)[0]},
        )
        return redirect("paylinks:link", code=link.code)
    seen = Seen.of(link)
    last_checked = link.checked_at or link.created_at
    try:
        asked = check_now(link, user=request.user)
    except PracticePaused as paused:
        messages.info(request, str(paused))
    except ProvetError as error:
        messages.error(request, explain(error))
    else:
        if not asked:
            messages.info(request, _("Checked a moment ago; the statuses below are current."))
        elif found := what_changed(seen, link):
            messages.success(request, " ".join(found))
        else:
            messages.info(
                request, _("No change since %(time)s.") % {"time": clock(last_checked, link)}
            )
    return redirect("paylinks:link", code=link.code)


@login_required
@require_POST
def link_cancel(request: HttpRequest, code) -> HttpResponse:
    link = _get_link_for_user(request, code)
    try:
        cancel_link(link, user=request.user)
    except CannotCancel as refusal:
        messages.error(request, str(refusal))
    except ProvetError as error:
        messages.error(
            request, _("The link was not cancelled: %(reason)s") % {"reason": explain(error)}
        )
    else:
        messages.success(request, _("The link is cancelled: the client can no longer pay with it."))
    return redirect("paylinks:link", code=link.code)


@login_required
@require_POST
def link_send_again(request: HttpRequest, code) -> HttpResponse:
    """Send again: one new link per link, whoever presses first. From the follow-up queue,
    the person stays in the queue; elsewhere they are taken to the new link."""
    link = _get_link_for_user(request, code)
    token = request.POST.get("form_token", "")
    if not FORM_TOKEN.match(token):
        messages.error(request, _("This page has expired: reload it and try again."))
        return redirect("paylinks:link", code=link.code)
    try:
        new = send_again(link, user=request.user, idempotency_key=token)
    except AlreadyReplaced as done:
        new = done.replacement
        who = formats.person(new.created_by)
        at = clock(new.created_at, link)
        messages.info(
            request,
            _("This link was already sent again by %(who)s at %(time)s: this is the new link.")
            % {"who": who, "time": at}
            if who
            else _("This link was already sent again at %(time)s: this is the new link.")
            % {"time": at},
        )
        return HttpResponseRedirect(_next_or(request, new))
    except LinkNotCreated as refused:
        details = [m for ms in refused.field_errors.values() for m in ms if m != refused.message]
        messages.error(request, " ".join([refused.message, *details]))
        return HttpResponseRedirect(_next_or(request, link))
    except ProvetError as error:
        messages.error(request, _("No new link was made: %(reason)s") % {"reason": explain(error)})
        return HttpResponseRedirect(_next_or(request, link))
    messages.success(
        request,
        _("A new link for %(amount)s was made for %(client)s.")
        % {
            "amount": formats.money(new.amount, new.currency),
            "client": new.client_name or _("the client"),
        },
    )
    return HttpResponseRedirect(_next_or(request, new))


@login_required
@require_http_methods(["GET", "POST"])
def link_review(request: HttpRequest, code) -> HttpResponse:
    """Needs review: a manager says which of the matching Provet links this one is, then
    cancels the others. Reception staff see the link but don't decide (403)."""
    link = _get_link_for_user(request, code)
    if not review.can_review(request.user, link):
        raise PermissionDenied(_("Only a manager or an admin decides which Provet link this is."))
    if request.method == "POST":
        if "cancel_others" in request.POST:
            return _cancel_others(request, link)
        if "none" in request.POST:
            return _none_of_these(request, link)
        return _choose(request, link)
    if not review.is_waiting(link) and not review.was_chosen(link):
        messages.info(request, _("There is nothing to decide for this link."))
        return redirect("paylinks:link", code=link.code)
    deciding = review.is_waiting(link)
    problem = ""
    try:
        rows = review.candidates(link) if deciding else review.others(link)
    except ProvetError as error:
        rows, problem = (
            [],
            _("Provet Cloud could not be read: %(reason)s") % {"reason": explain(error)},
        )
    invoice_links = (
        PaymentLink.objects.with_replaced()
        .filter(invoice=link.invoice)
        .exclude(pk=link.pk)
        .select_related("invoice", "department", "created_by")
        if link.invoice_id
        else PaymentLink.objects.none()
    )
    return render(
        request,
        "paylinks/review.html",
        {
            "link": link,
            "practice": link.practice,
            "deciding": deciding,
            "candidates": rows,
            "to_cancel": [row for row in rows if row.cancellable],
            "problem": problem,
            "invoice_links": invoice_links,
            "events": link.events.select_related("user"),
        },
    )


def _choose(request: HttpRequest, link: PaymentLink) -> HttpResponse:
    try:
        chosen = int(request.POST.get("choose", ""))
    except ValueError:
        return HttpResponseBadRequest(_("Choose one of the Provet links on the page."))
    try:
        rest = review.choose(link, chosen, request.user)
    except review.CannotReview as refusal:
        messages.error(request, str(refusal))
        return redirect("paylinks:link_review", code=link.code)
    except ProvetError as error:
        messages.error(request, _("Nothing was decided: %(reason)s") % {"reason": explain(error)})
        return redirect("paylinks:link_review", code=link.code)
    messages.success(
        request, _("Postransaction %(id)s is this link; PayLinks follows it now.") % {"id": chosen}
    )
    if any(row.cancellable for row in rest):
        messages.info(request, _("The others still ask to be paid: cancel them below."))
        return redirect("paylinks:link_review", code=link.code)
    return redirect("paylinks:link", code=link.code)


def _none_of_these(request: HttpRequest, link: PaymentLink) -> HttpResponse:
    try:
        review.none_of_these(link, request.user)
    except review.CannotReview as refusal:
        messages.error(request, str(refusal))
        return redirect("paylinks:link_review", code=link.code)
    messages.success(request, _("Noted: this link was not created. Make a new one if needed."))
    return redirect("paylinks:link", code=link.code)


def _cancel_others(request: HttpRequest, link: PaymentLink) -> HttpResponse:
    try:
        outcomes = review.cancel_others(link, request.user)
    except review.CannotReview as refusal:
        messages.error(request, str(refusal))
        return redirect("paylinks:link_review", code=link.code)
    except ProvetError as error:
        messages.error(
            request,
            _("Not every other link was cancelled: %(reason)s") % {"reason": explain(error)},
        )
        return redirect("paylinks:link_review", code=link.code)
    if not outcomes:
        messages.info(request, _("Nothing was left to cancel."))
    for outcome in outcomes:
        (messages.success if outcome.cancelled else messages.error)(request, outcome.message)
    if all(outcome.cancelled for outcome in outcomes):
        return redirect("paylinks:link", code=link.code)
    return redirect("paylinks:link_review", code=link.code)


def _next_or(request: HttpRequest, link: PaymentLink) -> str:
    """Back where the action was taken (the follow-up queue), if that is one of our pages;
    otherwise the page of `link`."""
    return page_to_go_back_to(request) or reverse("paylinks:link", kwargs={"code": link.code})


def _context(link: PaymentLink, user) -> dict:
    replacement = link.live_replacement()
    # Only a link the client can still pay is handed over: a paid, ended or replaced one shows
    # what happened instead of a QR code that would lead nowhere.
    payable = bool(link.payer_url) and link.is_open and replacement is None
    qr = ""
    if payable:
        # segno escapes nothing user-controlled: the payer URL comes from Provet, as a QR path.
        qr = mark_safe(  # noqa: S308
            segno.make(link.payer_url, error="m").svg_inline(
                scale=5, dark="#1f2933", title=_("QR code of the payment link"), omitsize=True
            )
        )
    return {
        "link": link,
        "practice": link.practice,
        "payable": payable,
        "paid": link.payment_status == PaymentStatus.ACCEPTED,
        "qr": qr,
        "events": link.events.select_related("user"),
        "replacement": replacement,
        "send_again_token": new_form_token(),
        "poll": not link.is_final_for_display,
        "can_check": offers_check_now(link, replaced=replacement is not None),
        "now": timezone.now(),
        "expires_in": (link.expires_at - timezone.now()) if link.expires_at else dt.timedelta(0),
        "can_review": link.needs_review and review.can_review(user, link),
    }
