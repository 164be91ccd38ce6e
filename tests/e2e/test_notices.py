"""A receptionist on any page hears of a payment: the client pays in the sandbox, Provet's
webhook reaches PayLinks over HTTP, and the notice appears without a reload."""

import re

import pytest
from playwright.sync_api import Page, expect

from clinics.models import Practice, webhook_path
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import NoticeDismissal, PaymentLink
from sandbox import control
from sandbox.models import Webhook
from tests.conftest import draft_for
from tests.e2e.test_reception import log_in, screenshot, textable_invoice

pytestmark = pytest.mark.e2e

# The notices are polled every 5 s; the webhook's follow-up reads Provet at once.
NOTICE_TIMEOUT = 20_000
# The page's first request for its notices (no event seen yet), and the polls after it.
FIRST_LOAD = re.compile(r"/notices/\?after=$")
POLL = re.compile(r"/notices/\?after=\d+$")


@pytest.fixture
def link(live_practice: Practice, live_receptionist, live_server) -> PaymentLink:
    """A link the receptionist made, and Provet told to call PayLinks when an invoice is paid."""
    control.add_webhook(
        live_practice.provet_id,
        live_server.url + webhook_path(live_practice.webhook_secret),
        trigger=Webhook.Trigger.INVOICE_PAYMENT,
    )
    invoice = refresh_invoice(live_practice, textable_invoice(live_practice).pk)
    return create_link(draft_for(invoice, live_receptionist))


def client_pays(page: Page, link: PaymentLink) -> None:
    """The client, on their phone: the payer page, Pay."""
    phone = page.context.new_page()
    phone.goto(link.payer_url)
    phone.get_by_role("button", name="Pay").click()
    expect(phone.get_by_role("status")).to_have_text("Thank you! Your payment has been accepted.")
    phone.close()


def test_a_receptionist_on_another_page_sees_the_payment_and_dismisses_it_for_good(
    page, live_server, live_receptionist, link
):
    words = f"Paid: invoice {link.invoice}, €{link.amount:,}"
    log_in(page, live_server, live_receptionist)
    with page.expect_response(FIRST_LOAD):
        page.goto(f"{live_server.url}/links/")
    notices = page.get_by_role("status", name="Payment notices")
    expect(notices.get_by_role("link")).to_have_count(0)
    page.evaluate("window.notReloaded = true")

    client_pays(page, link)

    notice = notices.get_by_role("link", name=words)
    expect(notice).to_be_visible(timeout=NOTICE_TIMEOUT)
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "notice-paid")

    # The keyboard dismisses it.
    dismiss = notices.get_by_role("button", name=f"Dismiss: {words}")
    dismiss.focus()
    with page.expect_response(re.compile(r"/notices/dismiss/")):
        page.keyboard.press("Enter")
    expect(notice).to_have_count(0)
    # Focus doesn't fall to the top of the page with the notice: it stays in the content.
    assert page.evaluate("document.activeElement.id") == "main"
    assert NoticeDismissal.objects.filter(user=live_receptionist, link=link).count() == 1

    # Gone after a reload, and after the polls that follow it.
    with page.expect_response(FIRST_LOAD):
        page.reload()
    expect(notices.get_by_role("link")).to_have_count(0)
    with page.expect_response(POLL, timeout=NOTICE_TIMEOUT):
        pass
    expect(notices.get_by_role("link")).to_have_count(0)


def test_the_reception_list_shows_the_payment_without_a_reload(
    page, live_server, live_receptionist, link
):
    log_in(page, live_server, live_receptionist)
    today = page.get_by_role("region", name="Today and still open")
    row = today.get_by_role("row").filter(has_text=link.client_name)
    expect(row).to_contain_text("Waiting for payment")
    page.evaluate("window.notReloaded = true")

    client_pays(page, link)

    expect(row).to_contain_text("Paid", timeout=NOTICE_TIMEOUT)
    assert page.evaluate("window.notReloaded") is True
    # The notice arrived with it, and leads to the link's page.
    notice = page.get_by_role("status", name="Payment notices").get_by_role("link")
    expect(notice).to_have_count(1)
    screenshot(page, "notice-home")
    notice.click()
    expect(page).to_have_url(f"{live_server.url}/links/{link.code}/")
    expect(page.get_by_test_id("payment-status")).to_have_text("Paid")
