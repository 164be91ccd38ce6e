"""Invoice snapshots: one invoice read afresh from Provet, or the due sums of several, and the
one writer of a snapshot's status and sums, which says what a reading changed."""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from clinics.models import Department, Practice
from clinics.provet import ProvetClient, ProvetNotFound
from clinics.provet import types as provet
from clinics.sync import sync_departments
from paylinks.imported_links import import_links_made_elsewhere
from paylinks.models import Invoice

# What Provet changes in an invoice as it is paid: the fields `update_snapshot` writes.
PAYMENT_FIELDS = ("status", "due_sum", "total_with_vat", "date_paid")


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
        departments = departments_of(practice, [remote])
        invoice = store_invoice(practice, remote, customer, departments)
        if customer is not None:
            phone = primary_phone(client, customer)
            if phone != invoice.client_phone:
                invoice.client_phone = phone
                invoice.save(update_fields=["client_phone"])
        import_links_made_elsewhere(practice, client, invoice, remote)
    return invoice


def departments_of(practice: Practice, remote: list[provet.Invoice]) -> dict[int, Department]:
    """The practice's departments, synced from Provet first if an invoice names a new one."""
    known = {d.provet_id: d for d in practice.departments.all()}
    if any(i.department_id and i.department_id not in known for i in remote):
        sync_departments(practice)
        known = {d.provet_id: d for d in practice.departments.all()}
    return known


def store_invoice(
    practice: Practice,
    remote: provet.Invoice,
    customer: provet.Client | None,
    departments: dict[int, Department],
) -> Invoice:
    now = timezone.now()
    details = {
        "number": remote.number,
        "credit_note": remote.credit_note,
        "client_provet_id": remote.client_id,
        "department": departments.get(remote.department_id or 0),
        "invoice_date": remote.invoice_date,
        "fetched_at": now,
    }
    if customer is not None:
        details.update(
            client_name=customer.name,
            client_email=customer.email,
            client_no_sms=customer.no_sms,
            client_no_email=customer.no_email,
        )
    payment = {name: getattr(remote, name) for name in PAYMENT_FIELDS}
    invoice, created = Invoice.objects.get_or_create(
        practice=practice, provet_id=remote.id, defaults={**details, **payment}
    )
    if not created:
        update_snapshot(invoice, remote, now)
        for name, value in details.items():
            setattr(invoice, name, value)
        invoice.save(update_fields=list(details))
    return invoice


def refresh_due_sums(practice: Practice, invoice_ids: set[int]) -> set[int]:
    """Read these invoices' status and due sum again (after a payment or a webhook), so links
    on an invoice paid by other means show as superseded; answer those whose due sum dropped
    (a drop the poller already stored is its to act on: see update_snapshot). An invoice Provet
    no longer has is skipped. Raises ProvetError when Provet can't answer."""
    invoices = Invoice.objects.filter(practice=practice, pk__in=invoice_ids)
    dropped: set[int] = set()
    if not invoices:
        return dropped
    with practice.provet_client() as client:
        for invoice in invoices:
            now = timezone.now()
            try:
                remote = client.get_invoice(invoice.provet_id)
            except ProvetNotFound:
                pass  # deleted in Provet: keep the snapshot, don't ask first again tomorrow
            else:
                if update_snapshot(invoice, remote, now).due_dropped:
                    dropped.add(invoice.pk)
            # Read, changed or not: drift trusts a snapshot read after a link's payment.
            Invoice.objects.filter(pk=invoice.pk).update(fetched_at=now)
    return dropped


@dataclass(frozen=True)
class InvoiceChange:
    """What a reading from Provet changed in a snapshot, as its one writer saw it."""

    changed: bool = False  # the status or the due sum: what the invoice's links act on
    due_dropped: bool = False  # money arrived (or a credit was allocated)


def update_snapshot(invoice: Invoice, remote: provet.Invoice, now: dt.datetime) -> InvoiceChange:
    """Store what Provet says of the invoice's status and sums, and say what changed.

    Nothing is written when nothing changed. A change is written only if the snapshot still
    holds what `invoice` was read with: conditional, like a claim, so of two workers that saw
    one change, one is told of it and acts on it. `invoice` is left holding `remote`'s values.
    """
    before = {name: getattr(invoice, name) for name in PAYMENT_FIELDS}
    after = {name: getattr(remote, name) for name in PAYMENT_FIELDS}
    if after == before:
        return InvoiceChange()
    for name, value in after.items():
        setattr(invoice, name, value)
    if not Invoice.objects.filter(pk=invoice.pk, **before).update(**after, fetched_at=now):
        return InvoiceChange()
    invoice.fetched_at = now
    return InvoiceChange(
        changed=(remote.status, remote.due_sum) != (before["status"], before["due_sum"]),
        due_dropped=remote.due_sum < before["due_sum"],
    )
