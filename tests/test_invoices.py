"""Invoice snapshots: the one writer of an invoice's status and sums, and what it says changed."""

from django.utils import timezone

from paylinks.create import create_link
from paylinks.invoices import InvoiceChange, refresh_invoice, update_snapshot
from paylinks.models import Invoice
from sandbox import control
from sandbox.models import Client as ProvetClient
from sandbox.models import Invoice as ProvetInvoice
from tests.conftest import draft_for


def read_from_provet(invoice: Invoice):
    with invoice.practice.provet_client() as client:
        return client.get_invoice(invoice.provet_id)


def test_a_payment_is_stored_and_said_to_have_dropped_the_due_sum(invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist))
    control.settle_link(link.external_id, "pay")
    now = timezone.now()

    change = update_snapshot(invoice, read_from_provet(invoice), now)

    assert change == InvoiceChange(changed=True, due_dropped=True)
    invoice.refresh_from_db()
    assert invoice.due_sum == 0
    assert invoice.date_paid is not None
    assert invoice.fetched_at == now


def test_a_new_status_with_the_same_due_sum_is_a_change_but_no_payment(invoice):
    ProvetInvoice.objects.filter(pk=invoice.provet_id).update(status=99)  # voided in Provet

    change = update_snapshot(invoice, read_from_provet(invoice), timezone.now())

    assert change == InvoiceChange(changed=True, due_dropped=False)
    invoice.refresh_from_db()
    assert invoice.status == 99


def test_an_unchanged_invoice_is_not_written(invoice):
    read_at = invoice.fetched_at

    change = update_snapshot(invoice, read_from_provet(invoice), timezone.now())

    assert change == InvoiceChange(changed=False, due_dropped=False)
    invoice.refresh_from_db()
    assert invoice.fetched_at == read_at


def test_of_two_workers_that_saw_one_payment_only_one_is_told_of_it(invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist))
    control.settle_link(link.external_id, "pay")
    remote = read_from_provet(invoice)
    # Both read the snapshot before either wrote.
    first, second = Invoice.objects.get(pk=invoice.pk), Invoice.objects.get(pk=invoice.pk)

    told = [update_snapshot(worker, remote, timezone.now()) for worker in (first, second)]

    assert told == [InvoiceChange(changed=True, due_dropped=True), InvoiceChange()]


def test_reading_a_stored_invoice_again_stores_its_payment_and_its_client(invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist))
    control.settle_link(link.external_id, "pay")
    client = ProvetInvoice.objects.get(pk=invoice.provet_id).client
    ProvetClient.objects.filter(pk=client.pk).update(organization_name="Renamed Oy")
    read_at = invoice.fetched_at

    again = refresh_invoice(invoice.practice, invoice.provet_id)

    assert again.pk == invoice.pk
    again.refresh_from_db()
    assert again.due_sum == 0
    assert again.client_name == "Renamed Oy"
    assert again.fetched_at > read_at
