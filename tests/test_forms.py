"""Every rule of DESIGN.md "Rules for input", each failure at its field in plain words."""

from decimal import Decimal

import pytest
from django.utils import timezone

from clinics.models import Department, Practice
from clinics.phones import e164
from paylinks.forms import InvoiceLinkForm, PrepaymentLinkForm, new_form_token
from paylinks.models import Invoice, InvoiceStatus, PaymentLink
from tests.conftest import time_as_read


@pytest.fixture
def offline_practice(db) -> Practice:
    return Practice.objects.create(
        name="Northvale", domain="provetcloud.com", provet_id=4, country="FI", currency="EUR"
    )


@pytest.fixture
def department(offline_practice) -> Department:
    return Department.objects.create(
        practice=offline_practice, provet_id=1, name="Helsinki", allow_nhp_processing=True
    )


@pytest.fixture
def invoice(offline_practice, department) -> Invoice:
    return Invoice.objects.create(
        practice=offline_practice,
        provet_id=10,
        number="NV-10010",
        status=InvoiceStatus.FINALIZED,
        client_name="Maija Laine",
        department=department,
        total_with_vat=Decimal("120.50"),
        due_sum=Decimal("120.50"),
        fetched_at=timezone.now(),
    )


def valid(**changes) -> dict:
    data = {
        "amount": "120.50",
        "delivery_method": "1",
        "email": "maija@example.com",
        "phone": "040 123 4567",
        "description": "Payment for invoice NV-10010 – Northvale",
        "duration": "2880",
        "custom_minutes": "",
        "return_url": "",
        "tokenize": "",
        "recurring_model": "",
        "form_token": new_form_token(),
    }
    data.update(changes)
    return data


def invoice_form(invoice, **changes) -> InvoiceLinkForm:
    return InvoiceLinkForm(valid(**changes), practice=invoice.practice, invoice=invoice)


def errors(form) -> dict:
    form.is_valid()
    return {key: " ".join(value) for key, value in form.errors.items()}


def test_a_complete_form_is_valid_and_the_phone_becomes_e164(invoice):
    form = invoice_form(invoice)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["phone"] == "+358401234567"
    assert form.cleaned_data["duration_minutes"] == 2880
    assert form.cleaned_data["amount"] == Decimal("120.50")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "must be more than zero"),
        ("-5", "must be more than zero"),
        ("12.345", "at most two decimals"),
        ("abc", "as a number"),
        ("", "Enter the amount"),
    ],
)
def test_the_amount_must_be_positive_with_two_decimals(invoice, amount, message):
    assert message in errors(invoice_form(invoice, amount=amount))["amount"]


def test_the_amount_cannot_exceed_what_is_due(invoice):
    assert "Only €120.50 is due" in errors(invoice_form(invoice, amount="120.51"))["amount"]


def test_a_department_without_provet_pay_is_refused(invoice, department):
    department.allow_nhp_processing = False
    department.save()
    assert "Provet Pay is not allowed in Helsinki" in errors(invoice_form(invoice))["__all__"]


@pytest.mark.parametrize(
    ("status", "credit_note", "message"),
    [
        (InvoiceStatus.DRAFT, False, "only a finalized invoice can be paid"),
        (InvoiceStatus.VOIDED, False, "only a finalized invoice can be paid"),
        (InvoiceStatus.FINALIZED, True, "is a credit note"),
    ],
)
def test_only_a_finalized_invoice_that_is_not_a_credit_note_can_be_paid(
    invoice, status, credit_note, message
):
    invoice.status = status
    invoice.credit_note = credit_note
    assert message in errors(invoice_form(invoice))["__all__"]


def test_an_invalid_email_is_refused(invoice):
    assert "not a valid email" in errors(invoice_form(invoice, email="maija@"))["email"]


@pytest.mark.parametrize("phone", ["12345", "+358 123", "not a number", "+1 555 0100 99999"])
def test_an_invalid_phone_is_refused_with_an_example(invoice, phone):
    message = errors(invoice_form(invoice, phone=phone))["phone"]
    assert "not a valid phone number" in message
    assert "+358" in message  # an example in the practice's own format


def test_phone_numbers_are_read_in_the_practice_s_country():
    assert e164("07400 123456", "GB") == "+447400123456"
    assert e164("+358 40 123 4567", "GB") == "+358401234567"


