"""Finding invoices and clients in Provet, live, as the reception pages search them."""

import datetime as dt
import re

from clinics.models import Practice
from clinics.provet import ProvetClient
from clinics.provet import types as provet
from paylinks.invoices import departments_of, store_invoice
from paylinks.models import Invoice

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
        departments = departments_of(practice, invoices)
        newest_first = sorted(
            invoices, key=lambda i: (i.invoice_date or dt.date.min, i.id), reverse=True
        )
        return [
            store_invoice(practice, invoice, names.get(invoice.client_id), departments)
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
