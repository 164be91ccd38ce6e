"""What the pages show in a real browser: a paid link, errors, error pages, and the layout at
the widths a front desk uses."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from clinics.models import Membership
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.models import PaymentLink, PaymentStatus
from sandbox import control
from tests.conftest import draft_for, make_user
from tests.e2e.test_reception import (
    POLL_TIMEOUT,
    log_in,
    open_invoice_form,
    textable_invoice,
)
from tests.test_dashboard import make_link

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/e2e-shots")


def screenshot(page: Page, name: str) -> None:
    """For a person to look at; kept out of the repository."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_a_paid_link_stops_offering_the_qr_code_while_the_page_is_open(
    page, live_server, live_practice, live_receptionist
):
    invoice = refresh_invoice(live_practice, textable_invoice(live_practice).pk)
    link = create_link(draft_for(invoice, live_receptionist, amount=Decimal("12.50")))
    log_in(page, live_server, live_receptionist)
    page.goto(f"{live_server.url}/links/{link.code}/")
    expect(page.get_by_role("button", name="Copy link")).to_be_visible()
    expect(page.get_by_role("img", name="QR code of the payment link")).to_be_visible()
    expect(page.get_by_role("button", name="Check now")).to_be_visible()

    control.settle_link(link.external_id, "pay")  # the client pays on their phone

    expect(page.get_by_test_id("payment-status")).to_have_text("Paid", timeout=POLL_TIMEOUT)
    expect(page.get_by_test_id("paid-summary")).to_contain_text("€12.50 paid")
    expect(page.get_by_role("button", name="Copy link")).to_have_count(0)
    expect(page.get_by_role("img", name="QR code of the payment link")).to_have_count(0)
    expect(page.get_by_role("button", name="Check now")).to_have_count(0)
    history = page.locator("#link-events")
    expect(history).to_contain_text("Link made, to hand over")
    expect(history).to_contain_text("Checked automatically")
    expect(history).not_to_contain_text("→")
    screenshot(page, "link-paid-live")


def focused_summary(page: Page) -> str:
    return page.evaluate(
        "document.activeElement && document.activeElement.matches('[data-error-summary]')"
        " ? document.activeElement.textContent : ''"
    )


def test_focus_moves_to_the_error_summary_after_a_failed_submit(
    page, live_server, live_practice, live_receptionist
):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(live_receptionist.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("don't match")
    assert "don't match" in focused_summary(page)

    log_in(page, live_server, live_receptionist)
    open_invoice_form(page, live_server, textable_invoice(live_practice))
    page.get_by_role("radio", name="SMS only").check()
    page.get_by_label("Mobile phone").fill("12345")
    page.get_by_role("button", name="Create link").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below.")
    assert "Mobile phone: This is not a valid phone number" in focused_summary(page)
    # The summary's entry takes the person to the field.
    page.get_by_role("link", name="Mobile phone: This is not a valid phone number").click()
    expect(page.get_by_label("Mobile phone")).to_be_focused()

    page.goto(f"{live_server.url}/links/?created_from=2025-03-10&created_to=2025-03-01")
    assert "The range ends before it starts." in focused_summary(page)


def test_the_404_page_keeps_the_top_bar_and_says_what_to_do(
    page, live_server, live_practice, live_receptionist
):
    log_in(page, live_server, live_receptionist)
    response = page.goto(f"{live_server.url}/links/00000000-0000-4000-8000-000000000000/")
    assert response.status == 404
    bar = page.get_by_role("banner")
    expect(bar.get_by_role("link", name="Reception")).to_be_visible()
    expect(bar).to_contain_text(live_practice.name)
    expect(page.get_by_role("heading", name="What you can do")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="the list of links").click()
    expect(page.get_by_role("heading", name="Payment links")).to_be_visible()


@pytest.fixture
def big_month(live_practice):
    """A busy month of a large practice: amounts with thousands and decimals."""
    manager = make_user("mikko", live_practice, Membership.Role.MANAGER)
    department = live_practice.departments.filter(allow_nhp_processing=True).first()
    now = timezone.now()
    for n, (amount, fate) in enumerate(
        [
            ("123456.78", {"paid": now - dt.timedelta(hours=1)}),
            ("98765.43", {}),
            ("45678.90", {"state": "closed", "payment_status": PaymentStatus.EXPIRED}),
        ]
    ):
        make_link(
            live_practice,
            department,
            manager,
            created=now - dt.timedelta(hours=2 + n),
            amount=Decimal(amount),
            **fate,
        )
    return manager


def number_lines(page: Page) -> list[int]:
    """How many lines each tile's number takes (its first text node: the number itself)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.tile-value')].map((value) => {
            const range = document.createRange();
            range.selectNodeContents(value.firstChild);
            const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            return tops.size;
        })"""
    )


@pytest.mark.parametrize("width", [820, 1280])
def test_an_amount_never_wraps_inside_the_number_on_the_dashboard(
    page, live_server, big_month, width
):
    page.set_viewport_size({"width": width, "height": 1000})
    log_in(page, live_server, big_month)
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("link", name="Paid €123,456.78 1 link")).to_be_visible()
    assert number_lines(page) and set(number_lines(page)) == {1}
    overflowing = page.evaluate(
        "[...document.querySelectorAll('.tile')].filter((t) => t.scrollWidth > t.clientWidth)"
        ".length"
    )
    assert overflowing == 0
    screenshot(page, f"dashboard-tiles-{width}")


@pytest.fixture
def busy_desk(live_practice, live_receptionist):
    """Today at a busy desk: long names, large amounts and every kind of status."""
    department = live_practice.departments.filter(allow_nhp_processing=True).first()
    now = timezone.now()
    fates = [
        {},
        {"paid": now},
        {"state": "unknown", "payment_status": None, "needs_review": True},
        {"state": "unknown", "payment_status": None},
        {"state": "closed", "payment_status": PaymentStatus.EXPIRED},
        {"imported": True},
        {"state": "failed", "payment_status": None},
    ]
    for n in range(14):
        link = make_link(
            live_practice,
            department,
            live_receptionist,
            created=now - dt.timedelta(minutes=n),
            amount=Decimal("12345.67") if n % 3 == 0 else Decimal("89.00"),
            client_name="Hevostalli Aurora Oy" if n % 4 == 0 else "Maija-Liisa Hämäläinen",
            **fates[n % len(fates)],
        )
        if n == 7:  # the invoice was paid some other way: the link is superseded
            link.invoice.due_sum = 0
            link.invoice.save()
    assert PaymentLink.objects.count() == 14


@pytest.mark.parametrize("width", [1280, 1440])
def test_today_and_still_open_fits_its_card_without_a_hidden_scroll(
    page, live_server, live_receptionist, busy_desk, width
):
    page.set_viewport_size({"width": width, "height": 1000})
    log_in(page, live_server, live_receptionist)
    page.goto(f"{live_server.url}/")
    card = page.locator("section.card").filter(
        has=page.get_by_role("heading", name="Today and still open")
    )
    expect(card.get_by_role("row")).to_have_count(15)
    expect(card).to_contain_text("Superseded: the invoice is paid")
    sizes = card.evaluate("(card) => [card.scrollWidth, card.clientWidth]")
    assert sizes[0] <= sizes[1], sizes
    assert set(number_lines_in(card)) == {1}
    screenshot(page, f"home-{width}")


def number_lines_in(card) -> list[int]:
    """How many lines each amount in the table takes."""
    return card.evaluate(
        """(card) => [...card.querySelectorAll('td.num')].map((cell) => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        })"""
    )
