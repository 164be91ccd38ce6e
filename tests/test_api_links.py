"""The links API: make, list, read, and the actions, through the pages' rules."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from clinics.models import Membership
from paylinks.api.models import APIKey
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import DeliveryStatus, PaymentLink, PaymentStatus
from sandbox import control as sandbox_control
from sandbox.models import PosTransaction
from tests.api_helpers import Api, invoice_link_body, make_key
from tests.conftest import add_fault, draft_for, form_data, sandbox_invoice

PROBLEM = "application/problem+json"


@pytest.fixture
def key(synced_practice):
    return make_key(synced_practice)


@pytest.fixture
def api(key) -> Api:
    return Api(key[1])


@pytest.fixture
def provet_invoice(synced_practice):
    return sandbox_invoice(synced_practice)


def make(api: Api, invoice, **changes):
    return api.post("/api/v1/links/", invoice_link_body(invoice, **changes))


def test_a_link_is_made_for_an_invoice_and_answered_with_its_payer_url(api, key, invoice):
    response = make(api, invoice, amount="12,50", delivery_method=0)

    assert response.status_code == 201, response.content
    body = response.json()
    link = PaymentLink.objects.get(code=body["code"])
    assert response["Location"] == f"http://testserver/api/v1/links/{link.code}/"
    assert body["amount"] == "12.50" and body["currency"] == link.currency
    assert body["payer_url"] == link.payer_url and body["payer_url"].startswith("http")
    assert body["kind"] == "invoice"
    assert body["invoice"] == {"provet_id": invoice.provet_id, "number": invoice.number}
    assert body["payment_status"] == PaymentStatus.PENDING
    assert body["payment_status_label"] == "Waiting for payment"
    assert body["status_words"] == {"text": "Waiting for payment", "tone": "waiting"}
    assert body["delivery_words"] == "Not sent: hand over the link or the QR code"
    assert [event["kind"] for event in body["timeline"]] == ["created"]
    assert body["replaced_by"] is None and body["replaces"] is None
    # The key acts as its own user, named after the key.
    assert link.created_by == key[0].user
    assert body["created_by"] == "Booking site (API key)"
    assert PosTransaction.objects.get(pk=link.postransaction_id).amount == Decimal("12.50")


def test_an_invoice_link_asks_for_what_is_free_when_no_amount_is_given(api, invoice):
    body = invoice_link_body(invoice)
    del body["amount"]

    response = api.post("/api/v1/links/", body)

    assert response.status_code == 201, response.content
    assert response.json()["amount"] == str(invoice.due_sum)


def test_a_prepayment_link_is_made_for_a_client_in_a_department(api, synced_practice):
    provet_invoice = sandbox_invoice(synced_practice)
    department = synced_practice.departments.filter(allow_nhp_processing=True).first()

    response = api.post(
        "/api/v1/links/",
        {
            "client": provet_invoice.client_id,
            "department": department.provet_id,
            "amount": 80,
            "delivery_method": 0,
            "description": "Prepayment for surgery",
            "duration_minutes": 90,
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "prepayment" and body["invoice"] is None
    assert body["client_provet_id"] == provet_invoice.client_id
    assert body["department"]["provet_id"] == department.provet_id
    assert body["duration_minutes"] == 90 and body["amount"] == "80.00"


def test_every_option_of_the_form_reaches_provet(api, invoice):
    response = make(
        api,
        invoice,
        amount="10.00",
        delivery_method=1,
        email="anna@example.com",
        phone="040 123 4567",
        duration_minutes=2880,
        return_url="https://clinic.example.com/thanks",
        tokenize="yes",
        recurring_model="subscription",
        consent=True,
    )

    assert response.status_code == 201, response.content
    link = PaymentLink.objects.get()
    posted = PosTransaction.objects.get(pk=link.postransaction_id)
    assert (posted.email, posted.phone) == ("anna@example.com", "+358401234567")
    assert link.duration_minutes == 2880 and link.return_url == "https://clinic.example.com/thanks"
    assert (link.tokenize, link.recurring_model) == ("yes", "subscription")
    assert link.consent_recorded_at is not None


# One code path with the pages


def page_error(client, invoice, field: str, **typed) -> str:
    page = client.get(f"/invoices/{invoice.provet_id}/")
    response = client.post(f"/invoices/{invoice.provet_id}/", form_data(page, **typed))
    return response.context["form"].errors[field][0]


def test_a_landline_for_sms_is_refused_with_the_page_s_words(api, invoice, client, receptionist):
    client.force_login(receptionist)
    landline = "09 1234 5678"  # a Helsinki landline: valid, but no SMS reaches it
    on_the_page = page_error(client, invoice, "phone", phone=landline, delivery_method="3")

    response = make(api, invoice, phone=landline, delivery_method=3)

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["errors"] == {"phone": [on_the_page]}
    assert "not a mobile number" in on_the_page
    assert not PaymentLink.objects.exists()


def test_an_amount_above_what_is_due_is_refused_with_the_page_s_words(
    api, invoice, client, receptionist
):
    client.force_login(receptionist)
    too_much = str(invoice.due_sum + 1)
    on_the_page = page_error(client, invoice, "amount", amount=too_much)

    response = make(api, invoice, amount=too_much)

    assert response.status_code == 400
    assert response.json()["errors"] == {"amount": [on_the_page]}


def test_a_second_full_link_is_refused_as_on_the_page_unless_it_replaces_the_first(api, invoice):
    first = make(api, invoice).json()

    second = make(api, invoice)

    assert second.status_code == 400
    assert "already ask for" in second.json()["errors"]["amount"][0]
    third = make(api, invoice, replace=first["code"])
    assert third.status_code == 201, third.content
    assert third.json()["replaces"] == first["code"]
    assert api.get(f"/api/v1/links/{first['code']}/").json()["replaced_by"] == third.json()["code"]


def test_the_api_and_the_page_make_links_with_the_same_function(monkeypatch, api, invoice):
    """Both go through LinkForm.draft and create_link: replace it and both change."""
    from paylinks import forms

    made = []
    draft = forms.LinkForm.draft

    def recording(form, *args, **kwargs):
        made.append(type(form).__name__)
        return draft(form, *args, **kwargs)

    monkeypatch.setattr(forms.LinkForm, "draft", recording)
    assert make(api, invoice).status_code == 201
    assert made == ["InvoiceLinkForm"]


def test_provet_s_own_refusal_lands_on_the_fields(api, invoice, monkeypatch):
    # PayLinks' snapshot says more is due than Provet knows: Provet refuses the amount.
    from paylinks.api import links as api_links

    def stale(practice, provet_id):
        invoice.due_sum += 100
        invoice.save(update_fields=["due_sum"])
        return invoice

    monkeypatch.setattr(api_links, "refresh_invoice", stale)

    response = make(api, invoice, amount=str(invoice.due_sum + 50))

    assert response.status_code == 400, response.content
    [message] = response.json()["errors"]["amount"]
    assert message.startswith("Provet Cloud: ")
    assert not PaymentLink.objects.exists()


def test_bad_shapes_are_refused_at_their_fields(api, invoice):
    response = api.post(
        "/api/v1/links/", {"invoice": "ten", "delivery_method": 9, "description": "x", "amout": 1}
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"invoice", "delivery_method"}
    both = api.post(
        "/api/v1/links/", {"invoice": 1, "client": 2, "delivery_method": 0, "description": "x"}
    )
    assert "non_field_errors" in both.json()["errors"]
    unknown = api.post("/api/v1/links/", {**invoice_link_body(invoice), "amout": 1})
    assert unknown.json()["errors"] == {"amout": ["There is no such field."]}


def test_an_invoice_provet_does_not_have_is_a_404(api, synced_practice):
    response = api.post(
        "/api/v1/links/",
        {"invoice": 999999, "delivery_method": 0, "description": "x", "amount": "1"},
    )

    assert response.status_code == 404
    assert response.json()["detail"] == "Provet Cloud has no such invoice."


# Reading


def test_a_link_is_read_with_its_statuses_and_timeline(api, invoice, key):
    link = create_link(draft_for(invoice, key[0].user))
    PosTransaction.objects.filter(pk=link.postransaction_id).update(delivery_status=3)
    link.record_status(
        _posted(link), source="poller", now=timezone.now()
    )  # delivery failed, as Provet says

    body = api.get(f"/api/v1/links/{link.code}/").json()

    assert body["delivery_status"] == DeliveryStatus.FAILED
    assert body["delivery_status_label"] == "Delivery failed"
    assert [e["kind"] for e in body["timeline"]] == ["created", "delivery"]
    assert body["timeline"][1]["new_value"] == "Delivery failed"


def _posted(link):
    with link.practice.provet_client() as provet:
        return provet.get_postransaction(link.postransaction_id)


def test_the_list_filters_as_the_links_page_does_and_pages_by_cursor(api, synced_practice, key):
    user = key[0].user
    first = sandbox_invoice(synced_practice)
    second = sandbox_invoice(synced_practice, id__gt=first.id)
    third = sandbox_invoice(synced_practice, id__gt=second.id)
    made = [
        create_link(draft_for(refresh_invoice(synced_practice, each.id), user, amount=Decimal(1)))
        for each in (first, second, third)
    ]
    made[0].record_cancelled(user=None, source="user")

    everything = api.get("/api/v1/links/", {"page_size": 2}).json()
    assert [link["code"] for link in everything["results"]] == [
        str(made[2].code),
        str(made[1].code),
    ]
    rest = Api(client=api.client).get(everything["next"], **api.headers).json()
    assert [link["code"] for link in rest["results"]] == [str(made[0].code)]
    assert rest["next"] is None

    cancelled = api.get("/api/v1/links/", {"status": "cancelled"}).json()["results"]
    assert [link["code"] for link in cancelled] == [str(made[0].code)]
    mine = api.get("/api/v1/links/", {"created_by": user.username}).json()["results"]
    assert len(mine) == 3
    search = api.get("/api/v1/links/", {"q": made[1].invoice.number}).json()["results"]
    assert [link["code"] for link in search] == [str(made[1].code)]


def test_a_filter_that_is_wrong_is_a_400_at_its_field(api):
    response = api.get("/api/v1/links/", {"created_from": "2026-03-02", "created_to": "2026-03-01"})

    assert response.status_code == 400
    assert response.json()["errors"] == {"created_to": ["The range ends before it starts."]}
    assert api.get("/api/v1/links/", {"status": "lost"}).status_code == 400


# Actions


def test_refresh_asks_provet_and_shows_the_payment(api, invoice, key):
    link = create_link(draft_for(invoice, key[0].user))
    sandbox_control.settle_link(link.external_id, "pay")

    response = api.post(f"/api/v1/links/{link.code}/refresh/")

    assert response.status_code == 200
    body = response.json()
    assert body["payment_status"] == PaymentStatus.ACCEPTED
    assert body["status_words"] == {"text": "Paid", "tone": "good"}
    assert body["paid_at"] is not None


def test_refresh_asks_provet_at_most_every_five_seconds(api, invoice, key, monkeypatch):
    link = create_link(draft_for(invoice, key[0].user))
    api.post(f"/api/v1/links/{link.code}/refresh/")
    sandbox_control.settle_link(link.external_id, "pay")

    again = api.post(f"/api/v1/links/{link.code}/refresh/")

    assert again.json()["payment_status"] == PaymentStatus.PENDING  # not asked again yet


def test_refresh_while_provet_asked_to_wait_is_a_503_with_retry_after(api, invoice, key):
    link = create_link(draft_for(invoice, key[0].user))
    link.practice.paused_until = timezone.now() + dt.timedelta(seconds=42)
    link.practice.save(update_fields=["paused_until"])

    response = api.post(f"/api/v1/links/{link.code}/refresh/")

    assert response.status_code == 503
    assert 40 <= int(response["Retry-After"]) <= 42
    assert response.json()["type"] == "urn:paylinks:problem:provet-unavailable"


def test_cancel_stops_the_link_and_a_paid_link_is_a_409(api, invoice, key):
    link = create_link(draft_for(invoice, key[0].user, amount=Decimal("1.00")))

    response = api.post(f"/api/v1/links/{link.code}/cancel/")

    assert response.status_code == 200
    assert response.json()["status_words"]["text"] == "Cancelled"
    assert not PosTransaction.objects.filter(pk=link.postransaction_id).exists()
    paid = create_link(draft_for(invoice, key[0].user, amount=Decimal("1.00")))
    sandbox_control.settle_link(paid.external_id, "pay")
    refused = api.post(f"/api/v1/links/{paid.code}/cancel/")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "The client has already paid this link."


def test_send_again_makes_one_new_link_in_place_of_the_old(api, invoice, key):
    old = create_link(draft_for(invoice, key[0].user))

    response = api.post(f"/api/v1/links/{old.code}/send-again/")

    assert response.status_code == 201, response.content
    new = response.json()
    assert new["replaces"] == str(old.code) and new["amount"] == str(invoice.due_sum)
    assert api.get(f"/api/v1/links/{old.code}/").json()["replaced_by"] == new["code"]
    again = api.post(f"/api/v1/links/{old.code}/send-again/")
    assert again.status_code == 409
    assert again.json()["replaced_by"] == new["code"]
    assert again.json()["type"] == "urn:paylinks:problem:already-replaced"


def test_replace_makes_a_link_with_new_options_in_place_of_the_waiting_one(api, invoice, key):
    old = create_link(draft_for(invoice, key[0].user))

    response = api.post(
        f"/api/v1/links/{old.code}/replace/",
        {"delivery_method": 2, "email": "anna@example.com"},
    )

    assert response.status_code == 201, response.content
    new = PaymentLink.objects.get(code=response.json()["code"])
    old.refresh_from_db()
    assert old.cancelled_at is not None and new.replaces == old
    assert (new.amount, new.email, new.description) == (
        invoice.due_sum,
        "anna@example.com",
        old.description,
    )
    twice = api.post(f"/api/v1/links/{old.code}/replace/", {})
    assert twice.status_code == 409


def test_a_manager_key_and_a_reception_key_both_make_links(synced_practice, invoice):
    _, secret = make_key(synced_practice, role=APIKey.Role.MANAGER, name="Accounting")

    response = Api(secret).post("/api/v1/links/", invoice_link_body(invoice, amount="1"))

    assert response.status_code == 201
    assert Membership.objects.get(user__api_key__prefix=secret.split(".")[0]).role == "manager"


def test_provet_busy_is_a_503_with_retry_after_and_the_key_can_be_sent_again(api, invoice):
    add_fault(invoice.practice, kind="429", path="postransaction", method="POST", retry_after=7)
    body = invoice_link_body(invoice)

    busy = api.post("/api/v1/links/", body, key="busy-1")
    again = api.post("/api/v1/links/", body, key="busy-1")

    assert busy.status_code == 503
    assert busy["Retry-After"] == "7"
    assert busy.json()["type"] == "urn:paylinks:problem:provet-unavailable"
    assert "nothing was created" in busy.json()["detail"]
    assert again.status_code == 201  # nothing was done: the key was still free
