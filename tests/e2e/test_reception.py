"""A receptionist's day in a real browser: find, make, send, get paid, over real HTTP to Provet."""

import re
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from clinics.models import Practice
from clinics.phones import e164
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import PaymentLink
from sandbox.models import Client as ProvetClient
from sandbox.models import Invoice as ProvetInvoice
from sandbox.models import PosTransaction
from tests.conftest import PASSWORD, add_fault, draft_for

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/e2e-shots")
LINK_PAGE = re.compile(r"/links/[0-9a-f-]{36}/$")
# The status panel polls every 3 s and asks Provet at most every 4 s.
POLL_TIMEOUT = 20_000


def log_in(page: Page, live_server, user) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    """For a person to look at; kept out of the repository."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def textable_invoice(practice: Practice) -> ProvetInvoice:
    """A finalized, due Provet invoice whose client can get an SMS, in a Provet Pay department."""
    invoice = (
        ProvetInvoice.objects.filter(
            installation__provet_id=practice.provet_id,
            status=3,
            credit_note=False,
            due_sum__gt=0,
            department__allow_nhp_processing=True,
            client__no_sms=False,
            client__phone_numbers__isnull=False,
        )
        .select_related("client")
        .order_by("id")
        .first()
    )
    assert invoice is not None, "the seed has no invoice an SMS link can be made for"
    return invoice


def a_client_with_a_unique_name(practice: Practice) -> ProvetClient:
    people = ProvetClient.objects.filter(
        installation__provet_id=practice.provet_id, archived=False, organization_name=""
    ).exclude(lastname="")
    names = Counter(str(person) for person in people)
    return next(person for person in people.order_by("id") if names[str(person)] == 1)


def open_invoice_form(page: Page, live_server, invoice: ProvetInvoice) -> None:
    page.goto(f"{live_server.url}/invoices/{invoice.pk}/")
    expect(page.get_by_role("button", name="Create link")).to_be_visible()


def test_a_receptionist_texts_a_link_and_sees_it_paid_without_reloading(
    page, live_server, live_practice, live_receptionist
):
    invoice = textable_invoice(live_practice)
    number = f"{invoice.invoice_prefix}{invoice.invoice_number}"
    log_in(page, live_server, live_receptionist)

    page.get_by_label("Invoice number or client name").fill(str(invoice.invoice_number))
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=f"Make a link for invoice {number}").click()
    expect(page.get_by_role("heading", name=f"Invoice {number}")).to_be_visible()
    page.get_by_role("radio", name="SMS only").check()
    phone = page.get_by_label("Mobile phone").input_value()
    assert phone, "the client's mobile number is filled in from Provet"
    assert phone.startswith("0"), "as the desk writes it, in the national format"
    sent_to = e164(phone, live_practice.country)  # what Provet has and sends to
    screenshot(page, "1-invoice-form")
    page.get_by_role("button", name="Create link").click()

    expect(page).to_have_url(LINK_PAGE)
    status = page.get_by_test_id("payment-status")
    expect(status).to_have_text("Waiting for payment")
    expect(page.locator(".facts")).to_contain_text(phone)  # Sent to, as the desk writes it
    payer_url = page.get_by_label("Payment link").input_value()
    assert payer_url.startswith(live_server.url)
    screenshot(page, "2-link-page")
    page.evaluate("window.notReloaded = true")

    # The client's phone, in another tab: the SMS in Provet's outbox, then the payer's page.
    phone_tab = page.context.new_page()
    phone_tab.goto(f"{live_server.url}/sandbox/{live_practice.provet_id}/outbox/")
    sms = (
        phone_tab.get_by_role("row")
        # The sandbox labels the channel "Sms".
        .filter(has=phone_tab.get_by_role("cell", name=re.compile(r"^sms$", re.IGNORECASE)))
        .filter(has=phone_tab.get_by_role("cell", name=sent_to, exact=True))
        .filter(has_text=payer_url)
    )
    expect(sms).to_have_count(1)
    sms.get_by_role("link", name=payer_url).click()
    phone_tab.get_by_role("button", name="Pay").click()
    expect(phone_tab.get_by_role("status")).to_have_text(
        "Thank you! Your payment has been accepted."
    )
    phone_tab.close()

    expect(status).to_have_text("Paid", timeout=POLL_TIMEOUT)
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_role("button", name="Cancel link")).to_have_count(0)
    screenshot(page, "3-link-paid")


def test_a_prepayment_asking_to_save_the_card_for_a_plan_reaches_provet_as_such(
    page, live_server, live_practice, live_receptionist
):
    customer = a_client_with_a_unique_name(live_practice)
    department = live_practice.departments.filter(allow_nhp_processing=True).first()
    before = PosTransaction.objects.count()
    log_in(page, live_server, live_receptionist)

    page.goto(f"{live_server.url}/prepayments/new/")
    page.get_by_label("Client name").fill(str(customer))
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=str(customer), exact=True).click()
    page.get_by_label("Department").select_option(label=department.name)
    page.get_by_label("Amount").fill("40.00")
    page.get_by_role("radio", name="Don't send (copy the link or show the QR code)").check()
    page.get_by_text("Return address and card saving").click()
    page.get_by_role("radio", name="Ask the client").check()
    page.get_by_label("The saved card will be used for").select_option(
        label="A subscription or health plan"
    )
    page.get_by_role("button", name="Create link").click()

    expect(page).to_have_url(LINK_PAGE)
    expect(page.get_by_test_id("payment-status")).to_have_text("Waiting for payment")
    expect(page.get_by_text("Ask the client (Subscription)")).to_be_visible()
    assert PosTransaction.objects.count() == before + 1
    posted = PosTransaction.objects.latest("id")
    assert posted.tokenize == "ask"
    assert posted.recurring_model == "subscription"
    assert posted.invoice_id is None
    assert posted.prepayment_client_id == customer.pk


def test_a_bad_phone_number_is_shown_at_its_field_and_creates_nothing(
    page, live_server, live_practice, live_receptionist
):
    invoice = textable_invoice(live_practice)
    before = PosTransaction.objects.count()
    log_in(page, live_server, live_receptionist)
    open_invoice_form(page, live_server, invoice)

    page.get_by_role("radio", name="SMS only").check()
    page.get_by_label("Mobile phone").fill("12345")
    page.get_by_role("button", name="Create link").click()

    phone = page.get_by_label("Mobile phone")
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below.")
    expect(phone).to_have_value("12345")
    field = page.locator(".field").filter(has=phone)
    expect(field).to_contain_text("This is not a valid phone number")
    assert not PaymentLink.objects.exists()
    assert PosTransaction.objects.count() == before
    screenshot(page, "4-bad-phone")
    # A screen reader reads the message with the field only if the field points at it.
    # The page is complete by now: no need to wait long for what isn't coming.
    expect(phone).to_have_accessible_description(
        re.compile("This is not a valid phone number"), timeout=1_000
    )


def test_clicking_create_again_while_provet_is_slow_makes_one_link(
    page, live_server, live_practice, live_receptionist
):
    invoice = textable_invoice(live_practice)
    before = PosTransaction.objects.count()
    log_in(page, live_server, live_receptionist)
    open_invoice_form(page, live_server, invoice)
    add_fault(
        live_practice, path="postransaction/$", method="POST", kind="latency", latency_ms=1500
    )

    page.get_by_role("radio", name="Don't send (copy the link or show the QR code)").check()
    create = page.get_by_role("button", name="Create link")
    where = create.bounding_box()
    with page.expect_request(lambda request: request.method == "POST"):
        create.dblclick()
    # Nothing seems to happen, so the receptionist clicks again. The mouse, not the locator:
    # a locator would wait for the first submission's page to load.
    page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)

    expect(page).to_have_url(LINK_PAGE)
    expect(page.get_by_test_id("payment-status")).to_have_text("Waiting for payment")
    assert PaymentLink.objects.count() == 1
    assert PosTransaction.objects.count() == before + 1


def test_a_receptionist_of_another_practice_gets_404_for_the_link(
    page, live_server, live_practice, live_receptionist, live_outsider
):
    invoice = refresh_invoice(live_practice, textable_invoice(live_practice).pk)
    link = create_link(draft_for(invoice, live_receptionist))
    log_in(page, live_server, live_outsider)

    response = page.goto(f"{live_server.url}/links/{link.code}/")

    assert response.status == 404
    expect(page.get_by_label("Payment link")).to_have_count(0)
    expect(page.get_by_text(invoice.client_name)).to_have_count(0)
    assert page.goto(f"{live_server.url}/links/{link.code}/status/").status == 404
