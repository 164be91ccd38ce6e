from decimal import Decimal

import pytest

from sandbox import clock, control
from sandbox.models import Client, Invoice, Payment


def make_link(sandbox_api, invoice, amount=None, **link_data) -> dict:
    body = sandbox_api.link_payload(invoice.pk, **link_data)
    body["amount"] = f"{amount if amount is not None else invoice.due_sum:.2f}"
    answer = sandbox_api.post("postransaction/", body)
    assert answer.status_code == 201, answer.content
    return answer.json()


def page_path(link: dict) -> str:
    return link["payment_link"]["url"].removeprefix("http://testserver")


def test_the_payer_page_shows_clinic_description_and_amount(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice, description="Checkup for Rex")
    page = sandbox_api.client.get(page_path(link)).content.decode()
    assert "Northvale Veterinary Group" in page
    assert "Checkup for Rex" in page
    assert f"{payable_invoice.due_sum:.2f} EUR" in page
    for name in ("Pay", "Decline", "Cancel"):
        assert f'value="{name.lower()}">{name}</button>' in page


def test_paying_the_whole_due_sum_marks_the_invoice_paid(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice)
    answer = sandbox_api.client.post(page_path(link), {"action": "pay"})
    assert answer.status_code == 303
    invoice = sandbox_api.get(f"invoice/{payable_invoice.pk}/").json()
    assert invoice["due_sum"] == "0.00"
    assert invoice["date_paid"] is not None
    after = sandbox_api.get(f"postransaction/{link['id']}/").json()
    assert after["payment_link"]["payment_status"] == 5
    assert after["payment"] is not None
    payment = Payment.objects.get(invoice=payable_invoice)
    assert len(payment.psp_reference) == 16


def test_paying_part_lowers_the_due_sum_without_a_paid_date(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice, amount=Decimal("10.00"))
    sandbox_api.client.post(page_path(link), {"action": "pay"})
    invoice = Invoice.objects.get(pk=payable_invoice.pk)
    assert invoice.due_sum == payable_invoice.due_sum - Decimal("10.00")
    assert invoice.date_paid is None


@pytest.mark.parametrize(("action", "status"), [("decline", 2), ("cancel", 4)])
def test_declining_or_cancelling_leaves_the_invoice_owing(
    sandbox_api, payable_invoice, action, status
):
    link = make_link(sandbox_api, payable_invoice)
    sandbox_api.client.post(page_path(link), {"action": action})
    after = sandbox_api.get(f"postransaction/{link['id']}/").json()
    assert after["payment_link"]["payment_status"] == status
    assert Invoice.objects.get(pk=payable_invoice.pk).due_sum == payable_invoice.due_sum
    if action == "cancel":
        assert after["aborted"] is not None


def test_a_settled_link_cannot_be_settled_again(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice, amount=Decimal("1.00"))
    sandbox_api.client.post(page_path(link), {"action": "decline"})
    sandbox_api.client.post(page_path(link), {"action": "pay"})
    after = sandbox_api.get(f"postransaction/{link['id']}/").json()
    assert after["payment_link"]["payment_status"] == 2
    assert Invoice.objects.get(pk=payable_invoice.pk).due_sum == payable_invoice.due_sum


def test_after_paying_the_page_shows_the_outcome_and_continue(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice, return_url="https://clinic.example/thanks")
    sandbox_api.client.post(page_path(link), {"action": "pay"})
    page = sandbox_api.client.get(page_path(link)).content.decode()
    assert "accepted" in page
    assert '<a href="https://clinic.example/thanks">Continue</a>' in page
    assert "<button" not in page


def test_tokenize_ask_offers_to_save_the_card(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice, tokenize="ask", recurring_model="one-off")
    page = sandbox_api.client.get(page_path(link)).content.decode()
    assert "Save my card for future payments" in page
    sandbox_api.client.post(page_path(link), {"action": "pay", "save_card": "on"})
    from sandbox.models import PosTransaction

    assert PosTransaction.objects.get(pk=link["id"]).card_saved


def test_an_expired_link_cannot_be_paid(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice, duration=5)
    clock.advance(5 * 60 + 1)
    sandbox_api.client.post(page_path(link), {"action": "pay"})
    after = sandbox_api.get(f"postransaction/{link['id']}/").json()
    assert after["payment_link"]["payment_status"] == 3
    assert Invoice.objects.get(pk=payable_invoice.pk).due_sum == payable_invoice.due_sum
    assert "expired" in sandbox_api.client.get(page_path(link)).content.decode()


def test_a_link_stays_pending_until_its_expiration_time(sandbox_api, payable_invoice):
    link = make_link(sandbox_api, payable_invoice, duration=5)
    clock.advance(5 * 60 - 2)
    assert (
        sandbox_api.get(f"postransaction/{link['id']}/").json()["payment_link"]["payment_status"]
        == 1
    )
    clock.advance(3)
    listed = sandbox_api.get("postransaction/").json()["results"][0]
    assert listed["payment_link"]["payment_status"] == 3


def test_a_paid_prepayment_becomes_an_unallocated_payment(sandbox_api, northvale):
    client = Client.objects.filter(installation__provet_id=4).exclude(email="").first()
    body = sandbox_api.link_payload()
    body["prepayment_data"] = {
        "client_id": client.pk,
        "department_id": northvale["department_ids"][0],
    }
    link = sandbox_api.post("postransaction/", body).json()
    control.settle_link(link["payment_link"]["external_id"], "pay")
    after = sandbox_api.get(f"postransaction/{link['id']}/").json()
    payment = Payment.objects.get(client=client, invoice=None)
    assert after["unallocated_payment"] == sandbox_api.url("unallocatedpayment", payment.pk)
    assert after["payment"] is None


def test_an_unknown_link_page_says_it_is_not_valid(client, db):
    page = client.get("/sandbox/pay/00000000-0000-4000-8000-000000000000/")
    assert page.status_code == 404
    assert b"no longer valid" in page.content
