"""Reception: find what to charge, fill in the link form, make the link."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.middleware import HtmxDetails

from clinics import phones
from clinics.provet import ProvetError, ProvetNotFound
from clinics.provet.errors import explain
from paylinks.access import SESSION_KEY, current_practice, links_for, practices_for
from paylinks.create import AlreadyReplaced, LinkNotCreated, create_link, made_with
from paylinks.forms import (
    FORM_TOKEN,
    InvoiceLinkForm,
    PrepaymentLinkForm,
    new_form_token,
    search_examples,
)
from paylinks.invoice_search import search_clients, search_invoices
from paylinks.invoices import primary_phone, refresh_invoice
from paylinks.models import DeliveryMethod, Invoice, PaymentLink


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@login_required
def home(request: HtmxHttpRequest) -> HttpResponse:
    practice = current_practice(request)
    query = _search_text(request)
    invoices: list[Invoice] = []
    error = ""
    if query:
        try:
            invoices = search_invoices(practice, query)
        except ProvetError as problem:
            error = explain(problem)
    recent = (
        links_for(request.user)
        .filter(practice=practice)
        .filter(PaymentLink.open_q() | Q(created_at__gte=practice.start_of_today()))
        .select_related("invoice", "department", "created_by")[:15]
    )
    context = {"practice": practice, "query": query, "invoices": invoices, "error": error}
    context["recent"] = recent
    context["examples"] = search_examples(practice.country)
    if request.htmx and query:
        return render(request, "paylinks/_invoice_results.html", context)
    return render(request, "paylinks/home.html", context)


@login_required
def invoice_link(request: HttpRequest, provet_id: int) -> HttpResponse:
    """An invoice, fresh from Provet, with its links and the form for a new one."""
    practice = current_practice(request)
    try:
        invoice = refresh_invoice(practice, provet_id)
    except ProvetNotFound:
        raise Http404(_("Provet Cloud has no such invoice.")) from None
    except ProvetError as problem:
        messages.error(request, explain(problem))
        return redirect("paylinks:home")

    if request.method == "POST":
        if made := _made_with_this_form(request, practice):
            return redirect("paylinks:link", code=made.code)
        form = InvoiceLinkForm(request.POST, practice=practice, invoice=invoice)
        if form.is_valid():
            link = _create(request, form, invoice=invoice)
            if link is not None:
                return redirect("paylinks:link", code=link.code)
    else:
        form = InvoiceLinkForm(
            practice=practice,
            invoice=invoice,
            initial={
                # Provet's SMS and e-mail already name the practice: the description doesn't.
                "description": _("Payment for invoice %(number)s") % {"number": invoice},
                **_form_defaults(
                    practice,
                    email=invoice.client_email,
                    phone=invoice.client_phone,
                    no_sms=invoice.client_no_sms,
                    no_email=invoice.client_no_email,
                ),
            },
        )
        form.initial.update(amount=form.initial_amount(), replace=form.initial_replace())
    links = invoice.links.with_replaced().select_related("created_by").order_by("-created_at")
    return render(
        request,
        "paylinks/invoice.html",
        {
            "practice": practice,
            "invoice": invoice,
            "links": links,
            "form": form,
            "problem": invoice.link_problem() if request.method == "GET" else "",
        },
    )


@login_required
def prepayment_link(request: HttpRequest) -> HttpResponse:
    """A prepayment: find the client, then pick a department and the amount."""
    practice = current_practice(request)
    client_id = request.POST.get("client") or request.GET.get("client")
    if not client_id or not client_id.isdecimal() or not client_id.isascii():
        return _client_search(request, practice)
    try:
        with practice.provet_client() as provet:
            customer = provet.get_client(int(client_id))
            phone = primary_phone(provet, customer)
    except ProvetNotFound:
        raise Http404(_("Provet Cloud has no such client.")) from None
    except ProvetError as problem:
        messages.error(request, explain(problem))
        return redirect("paylinks:prepayment")

    flags = {"no_sms": customer.no_sms, "no_email": customer.no_email}
    if request.method == "POST":
        if made := _made_with_this_form(request, practice):
            return redirect("paylinks:link", code=made.code)
        form = PrepaymentLinkForm(request.POST, practice=practice, **flags)
        if form.is_valid():
            link = _create(request, form, client_id=customer.id, client_name=customer.name)
            if link is not None:
                return redirect("paylinks:link", code=link.code)
    else:
        departments = practice.departments.filter(allow_nhp_processing=True)
        form = PrepaymentLinkForm(
            practice=practice,
            initial={
                "client": customer.id,
                "department": departments.first() if departments.count() == 1 else None,
                "description": _("Prepayment"),
                **_form_defaults(
                    practice,
                    email=customer.email,
                    phone=phone,
                    no_sms=customer.no_sms,
                    no_email=customer.no_email,
                ),
            },
            **flags,
        )
    return render(
        request,
        "paylinks/prepayment.html",
        {"practice": practice, "customer": customer, "form": form},
    )


@login_required
@require_POST
def switch_practice(request: HttpRequest) -> HttpResponse:
    try:
        code = uuid.UUID(request.POST.get("practice", ""))
    except ValueError:
        raise Http404 from None
    practice = practices_for(request.user).filter(code=code).first()
    if practice is None:
        raise Http404
    request.session[SESSION_KEY] = str(practice.code)
    messages.info(request, _("You are now working in %(practice)s.") % {"practice": practice})
    return redirect("paylinks:home")


def _search_text(request: HttpRequest) -> str:
    """What was typed into a search box, without characters no name or number has (NUL)."""
    return "".join(c for c in request.GET.get("q", "") if c.isprintable()).strip()


def _client_search(request: HttpRequest, practice) -> HttpResponse:
    query = _search_text(request)
    clients = []
    error = ""
    if query:
        try:
            with practice.provet_client() as provet:
                clients = search_clients(provet, query)
        except ProvetError as problem:
            error = explain(problem)
    return render(
        request,
        "paylinks/prepayment_client.html",
        {
            "practice": practice,
            "query": query,
            "clients": clients,
            "error": error,
            "examples": search_examples(practice.country),
        },
    )


def _made_with_this_form(request: HttpRequest, practice) -> PaymentLink | None:
    """A form sent again (double click, back and resubmit, second tab) shows the link it made."""
    token = request.POST.get("form_token", "")
    if not FORM_TOKEN.match(token):
        return None  # the form says why
    try:
        return made_with(token, practice, request.user)
    except LinkNotCreated:
        return None  # someone else's token: making the link refuses it, on the form


def _create(request: HttpRequest, form, **subject) -> PaymentLink | None:
    """Make the link from a valid form; put Provet's refusal on the form's fields."""
    try:
        return create_link(form.draft(request.user, **subject))
    except AlreadyReplaced:
        form.add_error(
            "replace",
            _(
                "Someone has just made a link in place of that one: see it in the invoice's "
                "links. Nothing new was made."
            ),
        )
        return None
    except LinkNotCreated as refused:
        for field, errors in refused.field_errors.items():
            for error in errors:
                form.add_error(None if field not in form.fields else field, error)
        if not refused.field_errors:
            form.add_error(None, refused.message)
        return None


def _form_defaults(practice, *, email: str, phone: str, no_sms: bool, no_email: bool) -> dict:
    """What both link forms start with: the client's addresses unless refused, the practice's
    defaults, and a fresh one-time token."""
    return {
        "email": "" if no_email else email,
        # As the desk writes it (040 671 6444); the form reads it back in the practice's country.
        "phone": "" if no_sms else phones.national(phone, practice.country),
        "delivery_method": _default_delivery(
            can_sms=phones.can_take_sms(phone, practice.country) and not no_sms,
            can_email=bool(email) and not no_email,
        ),
        "return_url": practice.default_return_url,
        **_duration_initial(practice.default_duration_minutes),
        "form_token": new_form_token(),
    }


def _default_delivery(*, can_sms: bool, can_email: bool) -> int:
    """Send every way the client can be reached and has not refused."""
    if can_sms and can_email:
        return DeliveryMethod.SMS_AND_EMAIL
    if can_email:
        return DeliveryMethod.EMAIL
    if can_sms:
        return DeliveryMethod.SMS
    return DeliveryMethod.DONT_SEND


def _duration_initial(minutes: int) -> dict:
    preset = {"60", "1440", "2880", "10080"}
    if str(minutes) in preset:
        return {"duration": str(minutes)}
    return {"duration": "custom", "custom_minutes": minutes}