def test_sms_needs_a_phone_and_email_needs_an_email(invoice):
    assert "mobile number" in errors(invoice_form(invoice, delivery_method="3", phone=""))["phone"]
    assert "email address" in errors(invoice_form(invoice, delivery_method="2", email=""))["email"]
    both = errors(invoice_form(invoice, delivery_method="1", phone="", email=""))
    assert {"phone", "email"} <= both.keys()


def test_dont_send_needs_neither(invoice):
    assert invoice_form(invoice, delivery_method="0", phone="", email="").is_valid()


def test_the_client_s_no_sms_and_no_email_wishes_are_respected(invoice):
    invoice.client_no_sms = True
    assert "not to get text messages" in errors(invoice_form(invoice))["delivery_method"]
    assert invoice_form(invoice, delivery_method="2").is_valid()
    invoice.client_no_sms, invoice.client_no_email = False, True
    assert (
        "not to get emails" in errors(invoice_form(invoice, delivery_method="2"))["delivery_method"]
    )


def test_card_saving_needs_a_recurring_model(invoice):
    message = errors(invoice_form(invoice, tokenize="ask"))["recurring_model"]
    assert "Choose how the saved card will be used" in message
    assert invoice_form(invoice, tokenize="ask", recurring_model="one-off").is_valid()


def test_saving_the_card_outright_needs_recorded_consent(invoice):
    form = invoice_form(invoice, tokenize="yes", recurring_model="subscription")
    assert "needs the client's consent" in errors(form)["consent"]
    form = invoice_form(invoice, tokenize="yes", recurring_model="subscription", consent="on")
    assert form.is_valid()


def test_without_card_saving_no_recurring_model_or_consent_is_kept(invoice):
    form = invoice_form(invoice, recurring_model="subscription", consent="on")
    assert form.is_valid()
    assert form.cleaned_data["recurring_model"] == ""
    assert form.cleaned_data["consent"] is False


def test_the_return_url_must_be_https_and_short(invoice):
    assert (
        "https://"
        in errors(invoice_form(invoice, return_url="http://clinic.example"))["return_url"]
    )
    too_long = "https://clinic.example/" + "a" * 2000
    assert "too long" in errors(invoice_form(invoice, return_url=too_long))["return_url"]
    assert invoice_form(invoice, return_url="https://clinic.example/thanks").is_valid()


def test_plain_http_return_urls_are_allowed_only_for_a_sandbox_practice(invoice):
    invoice.practice.base_url = "http://127.0.0.1:8000/sandbox/4/"
    assert invoice_form(invoice, return_url="http://127.0.0.1:8000/thanks").is_valid()


@pytest.mark.parametrize(
    ("minutes", "message"),
    [("4", "at least 5 minutes"), ("43201", "at most 30 days"), ("", "how many minutes")],
)
def test_a_custom_duration_stays_within_five_minutes_and_thirty_days(invoice, minutes, message):
    form = invoice_form(invoice, duration="custom", custom_minutes=minutes)
    assert message in errors(form)["custom_minutes"]


def test_a_custom_duration_is_used(invoice):
    form = invoice_form(invoice, duration="custom", custom_minutes="90")
    assert form.is_valid()
    assert form.cleaned_data["duration_minutes"] == 90


def test_the_description_is_at_most_255_characters(invoice):
    assert "255 characters" in errors(invoice_form(invoice, description="x" * 256))["description"]


def waiting_link(invoice, department, amount: str) -> PaymentLink:
    return PaymentLink.objects.create(
        practice=invoice.practice,
        invoice=invoice,
        department=department,
        amount=Decimal(amount),
        currency="EUR",
        duration_minutes=60,
        idempotency_key=new_form_token(),
        state=PaymentLink.State.ACTIVE,
        payment_status=1,
    )


def test_a_second_full_link_for_an_invoice_is_refused_at_the_amount(invoice, department):
    waiting_link(invoice, department, "120.50")
    message = errors(invoice_form(invoice))["amount"]
    assert "already ask for €120.50 of the €120.50 due" in message
    assert "at most €0.00 is free" in message


def test_a_bill_can_be_split_up_to_what_is_still_free(invoice, department):
    waiting_link(invoice, department, "100.00")
    form = InvoiceLinkForm(practice=invoice.practice, invoice=invoice)
    assert (form.free, form.initial_amount()) == (Decimal("20.50"), Decimal("20.50"))
    assert invoice_form(invoice, amount="20.50").is_valid()
    assert "at most €20.50 is free" in errors(invoice_form(invoice, amount="20.51"))["amount"]


