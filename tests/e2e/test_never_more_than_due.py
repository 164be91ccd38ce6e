"""A link asks for what the receptionist meant, reaches a phone that can take it, and is sent
again once: in a real browser, over real HTTP to the Provet sandbox."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from clinics.models import Membership, Profile
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import PaymentLink
from sandbox.models import PosTransaction
from tests.conftest import draft_for, make_user, sandbox_invoice
from tests.e2e.test_locales import log_in_by_id
from tests.e2e.test_reception import LINK_PAGE, log_in, open_invoice_form

pytestmark = pytest.mark.e2e

DONT_SEND = "Don't send (copy the link or show the QR code)"


def screenshot(page: Page, name: str) -> Path:
    """For a person to look at; kept out of the repository."""
    path = Path(f"/tmp/e2e_{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


def new_context_page(browser: Browser, **options) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def localized_page(browser: Browser, transactional_db, locale: str) -> Page:
    """A browser profile whose language and number format are `locale`'s."""
    page = new_context_page(browser, locale=locale)
    yield page
    page.context.close()


@pytest.fixture
def colleague_page(browser: Browser, transactional_db) -> Page:
    """A second browser profile, for a second person at the desk."""
    page = new_context_page(browser)
    yield page
    page.context.close()


@pytest.mark.parametrize("locale", ["en-US", "fi-FI"])
def test_an_amount_typed_with_a_decimal_comma_is_charged_as_meant(
    localized_page, locale, live_server, live_practice, live_receptionist
):
    page = localized_page
    invoice = sandbox_invoice(
        live_practice, due_sum__gte=Decimal("12.50"), postransactions__isnull=True
    )
    assert invoice is not None, "the seed has no invoice with 12.50 free to ask for"
    number = f"{invoice.invoice_prefix}{invoice.invoice_number}"
    # The pages in English whatever the browser's language, so its words are found; the
    # browser's locale still types the comma (tests/e2e/test_locales.py checks Finnish pages).
    Profile.objects.create(user=live_receptionist, language="en-gb")
    log_in_by_id(page, live_server, live_receptionist)  # the login page is in the browser's
    assert page.evaluate("navigator.language") == locale

    page.get_by_label("Invoice number or client name").fill(str(invoice.invoice_number))
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=f"Make a link for invoice {number}").click()
    expect(page.get_by_role("heading", name=f"Invoice {number}")).to_be_visible()
    amount = page.get_by_label("Amount")
    # A type=number field read 12,50 as 1250 in some browsers' locales.
    expect(amount).to_have_attribute("type", "text")
    expect(amount).to_have_attribute("inputmode", "decimal")
    amount.fill("")
    amount.press_sequentially("12,50")
    page.get_by_role("radio", name=DONT_SEND).check()

    charge = page.get_by_text("The link will ask for")
    expect(charge).to_have_text("The link will ask for €12.50")
    screenshot(page, f"amount_comma_{locale}")
    page.get_by_role("button", name="Create link").click()

    expect(page).to_have_url(LINK_PAGE)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^€12\.50 from "))
    assert PaymentLink.objects.get().amount == Decimal("12.50")
    assert PosTransaction.objects.get(invoice_id=invoice.pk).amount == Decimal("12.50")


def test_a_landline_for_an_sms_is_refused_at_the_phone_field_and_creates_nothing(
    page, live_server, live_practice, live_receptionist
):
    invoice = sandbox_invoice(live_practice)
    posted_before = PosTransaction.objects.filter(invoice_id=invoice.pk).count()
    log_in(page, live_server, live_receptionist)
    open_invoice_form(page, live_server, invoice)

    page.get_by_role("radio", name="SMS only").check()
    page.get_by_label("Mobile phone").fill("09 123 4567")  # a Helsinki landline
    page.get_by_role("button", name="Create link").click()

    phone = page.get_by_label("Mobile phone")
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below.")
    expect(phone).to_have_value("09 123 4567")
    field = page.locator(".field").filter(has=phone)
    expect(field).to_contain_text("not a mobile number")
    expect(phone).to_have_accessible_description(re.compile("not a mobile number"))
    screenshot(page, "landline")
    assert PaymentLink.objects.count() == 0
    assert PosTransaction.objects.filter(invoice_id=invoice.pk).count() == posted_before


def test_send_again_on_a_page_that_was_already_sent_again_leads_to_the_new_link(
    page, colleague_page, live_server, live_practice, live_receptionist
):
    provet_invoice = sandbox_invoice(live_practice, postransactions__isnull=True)
    invoice = refresh_invoice(live_practice, provet_invoice.id)
    old = create_link(draft_for(invoice, live_receptionist))
    colleague = make_user("mikko", live_practice, Membership.Role.RECEPTION)
    old_page = f"{live_server.url}/links/{old.code}/"
    tab_a, tab_b = page, colleague_page
    for tab, user in [(tab_a, live_receptionist), (tab_b, colleague)]:
        tab.on("dialog", lambda dialog: dialog.accept())  # "Send a new link? ..."
        log_in(tab, live_server, user)
        tab.goto(old_page)
        expect(tab.get_by_role("button", name="Send again")).to_be_visible()
    # Tab B has not caught up (a background tab, a dropped connection): its polls get nothing.
    tab_b.route(re.compile(r"/status/$"), lambda route: route.abort())

    tab_a.get_by_role("button", name="Send again").click()
    expect(tab_a).not_to_have_url(old_page)
    expect(tab_a).to_have_url(LINK_PAGE)
    new = PaymentLink.objects.get(replaces=old)
    assert tab_a.url == f"{live_server.url}/links/{new.code}/"

    tab_b.get_by_role("button", name="Send again").click()
    expect(tab_b).to_have_url(f"{live_server.url}/links/{new.code}/")
    expect(tab_b.get_by_role("status").filter(has_text="already sent again")).to_contain_text(
        "This link was already sent again by riikka"
    )
    assert PaymentLink.objects.filter(replaces=old).count() == 1
    # In Provet, the old link is gone (cancelled) and the invoice has the new one only.
    posted = PosTransaction.objects.filter(invoice_id=invoice.provet_id)
    assert [transaction.id for transaction in posted] == [new.postransaction_id]

    tab_b.goto(old_page)
    expect(tab_b.get_by_test_id("payment-status")).to_have_text(re.compile("Cancelled|Replaced"))
    expect(tab_b.get_by_role("button", name="Send again")).to_have_count(0)
    replaced_by = f"Replaced by a new link for €{new.amount:,}."
    expect(tab_b.get_by_text(replaced_by, exact=True)).to_be_visible()
    tab_b.get_by_role("link", name=f"a new link for €{new.amount:,}").click()
    expect(tab_b).to_have_url(f"{live_server.url}/links/{new.code}/")
