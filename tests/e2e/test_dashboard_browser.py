"""A manager's look at the week in a real browser: figures, filters, and the CSV behind them."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from clinics.models import Membership
from paylinks.models import PaymentLink, PaymentStatus
from reports.figures import local_today
from tests.conftest import PASSWORD, make_user
from tests.test_dashboard import make_link

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/e2e-shots")


def screenshot(page: Page, name: str) -> None:
    """For a person to look at; kept out of the repository."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


@pytest.fixture
def live_manager(live_practice):
    user = make_user("mikko", live_practice, Membership.Role.MANAGER)
    user.first_name, user.last_name = "Mikko", "Mäkelä"
    user.save()
    return user


@pytest.fixture
def month_of_links(live_practice, live_manager):
    """Links of the last three weeks in two departments, at noon in the practice's time zone."""
    first, second = live_practice.departments.filter(allow_nhp_processing=True).order_by("name")[:2]
    zone = ZoneInfo(live_practice.timezone)
    today = local_today(live_practice)

    def days_ago(days: int) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=days), dt.time(12), tzinfo=zone)

    def paid(days: int) -> dict:
        return {"paid": days_ago(days) + dt.timedelta(minutes=20)}

    expired = {"state": PaymentLink.State.CLOSED, "payment_status": PaymentStatus.EXPIRED}
    for department, days, amount, fate in [
        (first, 1, "30.00", paid(1)),
        (first, 1, "20.00", {}),
        (first, 3, "15.00", expired),
        (second, 2, "40.00", paid(2)),
        (second, 12, "25.00", paid(12)),
        (second, 12, "10.00", expired),
        (first, 20, "50.00", paid(20)),
    ]:
        make_link(
            live_practice,
            department,
            live_manager,
            created=days_ago(days),
            amount=Decimal(amount),
            client_name=f"=Client {amount}",
            **fate,
        )
    return first, second


def test_a_manager_narrows_the_figures_and_downloads_the_links_behind_them(
    page, live_server, live_manager, month_of_links
):
    _, second = month_of_links
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(live_manager.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()

    # The last 7 days, as the dashboard opens.
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_label("Period")).to_have_value("7d")
    expect(page.get_by_role("link", name="Links sent 4", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Paid €70.00 2 links", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Conversion 50 % paid of sent")).to_be_visible()
    expect(page.get_by_role("link", name="Outstanding €20.00 1 open link")).to_be_visible()
    expect(page.get_by_role("img", name="Links sent and paid per day")).to_be_visible()
    # Money in by payment date: the last 7 days against the 7 before them (25.00 paid 12 days ago).
    collected = page.get_by_role("listitem").filter(has_text="Collected")
    expect(collected).to_contain_text("€70.00")
    expect(collected).to_contain_text("+180 % on the previous 7 days")
    recovered = page.get_by_role("listitem").filter(has_text="Recovered by follow-ups")
    expect(recovered).to_contain_text("€0.00")
    expect(page.get_by_text("No mismatches found in the last check.")).to_be_visible()
    screenshot(page, "dashboard-desktop")
    page.set_viewport_size({"width": 768, "height": 1024})
    screenshot(page, "dashboard-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_label("Period").select_option(label="Last 30 days")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("link", name="Links sent 7", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Paid €145.00 4 links", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Expired unpaid €25.00 2 links")).to_be_visible()

    page.get_by_label("Department", exact=True).select_option(label=second.name)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("link", name="Links sent 3", exact=True)).to_be_visible()
    paid_tile = page.get_by_role("link", name="Paid €65.00 2 links", exact=True)
    expect(paid_tile).to_be_visible()
    by_department = page.get_by_role("table").filter(
        has=page.get_by_role("columnheader", name="Department")
    )
    expect(by_department.get_by_role("row")).to_have_count(2)  # the header and one department

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3
    assert {row["Department"] for row in rows} == {second.name}
    paid_rows = [row for row in rows if row["Status"] == "Paid"]
    assert {row["Created by"] for row in rows} == {"Mikko Mäkelä"}
    assert sum(Decimal(row["Amount"]) for row in paid_rows) == Decimal("65.00")
    assert all(row["Client"].startswith("'=Client") for row in rows)

    # The paid figure opens the list of exactly those links.
    paid_tile.click()
    expect(page.get_by_role("heading", name="Payment links")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^=Client "))).to_have_count(2)
    expect(page.get_by_role("link", name="=Client 40.00")).to_be_visible()
    expect(page.get_by_role("link", name="=Client 25.00")).to_be_visible()
    screenshot(page, "dashboard-paid-links")
