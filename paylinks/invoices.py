"""Invoices, live from Provet: search them, snapshot them, and import links made elsewhere."""

import datetime as dt
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics.models import Department, Practice
from clinics.provet import ProvetClient, ProvetNotFound
from clinics.provet import types as provet
from clinics.sync import sync_departments
from paylinks.models import Invoice, LinkEvent, PaymentLink

SEARCH_LIMIT = 20
_NUMBER = re.compile(r"^\s*[A-Za-z#-]*\s*(\d+)\s*$")


def search_invoices(practice: Practice, query: str) -> list[Invoice]:
    """Invoices whose number is `query`, or whose client's name contains it (newest first)."""
    query = query.strip()
    if not query:
        return []
    with practice.provet_client() as client:
        number = _NUMBER.match(query)
        if number:
            found = client.list_invoices({"invoice_number__is": number.group(1)}, SEARCH_LIMIT)
            invoices = found.results
        else:
            clients = search_clients(client, query)
            if not clients:
                return []
            found = client.list_invoices(
                {"client__in": [c.id for c in clients[:SEARCH_LIMIT]]}, SEARCH_LIMIT
            )
            invoices = found.results
        names = {c.id: c for c in search_clients_by_id(client, invoices)}
        departments = _departments(practice, invoices)
        newest_first = sorted(
            invoices, key=lambda i: (i.invoice_date or dt.date.min, i.id), reverse=True
        )
        return [
            _store(practice, invoice, names.get(invoice.client_id), departments)
            for invoice in newest_first
        ]


def search_clients(client: ProvetClient, query: str) -> list[provet.Client]:
    """Clients whose name holds every word of `query` (Provet matches the first word)."""
    words = query.lower().split()
    if not words:
        return []
    first = words[0]
    page = client.list_clients(
        {
            "filter_type": "or",
            "firstname__icontains": first,
            "lastname__icontains": first,
            "organization_name__icontains": first,
        },
        page_size=50,
    )
    return [
        c
        for c in page.results
        if not c.archived and all(word in f"{c.name} {c.firstname}".lower() for word in words)
    ]


def search_clients_by_id(client: ProvetClient, invoices: list[provet.Invoice]) -> list:
    ids = sorted({i.client_id for i in invoices if i.client_id})
    if not ids:
        return []
    return client.list_clients({"id__in": ids}, page_size=max(len(ids), 1)).results


def primary_phone(client: ProvetClient, customer: provet.Client) -> str:
    """The number Provet would text: the one marked for reminders, else the first."""
    numbers = client.list_phone_numbers(customer.id) if customer.phone_numbers else []
    preferred = [n for n in numbers if n.preferred_reminders] or numbers
    return preferred[0].phone_number if preferred else ""


def refresh_invoice(practice: Practice, provet_id: int) -> Invoice:
    """Read the invoice afresh from Provet, store its snapshot and import links made elsewhere.

    Raises ProvetError (ProvetNotFound for an invoice Provet doesn't have).
    """
    with practice.provet_client() as client:
        remote = client.get_invoice(provet_id)
        customer = client.get_client(remote.client_id) if remote.client_id else None
        departments = _departments(practice, [remote])
        invoice = _store(practice, remote, customer, departments)
        if customer is not None:
            phone = primary_phone(client, customer)
            if phone != invoice.client_phone:
                invoice.client_phone = phone
                invoice.save(update_fields=["client_phone"])
        _import_links(practice, client, invoice, remote)
    return invoice


def _departments(practice: Practice, remote: list[provet.Invoice]) -> dict[int, Department]:
    """The practice's departments, synced from Provet first if an invoice names a new one."""
    known = {d.provet_id: d for d in practice.departments.all()}
    if any(i.department_id and i.department_id not in known for i in remote):
        sync_departments(practice)
        known = {d.provet_id: d for d in practice.departments.all()}
    return known


