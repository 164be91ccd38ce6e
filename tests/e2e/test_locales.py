"""The reception flow in the person's language and the practice's country, in a real browser:
a Finnish receptionist at a Finnish practice sees 192,81 €, 040 671 6444 and 10.41; an English
one at a UK practice sees £345.58 and 07700 100123.

The pages' words follow the catalogs, which may not have every new string yet: these tests find
things by their ids and addresses, and check the formats, not the words."""

import re

import pytest
from django.utils import translation
from playwright.sync_api import Page, expect

from clinics import formats
from clinics.models import Membership, Practice, Profile
from clinics.phones import e164
from clinics.sync import sync_departments
from paylinks.models import PaymentLink
from tests.conftest import PASSWORD, make_practice, make_user, time_as_read
from tests.e2e.test_reception import LINK_PAGE, screenshot, textable_invoice

pytestmark = pytest.mark.e2e


@pytest.fixture
def uk_practice(transactional_db, seeded, live_server) -> Practice:
    """The sandbox's UK installation (Riverside, GBP), reached over HTTP at the live server."""
    practice = make_practice(seeded[1], live_server.url)
    assert (practice.country, practice.currency) == ("GB", "GBP")
    sync_departments(practice)
    return practice


def log_in_by_id(page: Page, live_server, user) -> None:
    """Log in without reading the page's words (they are in the person's language after it)."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    expect(page.locator("#invoice-search")).to_be_visible()


def make_a_link_at_the_desk(page: Page, live_server, practice: Practice, user):
    """Search the invoice, open its form, make a link handed over at the desk: (the Provet
    invoice, the form's phone, the invoice page's text, the link page's text, the link)."""
    invoice = textable_invoice(practice)
    log_in_by_id(page, live_server, user)

    page.locator("#invoice-search").fill(str(invoice.invoice_number))
    page.locator("#invoice-search").press("Enter")
    page.locator(f'#invoice-results a[href="/invoices/{invoice.pk}/"]').click()
    expect(page.locator("#invoice-heading")).to_be_visible()
    invoice_text = page.locator("main").inner_text()
    phone = page.locator("#id_phone").input_value()

    page.locator('input[name="delivery_method"][value="0"]').check()  # don't send: hand it over
    page.locator('section[aria-labelledby="form-heading"] button[type=submit]').click()
    expect(page).to_have_url(LINK_PAGE)
    expect(page.locator("#link-heading")).to_be_visible()
    link = PaymentLink.objects.get(practice=practice, invoice__provet_id=invoice.pk)
    return invoice, phone, invoice_text, page.locator("main").inner_text(), link


def test_a_finnish_receptionist_at_a_finnish_practice_sees_finnish_formats(
    page, live_server, live_practice, live_receptionist
):
    Profile.objects.create(user=live_receptionist, language="fi")
    invoice, phone, invoice_page, link_page, link = make_a_link_at_the_desk(
        page, live_server, live_practice, live_receptionist
    )
    assert page.locator("html").get_attribute("lang") == "fi"
    with translation.override("fi"):
        due = formats.money(invoice.due_sum, "EUR")
    # 192,81 €: a decimal comma, the euro sign after a non-breaking space.
    assert re.fullmatch(r"\d{1,3}(\xa0\d{3})*,\d\d\xa0€", due)
    assert due in invoice_page
    assert due in link_page
    assert link.amount == invoice.due_sum

    # The client's mobile as Finns write it, and read back as the same number.
    assert re.fullmatch(r"040 \d{3} \d{4}", phone), phone
    assert link.phone in ("", e164(phone, "FI"))

    # The time the link was made: 10.41, with a period.
    made = time_as_read(link.created_at, "fi", live_practice.zone)
    assert re.fullmatch(r"\d{1,2}\.\d\d", made), made
    assert re.search(rf"(?<![\d:.]){re.escape(made)}(?![\d:])", link_page), link_page
    assert made.replace(".", ":") not in link_page
    screenshot(page, "locales-fi-link")


def test_an_english_receptionist_at_a_uk_practice_sees_pounds_and_uk_phones(
    page, live_server, uk_practice
):
    emma = make_user("emma", uk_practice, Membership.Role.RECEPTION)
    Profile.objects.create(user=emma, language="en-gb")
    invoice, phone, invoice_page, link_page, link = make_a_link_at_the_desk(
        page, live_server, uk_practice, emma
    )
    with translation.override("en-gb"):
        due = formats.money(invoice.due_sum, "GBP")
    assert re.fullmatch(r"£\d{1,3}(,\d{3})*\.\d\d", due)
    assert due in invoice_page
    assert due in link_page
    assert "EUR" not in link_page and "€" not in link_page

    # A UK mobile in the national format, never the Finnish one.
    assert re.fullmatch(r"07\d{3} \d{6}", phone), phone
    made = time_as_read(link.created_at, "en-gb", uk_practice.zone)
    assert re.fullmatch(r"\d\d:\d\d", made), made
    assert made in link_page

    # The search's example is a British surname.
    page.goto(f"{live_server.url}/")
    placeholder = page.locator("#invoice-search").get_attribute("placeholder") or ""
    assert "Smith" in placeholder and "Virtanen" not in placeholder
    screenshot(page, "locales-gb-home")
