from decimal import Decimal

import pytest

from sandbox import control
from sandbox.models import Client, Invoice, PosTransaction


def errors_of(answer) -> dict:
    assert answer.status_code == 400, answer.content
    return answer.json()


def test_it_creates_a_payment_link_for_an_invoice(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(
        payable_invoice.pk, description="Invoice 10002", return_url="https://clinic.example/ok"
    )
    body["amount"] = 30.05
    answer = sandbox_api.post("postransaction/", body)
    created = answer.json()
    assert answer.status_code == 201
    assert created["amount"] == 30.05
    assert created["invoice"] == sandbox_api.url("invoice", payable_invoice.pk)
    assert created["payment_type"] == 5003
    assert created["transaction_type"] == 4
    assert created["terminal_id"] == 0
    assert created["unallocated_payment"] is None
    link = created["payment_link"]
    assert link["url"] == f"http://testserver/sandbox/pay/{link['external_id']}/"
    assert link["expiration_time"].endswith("Z")
    assert link["payment_status"] == 1
    assert link["delivery_status"] == 1


def test_the_link_expires_after_its_duration(sandbox_api, payable_invoice):
    created = sandbox_api.post(
        "postransaction/", sandbox_api.link_payload(payable_invoice.pk, duration=60)
    ).json()
    pt = PosTransaction.objects.get(pk=created["id"])
    assert (pt.expiration_time - pt.created).total_seconds() == 3600


def test_the_invoice_lists_its_postransactions(sandbox_api, payable_invoice):
    created = sandbox_api.post("postransaction/", sandbox_api.link_payload(payable_invoice.pk))
    invoice = sandbox_api.get(f"invoice/{payable_invoice.pk}/").json()
    assert invoice["postransactions"] == [created.json()["url"]]


def test_it_creates_a_prepayment_link(sandbox_api, northvale):
    client = Client.objects.filter(installation__provet_id=4).exclude(email="").first()
    body = sandbox_api.link_payload()
    body["prepayment_data"] = {
        "client_id": client.pk,
        "department_id": northvale["department_ids"][0],
        "description": "Prepayment for surgery.",
    }
    answer = sandbox_api.post("postransaction/", body)
    assert answer.status_code == 201
    assert answer.json()["invoice"] is None


def test_it_accepts_the_invoice_by_id_in_payment_link_data(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(invoice_id=payable_invoice.pk)
    answer = sandbox_api.post("postransaction/", body)
    assert answer.status_code == 201
    assert answer.json()["invoice"] == sandbox_api.url("invoice", payable_invoice.pk)


def test_it_refuses_two_invoices_that_disagree(sandbox_api, payable_invoice):
    other = Invoice.objects.filter(installation__provet_id=4, status=3).exclude(
        pk=payable_invoice.pk
    )[0]
    body = sandbox_api.link_payload(payable_invoice.pk, invoice_id=other.pk)
    assert "non_field_errors" in errors_of(sandbox_api.post("postransaction/", body))


def test_it_refuses_an_invoice_and_a_prepayment_together(sandbox_api, payable_invoice, northvale):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["prepayment_data"] = {
        "client_id": payable_invoice.client_id,
        "department_id": northvale["department_ids"][0],
    }
    assert "non_field_errors" in errors_of(sandbox_api.post("postransaction/", body))


def test_it_refuses_a_link_for_neither_invoice_nor_prepayment(sandbox_api):
    assert "non_field_errors" in errors_of(
        sandbox_api.post("postransaction/", sandbox_api.link_payload())
    )


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "Ensure this value is greater than 0."),
        ("-5.00", "Ensure this value is greater than 0."),
        ("10.005", "Ensure that there are no more than 2 decimal places."),
        ("ten", "A valid number is required."),
        (None, "This field may not be null."),
    ],
)
def test_it_refuses_a_bad_amount(sandbox_api, payable_invoice, amount, message):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["amount"] = amount
    assert errors_of(sandbox_api.post("postransaction/", body)) == {"amount": [message]}