def _store(
    practice: Practice,
    remote: provet.Invoice,
    customer: provet.Client | None,
    departments: dict[int, Department],
) -> Invoice:
    defaults = {
        "number": remote.number,
        "status": remote.status,
        "credit_note": remote.credit_note,
        "client_provet_id": remote.client_id,
        "department": departments.get(remote.department_id or 0),
        "total_with_vat": remote.total_with_vat,
        "due_sum": remote.due_sum,
        "invoice_date": remote.invoice_date,
        "date_paid": remote.date_paid,
        "fetched_at": timezone.now(),
    }
    if customer is not None:
        defaults.update(
            client_name=customer.name,
            client_email=customer.email,
            client_no_sms=customer.no_sms,
            client_no_email=customer.no_email,
        )
    invoice, _ = Invoice.objects.update_or_create(
        practice=practice, provet_id=remote.id, defaults=defaults
    )
    return invoice


def _import_links(
    practice: Practice, client: ProvetClient, invoice: Invoice, remote: provet.Invoice
) -> None:
    """Links made in Provet itself (or by another tool) appear beside PayLinks' own.

    While one of our own attempts has an unknown outcome, nothing is imported: the reconciler
    must first decide whether a postransaction is that attempt's. Once it has left the choice
    to a person (needs review), everything but the candidates is imported, so the invoice's
    other real links are seen, and count, meanwhile.
    """
    undecided = invoice.links.filter(
        state__in=[PaymentLink.State.CREATING, PaymentLink.State.UNKNOWN]
    )
    if undecided.filter(needs_review=False).exists():
        return
    known = set(
        PaymentLink.objects.filter(practice=practice, postransaction_id__isnull=False).values_list(
            "postransaction_id", flat=True
        )
    )
    for candidates in undecided.values_list("review_candidates", flat=True):
        known.update(candidates)
    for url in remote.postransactions:
        if provet.id_from_url(url) in known:
            continue
        try:
            posted = client.get_postransaction_by_url(url)
        except ProvetNotFound:
            continue
        if posted.payment_link is None or invoice.department is None:
            continue  # a card-terminal or cash transaction, not a payment link
        try:
            with transaction.atomic():
                link = PaymentLink.objects.create(
                    practice=practice,
                    invoice=invoice,
                    department=invoice.department,
                    client_name=invoice.client_name,
                    amount=posted.amount,
                    currency=practice.currency,
                    duration_minutes=0,
                    idempotency_key=f"provet:{practice.pk}:{posted.id}",
                    imported=True,
                )
                link.adopt(
                    posted,
                    source=LinkEvent.Source.SYSTEM,
                    kind=LinkEvent.Kind.RECONCILED,
                    message="Found on the invoice in Provet (made outside PayLinks)",
                )
        except IntegrityError:
            continue  # imported meanwhile by another request


def refresh_due_sums(practice: Practice, invoice_ids: set[int]) -> set[int]:
    """Read these invoices' status and due sum again (after a payment or a webhook), so links
    on an invoice paid by other means show as superseded; answer those whose due sum dropped.
    An invoice Provet no longer has is skipped. Raises ProvetError when Provet can't answer."""
    invoices = Invoice.objects.filter(practice=practice, pk__in=invoice_ids)
    dropped: set[int] = set()
    if not invoices:
        return dropped
    with practice.provet_client() as client:
        for invoice in invoices:
            invoice.fetched_at = timezone.now()
            fields = ["fetched_at"]
            try:
                remote = client.get_invoice(invoice.provet_id)
            except ProvetNotFound:
                pass  # deleted in Provet: keep the snapshot, don't ask first again tomorrow
            else:
                if remote.due_sum < invoice.due_sum:
                    dropped.add(invoice.pk)
                invoice.status = remote.status
                invoice.due_sum = remote.due_sum
                invoice.total_with_vat = remote.total_with_vat
                invoice.date_paid = remote.date_paid
                fields += ["status", "due_sum", "total_with_vat", "date_paid"]
            invoice.save(update_fields=fields)
    return dropped