def test_replacing_the_waiting_link_frees_what_it_asked_for(invoice, department):
    waiting = waiting_link(invoice, department, "120.50")
    form = InvoiceLinkForm(practice=invoice.practice, invoice=invoice)
    assert form.initial_replace() == str(waiting.code)  # nothing free: replacing is likely
    form = invoice_form(invoice, replace=str(waiting.code))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["replace"] == waiting


def test_a_link_that_is_no_longer_waiting_cannot_be_replaced(invoice, department):
    waiting = waiting_link(invoice, department, "120.50")
    PaymentLink.objects.filter(pk=waiting.pk).update(payment_status=5, state="closed")
    assert (
        "no longer waiting" in errors(invoice_form(invoice, replace=str(waiting.code)))["replace"]
    )


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("12,50", "12.50"), ("12.50", "12.50"), ("12.5", "12.50"), ("12,5", "12.50"), (" 12 ", "12")],
)
def test_a_decimal_comma_or_point_gives_the_same_amount(invoice, typed, amount):
    form = invoice_form(invoice, amount=typed)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["amount"] == Decimal(amount)
    assert form.amount_to_charge() == Decimal(amount)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1.250,50", "one decimal separator"),
        ("1,250.50", "one decimal separator"),
        ("12,505", "at most two decimals"),
        ("12 50", "as a number"),
        ("€12", "as a number"),
        ("١٢", "as a number"),
        ("1e3", "as a number"),
        ("99999999999", "too large"),
    ],
)
def test_an_amount_that_could_mean_two_things_gets_a_message(invoice, typed, message):
    form = invoice_form(invoice, amount=typed)
    assert message in errors(form)["amount"]
    assert form.amount_to_charge() is None


def test_the_amount_field_is_text_with_a_decimal_keyboard(invoice):
    html = str(invoice_form(invoice)["amount"])
    assert 'type="text"' in html and 'inputmode="decimal"' in html


def test_sms_needs_a_mobile_number_not_a_landline(invoice):
    landline = errors(invoice_form(invoice, phone="09 123 4567", delivery_method="3"))
    assert "not a mobile number" in landline["phone"]
    assert invoice_form(invoice, phone="09 123 4567", delivery_method="2").is_valid()
    assert invoice_form(invoice, phone="040 123 4567", delivery_method="3").is_valid()


def test_a_tampered_form_token_is_refused(invoice):
    assert "expired" in errors(invoice_form(invoice, form_token="x"))["form_token"]


def test_a_prepayment_needs_a_department_that_allows_provet_pay(offline_practice, department):
    closed = Department.objects.create(
        practice=offline_practice, provet_id=2, name="Equine", allow_nhp_processing=False
    )
    form = PrepaymentLinkForm(
        valid(client="5", department=str(closed.pk)), practice=offline_practice
    )
    assert "Provet Pay is not allowed in Equine" in errors(form)["department"]
    form = PrepaymentLinkForm(
        valid(client="5", department=str(department.pk)), practice=offline_practice
    )
    assert form.is_valid(), form.errors


def test_a_link_awaiting_review_counts_once_for_each_provet_link_it_could_be(invoice, department):
    undecided = waiting_link(invoice, department, "60.00")
    PaymentLink.objects.filter(pk=undecided.pk).update(
        state=PaymentLink.State.UNKNOWN, needs_review=True, review_candidates=[11, 12]
    )
    assert invoice.asked_for() == Decimal("120.00")  # either candidate can still be paid
    assert "at most €0.50 is free" in errors(invoice_form(invoice, amount="60.00"))["amount"]


def test_the_replace_choices_name_amounts_and_times_the_reader_s_way(invoice, department):
    from django.utils import translation

    waiting = waiting_link(invoice, department, "100.00")
    form = InvoiceLinkForm(practice=invoice.practice, invoice=invoice)
    labels = dict(form.fields["replace"].choices)
    assert labels[""] == "A new link for what is still free (€20.50)"
    assert labels[str(waiting.code)].startswith("In place of the link for €100.00 made ")
    assert (
        time_as_read(waiting.created_at, "en-gb", invoice.practice.zone)
        in labels[str(waiting.code)]
    )
    with translation.override("fi"):
        form = InvoiceLinkForm(practice=invoice.practice, invoice=invoice)
        labels = dict(form.fields["replace"].choices)
    assert "20,50\xa0€" in labels[""]
    assert "100,00\xa0€" in labels[str(waiting.code)]
    assert (
        time_as_read(waiting.created_at, "fi", invoice.practice.zone) in labels[str(waiting.code)]
    )