def test_it_refuses_more_than_the_invoice_still_owes(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["amount"] = str(payable_invoice.due_sum + Decimal("0.01"))
    assert "amount" in errors_of(sandbox_api.post("postransaction/", body))


def test_it_accepts_exactly_the_due_sum(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["amount"] = f"{payable_invoice.due_sum:.2f}"
    assert sandbox_api.post("postransaction/", body).status_code == 201


@pytest.mark.parametrize(
    ("field", "value"), [("payment_type", 1), ("transaction_type", 1), ("terminal_id", 3)]
)
def test_it_refuses_anything_but_provet_pay_codes(sandbox_api, payable_invoice, field, value):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body[field] = value
    assert list(errors_of(sandbox_api.post("postransaction/", body))) == [field]


def test_it_requires_the_provet_pay_fields(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(payable_invoice.pk)
    for name in ("amount", "payment_type", "creator", "department", "payment_link_data"):
        del body[name]
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert errors["creator"] == ["This field is required."]
    assert set(errors) == {"amount", "payment_type", "creator", "department", "payment_link_data"}


def test_it_refuses_a_department_without_provet_pay(sandbox_api, payable_invoice, northvale):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["department"] = sandbox_api.url("department", northvale["department_ids"][3])
    assert "department" in errors_of(sandbox_api.post("postransaction/", body))


def test_it_refuses_urls_of_another_installation_or_resource(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["creator"] = body["creator"].replace("/sandbox/4/", "/sandbox/7/")
    body["department"] = sandbox_api.url("client", 1)
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert errors["creator"] == ["Invalid hyperlink - Incorrect URL match."]
    assert errors["department"] == ["Invalid hyperlink - Incorrect URL match."]


def test_it_refuses_a_creator_that_does_not_exist(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["creator"] = sandbox_api.url("user", 999999)
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert errors == {"creator": ["Invalid hyperlink - Object does not exist."]}


@pytest.mark.parametrize(
    "kind",
    [{"status": 0}, {"status": 99}, {"status": 2}, {"credit_note": True}],
    ids=["draft", "voided", "open", "credit note"],
)
def test_it_refuses_an_invoice_that_cannot_be_paid(sandbox_api, northvale, kind):
    invoice = Invoice.objects.filter(installation__provet_id=4, **kind).first()
    body = sandbox_api.link_payload(invoice.pk)
    assert "invoice" in errors_of(sandbox_api.post("postransaction/", body))


def test_it_refuses_an_unpayable_invoice_named_by_id_in_the_link_data(sandbox_api):
    draft = Invoice.objects.filter(installation__provet_id=4, status=0).first()
    body = sandbox_api.link_payload(invoice_id=draft.pk)
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert "invoice_id" in errors["payment_link_data"]


def test_it_refuses_a_prepayment_for_an_unknown_client(sandbox_api, northvale):
    body = sandbox_api.link_payload()
    body["prepayment_data"] = {"client_id": 999999, "department_id": northvale["department_ids"][0]}
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert errors == {
        "prepayment_data": {"client_id": ['Invalid pk "999999" - object does not exist.']}
    }


def test_it_refuses_a_prepayment_without_its_department(sandbox_api):
    body = sandbox_api.link_payload()
    body["prepayment_data"] = {"client_id": Client.objects.filter(installation__provet_id=4)[0].pk}
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert errors == {"prepayment_data": {"department_id": ["This field is required."]}}


@pytest.mark.parametrize(
    ("link_data", "field"),
    [
        ({"email": "not-an-address", "delivery_method": 2}, "email"),
        ({"phone": "040 123 4567", "delivery_method": 3}, "phone"),
        ({"delivery_method": 7}, "delivery_method"),
        ({"duration": 0}, "duration"),
        ({"tokenize": "maybe", "recurring_model": "one-off"}, "tokenize"),
        ({"tokenize": "ask"}, "recurring_model"),
        ({"tokenize": "yes", "recurring_model": "monthly"}, "recurring_model"),
        ({"return_url": "not a url"}, "return_url"),
    ],
)
def test_it_refuses_bad_link_data_field_by_field(sandbox_api, payable_invoice, link_data, field):
    body = sandbox_api.link_payload(payable_invoice.pk, **link_data)
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert list(errors) == ["payment_link_data"]
    assert list(errors["payment_link_data"]) == [field]


def test_it_sends_to_the_clients_primary_email_and_phone_by_default(sandbox_api):
    invoice = (
        Invoice.objects.filter(installation__provet_id=4, status=3, credit_note=False)
        .exclude(client__email="")
        .filter(client__phone_numbers__preferred_reminders=True, due_sum__gt=0)
        .first()
    )
    body = sandbox_api.link_payload(invoice.pk, delivery_method=1)
    created = sandbox_api.post("postransaction/", body).json()
    pt = PosTransaction.objects.get(pk=created["id"])
    preferred = invoice.client.phone_numbers.get(preferred_reminders=True)
    assert pt.email == invoice.client.email
    assert pt.phone == preferred.phone_number


def test_it_needs_an_address_for_the_chosen_delivery(sandbox_api):
    invoice = Invoice.objects.filter(
        installation__provet_id=4, status=3, credit_note=False, client__email="", due_sum__gt=0
    ).first()
    body = sandbox_api.link_payload(invoice.pk, delivery_method=2)
    errors = errors_of(sandbox_api.post("postransaction/", body))
    assert list(errors["payment_link_data"]) == ["email"]


def test_it_refuses_a_body_that_is_not_an_object(sandbox_api):
    errors = errors_of(sandbox_api.post("postransaction/", [1, 2]))
    assert list(errors) == ["non_field_errors"]


def test_it_forbids_an_integration_user_without_the_invoices_permission(
    sandbox_api, payable_invoice
):
    control.set_invoice_permission(4, False)
    answer = sandbox_api.post("postransaction/", sandbox_api.link_payload(payable_invoice.pk))
    assert answer.status_code == 403
    assert answer.json() == {"detail": "You do not have permission to perform this action."}


def test_get_one_and_list_show_the_link(sandbox_api, payable_invoice):
    created = sandbox_api.post(
        "postransaction/", sandbox_api.link_payload(payable_invoice.pk)
    ).json()
    assert sandbox_api.get(f"postransaction/{created['id']}/").json() == created
    listed = sandbox_api.get("postransaction/").json()
    assert listed["count"] == 1
    assert listed["results"][0]["payment_link"] == created["payment_link"]


def test_delete_removes_the_link_everywhere(sandbox_api, payable_invoice):
    created = sandbox_api.post(
        "postransaction/", sandbox_api.link_payload(payable_invoice.pk)
    ).json()
    assert sandbox_api.delete(f"postransaction/{created['id']}/").status_code == 204
    assert sandbox_api.get(f"postransaction/{created['id']}/").status_code == 404
    assert sandbox_api.get("postransaction/").json()["count"] == 0
    assert sandbox_api.get(f"invoice/{payable_invoice.pk}/").json()["postransactions"] == []
    page = sandbox_api.client.get(created["payment_link"]["url"])
    assert page.status_code == 404
    assert b"no longer valid" in page.content


def test_an_accepted_link_cannot_be_deleted(sandbox_api, payable_invoice):
    created = sandbox_api.post(
        "postransaction/", sandbox_api.link_payload(payable_invoice.pk)
    ).json()
    control.settle_link(created["payment_link"]["external_id"], "pay")
    answer = sandbox_api.delete(f"postransaction/{created['id']}/")
    assert list(errors_of(answer)) == ["non_field_errors"]


def test_deleting_an_unknown_postransaction_is_not_found(sandbox_api):
    answer = sandbox_api.delete("postransaction/424242/")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not found."}
