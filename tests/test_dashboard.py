"""The manager dashboard: figures worked out by hand, the lists behind them, and who may see it.

The main fixture is a week at the Northvale practice (Europe/Helsinki, UTC+2 in early March),
3–9 March 2025. Each link's fate is written beside it; the expected figures in the tests are
worked out from that table by hand.
"""

import datetime as dt
import itertools
import statistics
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinics.models import Department, Membership
from paylinks.models import (
    DeliveryMethod,
    DeliveryStatus,
    DriftFinding,
    Invoice,
    PaymentLink,
    PaymentStatus,
)
from reports import figures as dashboard_figures
from reports.figures import Period, humane_duration, link_list_url
from tests.conftest import make_user

HELSINKI = ZoneInfo("Europe/Helsinki")
WEEK = {"period": "custom", "start": "2025-03-03", "end": "2025-03-09"}
_numbers = itertools.count(1000)

SMS, EMAIL, DESK = DeliveryMethod.SMS, DeliveryMethod.EMAIL, DeliveryMethod.DONT_SEND
ACTIVE, CLOSED = PaymentLink.State.ACTIVE, PaymentLink.State.CLOSED
PAID, PENDING, EXPIRED = PaymentStatus.ACCEPTED, PaymentStatus.PENDING, PaymentStatus.EXPIRED


def at(day: int, hour: int = 12, minute: int = 0, month: int = 3) -> dt.datetime:
    """A moment in March 2025 as the Helsinki practice lives it."""
    return dt.datetime(2025, month, day, hour, minute, tzinfo=HELSINKI)


def make_link(practice, department, user, *, created, paid=None, **fields) -> PaymentLink:
    """A link as Provet left it: active and waiting unless told otherwise; paid when `paid`."""
    number = next(_numbers)
    amount = fields.pop("amount", Decimal("50.00"))
    invoice = Invoice.objects.create(
        practice=practice,
        provet_id=number,
        number=f"NV-{number}",
        status=3,
        due_sum=amount,
        fetched_at=timezone.now(),
    )
    values = {
        "practice": practice,
        "invoice": invoice,
        "department": department,
        "amount": amount,
        "currency": practice.currency,
        "duration_minutes": 60,
        "idempotency_key": f"key-{number}",
        "state": ACTIVE,
        "payment_status": PENDING,
        "delivery_status": DeliveryStatus.SENT,
        "delivery_method": SMS,
        "created_by": user,
        "client_name": f"Client {number}",
    }
    if paid is not None:
        values |= {"state": CLOSED, "payment_status": PAID, "paid_at": paid}
    values.update(fields)
    link = PaymentLink.objects.create(**values)
    # created_at is set on save; the past is written afterwards.
    PaymentLink.objects.filter(pk=link.pk).update(created_at=created)
    link.refresh_from_db()
    return link


@pytest.fixture
def departments(synced_practice) -> list[Department]:
    return list(synced_practice.departments.order_by("provet_id")[:2])


@pytest.fixture
def colleague(synced_practice):
    user = make_user("laura", synced_practice, Membership.Role.RECEPTION)
    user.first_name, user.last_name = "Laura", "Nieminen"
    user.save()
    return user


@pytest.fixture
def week(synced_practice, departments, receptionist, colleague, other_practice):
    """Links around 3–9 March 2025. Eight count; the rest are outside the period or never sent."""
    a, b = departments
    r, c = receptionist, colleague
    made = {
        # Counted: created 3–9 March (Helsinki) and sent.
        "paid_in_10_min": make_link(
            synced_practice, a, r, created=at(3, 9), paid=at(3, 9, 10), amount=Decimal("100.00")
        ),
        "paid_in_2_h": make_link(
            synced_practice,
            a,
            r,
            created=at(4, 10),
            paid=at(4, 12),
            amount=Decimal("50.00"),
            delivery_method=EMAIL,
        ),
        "paid_next_day": make_link(
            synced_practice, b, c, created=at(5, 8), paid=at(6, 8), amount=Decimal("80.00")
        ),
        # Sent on the last evening, paid after the period: paid in the period it was sent.
        "paid_after_the_end": make_link(
            synced_practice,
            b,
            r,
            created=at(9, 23, 30),
            paid=at(10, 1, 0),
            amount=Decimal("40.00"),
            delivery_method=DESK,
            delivery_status=None,
        ),
        "expired": make_link(
            synced_practice,
            a,
            c,
            created=at(6),
            amount=Decimal("70.00"),
            state=CLOSED,
            payment_status=EXPIRED,
        ),
        "waiting_undelivered": make_link(
            synced_practice,
            a,
            r,
            created=at(7),
            amount=Decimal("30.00"),
            delivery_status=DeliveryStatus.FAILED,
        ),
        "waiting": make_link(
            synced_practice, b, r, created=at(8), amount=Decimal("25.00"), delivery_method=EMAIL
        ),
        "cancelled": make_link(
            synced_practice,
            a,
            r,
            created=at(8, 15),
            amount=Decimal("60.00"),
            state=CLOSED,
            cancelled_at=at(8, 16),
        ),
        # Not counted.
        "sent_the_day_before_paid_in_the_period": make_link(
            synced_practice, a, r, created=at(2, 23, 59), paid=at(3, 8), amount=Decimal("500.00")
        ),
        "sent_at_midnight_after": make_link(synced_practice, a, r, created=at(10, 0, 0)),
        "never_made": make_link(
            synced_practice, a, r, created=at(5), state=PaymentLink.State.FAILED
        ),
        "outcome_unknown": make_link(
            synced_practice, a, r, created=at(5), state=PaymentLink.State.UNKNOWN
        ),
        "being_created": make_link(
            synced_practice, a, r, created=at(5), state=PaymentLink.State.CREATING
        ),
    }
    elsewhere = Department.objects.create(
        practice=other_practice, provet_id=999_999, name="Elsewhere"
    )
    made["other_practice"] = make_link(other_practice, elsewhere, None, created=at(5), paid=at(5))
    return made


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def board_for(client, **query):
    response = client.get("/dashboard/", query)
    assert response.status_code == 200
    assert response.context["form"].errors == {}
    return response.context["board"]


def test_the_week_s_tiles_add_up_as_worked_out_by_hand(manager_client, week):
    totals = board_for(manager_client, **WEEK).totals
    assert totals.sent == 8
    assert (totals.paid, totals.paid_amount) == (4, Decimal("270.00"))
    assert totals.conversion == 0.5
    # Times to pay: 10 min, 1 h 30, 2 h, 24 h. Median between 1 h 30 and 2 h; the 90th
    # percentile at 0.9 × 3 = 2.7, i.e. 2 h + 0.7 × 22 h.
    assert totals.median_seconds == pytest.approx(6300, abs=1)
    assert totals.p90_seconds == pytest.approx(7200 + 0.7 * (86400 - 7200), abs=1)
    assert (totals.median_text, totals.p90_text) == ("1 h 45 min", "17 h 24 min")
    assert (totals.outstanding, totals.outstanding_amount) == (2, Decimal("55.00"))
    assert (totals.expired, totals.expired_amount) == (1, Decimal("70.00"))
    assert totals.delivery_failed == 1


def test_the_tiles_show_amounts_in_the_practice_s_currency(manager_client, week):
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    assert '<span class="tile-value">€270.00</span>' in page
    assert "50 %" in page
    assert "1 h 45 min" in page


def test_the_dashboard_writes_amounts_and_days_as_the_language_does(manager_client, week):
    page = manager_client.get("/dashboard/", WEEK, headers={"accept-language": "fi"})
    html = page.content.decode()
    assert '<span class="tile-value">270,00\xa0€</span>' in html
    # The breakdown's columns name the currency: their amounts go without it.
    assert ">150,00<" in html
    assert "la 8.3." in html  # the chart's table: Saturday 8 March


def test_the_week_by_department(manager_client, week, departments):
    rows = {row.label: row.figures for row in board_for(manager_client, **WEEK).by_department}
    a, b = (rows[d.name] for d in departments)
    assert (a.sent, a.paid, a.paid_amount) == (5, 2, Decimal("150.00"))
    assert a.conversion_percent == "40 %"
    assert (a.median_text, a.p90_text) == ("1 h 5 min", "1 h 49 min")
    assert (a.outstanding_amount, a.expired, a.expired_amount, a.delivery_failed) == (
        Decimal("30.00"),
        1,
        Decimal("70.00"),
        1,
    )
    assert (b.sent, b.paid, b.paid_amount, b.conversion_percent) == (
        3,
        2,
        Decimal("120.00"),
        "67 %",
    )
    assert (b.median_text, b.p90_text) == ("12 h 45 min", "21 h 45 min")
    assert (b.outstanding, b.expired, b.delivery_failed) == (1, 0, 0)


def test_the_week_by_staff_member(manager_client, week):
    rows = {row.label: row.figures for row in board_for(manager_client, **WEEK).by_staff}
    assert set(rows) == {"riikka", "Laura Nieminen"}
    riikka, laura = rows["riikka"], rows["Laura Nieminen"]
    assert (riikka.sent, riikka.paid, riikka.paid_amount) == (6, 3, Decimal("190.00"))
    assert (riikka.median_text, riikka.p90_text) == ("1 h 30 min", "1 h 54 min")
    assert (riikka.outstanding, riikka.outstanding_amount, riikka.delivery_failed) == (
        2,
        Decimal("55.00"),
        1,
    )
    assert (laura.sent, laura.paid, laura.expired_amount) == (2, 1, Decimal("70.00"))
    assert laura.median_text == laura.p90_text == "1 d"


def test_the_week_by_channel(manager_client, week):
    rows = {row.label: row.figures for row in board_for(manager_client, **WEEK).by_channel}
    assert list(rows) == ["Handed over at the desk", "Email", "SMS"]
    assert {label: (f.sent, f.paid, f.paid_amount) for label, f in rows.items()} == {
        "SMS": (5, 2, Decimal("180.00")),
        "Email": (2, 1, Decimal("50.00")),
        "Handed over at the desk": (1, 1, Decimal("40.00")),
    }


def test_the_days_add_up_to_the_tiles(manager_client, week):
    board = board_for(manager_client, **WEEK)
    days = [(d.day.day, d.sent, d.paid) for d in board.days]
    assert days == [(3, 1, 1), (4, 1, 1), (5, 1, 1), (6, 1, 0), (7, 1, 0), (8, 2, 0), (9, 1, 1)]
    assert sum(d.paid_amount for d in board.days) == board.totals.paid_amount
    assert len(board.chart.bars) == 7


def test_a_period_with_no_links_shows_zeros_and_no_time_to_pay(manager_client, departments):
    board = board_for(manager_client, **WEEK)
    totals = board.totals
    assert (totals.sent, totals.paid, totals.paid_amount, totals.outstanding) == (
        0,
        0,
        Decimal("0.00"),
        0,
    )
    assert totals.conversion is None
    assert (totals.median_text, totals.conversion_percent) == ("–", "–")
    assert board.by_department == board.by_staff == board.by_channel == []
    assert [d.sent for d in board.days] == [0] * 7
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    assert "No links sent in this period." in page


def test_when_every_link_expired_nothing_is_paid_or_outstanding(
    manager_client, departments, receptionist
):
    for day, amount in ((3, "10.00"), (5, "20.00"), (9, "30.50")):
        make_link(
            departments[0].practice,
            departments[0],
            receptionist,
            created=at(day),
            amount=Decimal(amount),
            state=CLOSED,
            payment_status=EXPIRED,
        )
    totals = board_for(manager_client, **WEEK).totals
    assert (totals.sent, totals.paid, totals.conversion_percent) == (3, 0, "0 %")
    assert (totals.expired, totals.expired_amount) == (3, Decimal("60.50"))
    assert (totals.outstanding, totals.median_seconds, totals.p90_seconds) == (0, None, None)


def test_a_department_filter_narrows_every_figure(manager_client, week, departments):
    board = board_for(manager_client, **WEEK, department=departments[1].provet_id)
    assert (board.totals.sent, board.totals.paid, board.totals.paid_amount) == (
        3,
        2,
        Decimal("120.00"),
    )
    assert [row.label for row in board.by_department] == [departments[1].name]
    assert sum(d.sent for d in board.days) == 3


def test_the_preset_periods_are_days_in_the_practice_s_time_zone(manager_client, week, monkeypatch):
    monkeypatch.setattr(
        dashboard_figures, "local_today", lambda practice, now=None: dt.date(2025, 3, 9)
    )
    assert board_for(manager_client).period.first == dt.date(2025, 3, 3)  # last 7 days by default
    assert board_for(manager_client, period="7d").totals.sent == 8
    # Today is the 9th: only the link sent that evening.
    today = board_for(manager_client, period="today").totals
    assert (today.sent, today.paid) == (1, 1)
    # This month and the last 30 days also take in the link sent late on 2 March.
    month = board_for(manager_client, period="month").totals
    assert (month.sent, month.paid, month.paid_amount) == (9, 5, Decimal("770.00"))
    thirty = board_for(manager_client, period="30d")
    assert thirty.period.first == dt.date(2025, 2, 8)
    assert thirty.totals.sent == 9


def test_named_periods_run_from_midnight_to_midnight_local_time():
    period = Period.named("7d", dt.date(2025, 3, 9), HELSINKI)
    assert period.start == dt.datetime(2025, 3, 3, tzinfo=HELSINKI)
    assert period.start.astimezone(dt.UTC) == dt.datetime(2025, 3, 2, 22, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2025, 3, 10, tzinfo=HELSINKI)
    assert Period.named("month", dt.date(2025, 2, 14), HELSINKI).first == dt.date(2025, 2, 1)
    assert Period.named("today", dt.date(2025, 2, 14), HELSINKI).days == [dt.date(2025, 2, 14)]


def test_days_follow_the_clock_change(manager_client, departments, receptionist):
    """Helsinki moves to summer time at 03:00 on 30 March 2025: that day has 23 hours."""
    practice = departments[0].practice
    for moment in (at(29, 23, 30), at(30, 0, 30), at(30, 23, 30), at(31, 0, 30)):
        make_link(practice, departments[0], receptionist, created=moment)
    board = board_for(manager_client, period="custom", start="2025-03-29", end="2025-03-31")
    assert [(d.day.day, d.sent) for d in board.days] == [(29, 1), (30, 2), (31, 1)]


def test_every_figure_opens_the_list_of_exactly_the_links_behind_it(
    manager_client, week, departments
):
    board = board_for(manager_client, **WEEK)
    rows = [("all", board.totals)] + [
        (row.label, row.figures) for row in board.by_department + board.by_staff + board.by_channel
    ]
    expected = {
        "sent": lambda f: f.sent,
        "paid": lambda f: f.paid,
        "outstanding": lambda f: f.outstanding,
        "expired": lambda f: f.expired,
        "delivery_failed": lambda f: f.delivery_failed,
    }
    for label, figures in rows:
        for name, figure in expected.items():
            listed = manager_client.get(figures.links[name]).context["page"].paginator.count
            assert listed == figure(figures), (label, name)
    for day in board.days:
        assert manager_client.get(day.sent_url).context["page"].paginator.count == day.sent
        assert manager_client.get(day.paid_url).context["page"].paginator.count == day.paid


def test_the_list_behind_a_figure_is_the_figure_s_practice_not_the_one_worked_in(
    client, week, other_practice, synced_practice
):
    """An admin of both practices works in the other one; the figure still lists its own."""
    admin = make_user("aino", other_practice, Membership.Role.ADMIN)
    Membership.objects.create(user=admin, practice=synced_practice, role=Membership.Role.ADMIN)
    client.force_login(admin)
    session = client.session
    session["practice"] = str(other_practice.code)
    session.save()
    board = board_for(client, practice=synced_practice.code, **WEEK)
    response = client.get(board.totals.links["sent"])
    assert response.context["practice"] == synced_practice
    assert response.context["page"].paginator.count == 8


def test_the_staff_table_links_links_nobody_in_paylinks_made(manager_client, departments):
    practice = departments[0].practice
    make_link(practice, departments[0], None, created=at(4), imported=True)
    (row,) = board_for(manager_client, **WEEK).by_staff
    assert row.label == "Nobody in PayLinks (made in Provet)"
    assert manager_client.get(row.figures.links["sent"]).context["page"].paginator.count == 1


def test_the_chart_is_svg_drawn_on_the_server_with_a_table_beside_it(manager_client, week):
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    assert '<svg viewBox="0 0 720 240" role="img"' in page
    assert page.count('<rect class="sent"') == 7
    assert "<title>Sat 8 Mar: 2 sent, 0 paid</title>" in page
    assert "Links sent and paid per day</caption>" in page


def test_the_custom_range_must_be_a_range(manager_client, departments):
    response = manager_client.get("/dashboard/", {"period": "custom", "start": "2025-03-09"})
    assert "Give the last day of the range." in response.content.decode()
    assert "board" not in response.context
    response = manager_client.get(
        "/dashboard/", {"period": "custom", "start": "2025-03-09", "end": "2025-03-01"}
    )
    assert "The range ends before it starts." in response.content.decode()
    response = manager_client.get(
        "/dashboard/", {"period": "custom", "start": "2024-01-01", "end": "2025-03-01"}
    )
    assert "Choose at most 366 days at a time." in response.content.decode()


OUT_OF_REACH = "Pick a date between 1 Jan 2000 and 31 Dec 2100."


@pytest.mark.parametrize(
    ("start", "end", "refused"),
    [
        ("0001-01-01", "0001-01-07", {"start", "end"}),
        ("9999-12-25", "9999-12-31", {"start", "end"}),
        ("2025-03-03", "9999-12-31", {"end"}),
        ("0001-01-01", "2025-03-09", {"start"}),
    ],
)
def test_a_custom_range_in_year_1_or_9999_is_refused_at_its_fields(
    manager_client, departments, start, end, refused
):
    query = {"period": "custom", "start": start, "end": end}
    response = manager_client.get("/dashboard/", query)
    assert response.status_code == 200
    assert "board" not in response.context
    assert response.context["form"].errors == {name: [OUT_OF_REACH] for name in refused}
    page = response.content.decode()
    assert OUT_OF_REACH in page
    assert "Check the filters above to see the figures." in page
    export = manager_client.get("/dashboard/export.csv", query)
    assert export.status_code == 400
    assert export["Content-Type"].startswith("text/plain")
    assert OUT_OF_REACH in export.content.decode()


def test_a_malformed_practice_code_is_refused_at_its_field(manager_client, departments):
    response = manager_client.get("/dashboard/", {"practice": "garbage"})
    assert response.status_code == 200
    assert "board" not in response.context
    assert "Select a valid choice" in response.content.decode()
    assert manager_client.get("/dashboard/export.csv", {"practice": "garbage"}).status_code == 400


def test_a_department_of_another_practice_means_all_departments(manager_client, week):
    elsewhere = Department.objects.get(name="Elsewhere")
    board = board_for(manager_client, **WEEK, department=elsewhere.provet_id)
    assert board.department is None
    assert board.totals.sent == 8


def test_open_drift_findings_of_the_practice_are_listed(
    manager_client, week, synced_practice, other_practice
):
    link = week["paid_in_10_min"]
    DriftFinding.objects.create(
        practice=synced_practice,
        kind=DriftFinding.Kind.PAID_LINK_INVOICE_DUE,
        invoice=link.invoice,
        link=link,
        message="Provet still shows 100.00 due on the invoice.",
        found_at=at(9, 3),
    )
    DriftFinding.objects.create(
        practice=synced_practice,
        kind=DriftFinding.Kind.UNKNOWN_TOO_LONG,
        message="Settled last week.",
        found_at=at(2, 3),
        resolved_at=at(3, 3),
    )
    DriftFinding.objects.create(
        practice=other_practice,
        kind=DriftFinding.Kind.UNKNOWN_TOO_LONG,
        message="Another practice's trouble.",
        found_at=at(9, 3),
    )
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    assert "Paid link, invoice still due" in page
    assert "Provet still shows 100.00 due on the invoice." in page
    assert f'href="/links/{link.code}/"' in page
    assert f'href="/invoices/{link.invoice.provet_id}/"' in page
    assert "Settled last week." not in page
    assert "Another practice&#x27;s trouble." not in page
    assert "No mismatches found in the last check" not in page


def test_without_open_findings_the_panel_says_so(manager_client, departments):
    page = manager_client.get("/dashboard/").content.decode()
    assert "No mismatches found in the last check." in page


def test_the_dashboard_costs_the_same_queries_however_many_links(
    manager_client, week, departments, receptionist, django_assert_max_num_queries
):
    manager_client.get("/dashboard/", WEEK)  # the first request of a session costs more
    # Session, person, managed practices, departments; the cells, their departments and people,
    # the days, the money in by payment date; drift findings; the top bar's practices (2).
    with django_assert_max_num_queries(12) as few:
        manager_client.get("/dashboard/", WEEK)
    for day in range(3, 10):
        for _ in range(5):
            make_link(departments[1].practice, departments[1], receptionist, created=at(day))
    with django_assert_max_num_queries(len(few.captured_queries)):
        manager_client.get("/dashboard/", WEEK)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "–"),
        (42, "42 s"),
        (600, "10 min"),
        (3600, "1 h"),
        (6300, "1 h 45 min"),
        (86400, "1 d"),
        (90000, "1 d 1 h"),
    ],
)
def test_times_to_pay_read_as_a_person_would_say_them(seconds, text):
    assert humane_duration(seconds) == text


def test_the_dashboard_costs_the_same_queries_for_one_link_as_for_a_year_of_them(
    manager_client, departments, receptionist, colleague, django_assert_num_queries
):
    """Issue 12: no query per link, per day, per line or per percentile."""
    practice = departments[0].practice
    year = {"period": "custom", "start": "2024-03-10", "end": "2025-03-09"}
    make_link(practice, departments[0], receptionist, created=at(3, 9), paid=at(3, 10))
    manager_client.get("/dashboard/", year)  # the first request of a session costs more
    with CaptureQueriesContext(connection) as one:
        assert board_for(manager_client, **year).totals.sent == 1
    first = dt.datetime(2024, 3, 10, 8, tzinfo=HELSINKI)
    people = (receptionist, colleague, None)
    channels = (SMS, EMAIL, DESK, DeliveryMethod.SMS_AND_EMAIL)
    for n in range(60):
        created = first + dt.timedelta(days=6 * n, hours=n % 11)
        make_link(
            practice,
            departments[n % 2],
            people[n % 3],
            created=created,
            paid=created + dt.timedelta(minutes=7 * n + 1) if n % 4 else None,
            delivery_method=channels[n % 4],
        )
    with django_assert_num_queries(len(one.captured_queries)):
        board = board_for(manager_client, **year)
    assert board.totals.sent == 61
    assert (len(board.by_department), len(board.by_staff), len(board.by_channel)) == (2, 3, 4)
    assert len(board.days) == 365


def test_a_long_period_is_drawn_by_week_and_every_week_opens_its_links(
    manager_client, departments, receptionist
):
    """More than two months of days show as weeks, Monday to Sunday, cut to the period at both
    ends; the days are still all there (the API gives them)."""
    practice = departments[0].practice
    for created, paid in [
        (dt.datetime(2025, 1, 1, 9, tzinfo=HELSINKI), True),  # Wednesday, the first day
        (dt.datetime(2025, 1, 5, 23, tzinfo=HELSINKI), False),  # Sunday: the same week
        (dt.datetime(2025, 1, 6, 0, 30, tzinfo=HELSINKI), True),  # Monday: the next
    ]:
        end = created + dt.timedelta(minutes=5) if paid else None
        make_link(practice, departments[0], receptionist, created=created, paid=end)
    query = {"period": "custom", "start": "2025-01-01", "end": "2025-03-14"}
    response = manager_client.get("/dashboard/", query)
    board = response.context["board"]
    assert len(board.days) == 73 and board.weekly
    weeks = board.shown
    assert (weeks[0].day, weeks[0].last, weeks[0].sent, weeks[0].paid) == (
        dt.date(2025, 1, 1),
        dt.date(2025, 1, 5),
        2,
        1,
    )
    assert (weeks[1].day, weeks[1].last, weeks[1].sent) == (
        dt.date(2025, 1, 6),
        dt.date(2025, 1, 12),
        1,
    )
    assert (weeks[-1].day, weeks[-1].last) == (dt.date(2025, 3, 10), dt.date(2025, 3, 14))
    assert len(weeks) == 11
    assert sum(week.paid_amount for week in weeks) == board.totals.paid_amount
    week = Period("custom", dt.date(2025, 1, 1), dt.date(2025, 1, 5), HELSINKI)
    assert weeks[0].paid_url == link_list_url(practice, week, status="paid")
    page = response.content.decode()
    assert page.count('<rect class="sent"') == 11
    assert "<title>Wed 1 Jan – Sun 5 Jan: 2 sent, 1 paid</title>" in page
    assert "Links sent and paid per week</caption>" in page
    # Two months or less stay by day.
    board = board_for(manager_client, period="custom", start="2025-01-01", end="2025-03-03")
    assert not board.weekly and len(board.shown) == 62


def percentile_cont(values: list[float], q: int) -> float:
    """As PostgreSQL has it: `statistics.quantiles` with the inclusive method is the same."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def test_each_line_s_times_to_pay_are_its_own_links_percentiles(
    manager_client, departments, receptionist, colleague
):
    """Many links in each department, staff member and channel, their times to pay interleaved:
    each line's median and 90th percentile are those of its own links."""
    practice = departments[0].practice
    people = (receptionist, colleague)
    expected: dict[str, list[float]] = defaultdict(list)
    for n in range(41):
        # Eight cells in turn: two departments × two staff members × two channels.
        department, person = departments[n % 2], people[n // 2 % 2]
        channel = (SMS, EMAIL)[n // 4 % 2]
        created = at(3 + n % 7, 8 + n % 9, n % 60)
        seconds = 60 * ((n * 37) % 101) + 0.125 * n
        paid = created + dt.timedelta(seconds=seconds) if n % 5 else None
        make_link(practice, department, person, created=created, paid=paid, delivery_method=channel)
        if paid:
            labels = (department.name, person.get_full_name() or person.username)
            for label in (*labels, dashboard_figures.CHANNEL_NAMES[channel], "all"):
                expected[label].append(seconds)
    board = board_for(manager_client, **WEEK)
    lines = [("all", board.totals)] + [
        (row.label, row.figures) for row in board.by_department + board.by_staff + board.by_channel
    ]
    assert len(lines) == 7
    for label, figures in lines:
        times = expected[label]
        assert figures.paid == len(times), label
        assert figures.median_seconds == pytest.approx(statistics.median(times), abs=1e-3), label
        assert figures.p90_seconds == pytest.approx(percentile_cont(times, 90), abs=1e-3), label


def test_a_link_a_microsecond_before_midnight_counts_on_the_day_before(
    manager_client, departments, receptionist
):
    practice = departments[0].practice
    make_link(
        practice,
        departments[0],
        receptionist,
        created=at(5) - dt.timedelta(hours=12, microseconds=1),
        paid=at(5, 9),
        amount=Decimal("12.34"),
    )
    make_link(practice, departments[0], receptionist, created=at(5, 0, 0))
    board = board_for(manager_client, **WEEK)
    assert [(d.day.day, d.sent, d.paid, d.paid_amount) for d in board.days if d.sent] == [
        (4, 1, 1, Decimal("12.34")),
        (5, 1, 0, Decimal("0.00")),
    ]


def test_each_day_opens_the_list_of_its_own_links(manager_client, week, departments):
    for within in ({}, {"department": departments[1].provet_id}):
        board = board_for(manager_client, **WEEK, **within)
        for day in board.days:
            one_day = Period("custom", day.day, day.day, HELSINKI)
            assert day.sent_url == link_list_url(board.practice, one_day, **within, status="sent")
            assert day.paid_url == link_list_url(board.practice, one_day, **within, status="paid")


# Who may see it.


def test_anonymous_visitors_are_sent_to_log_in(client):
    for url in ("/dashboard/", "/dashboard/export.csv"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_a_receptionist_is_refused(client, receptionist, manager):
    """Even in a practice that has a manager: the manager role must be the person's own."""
    client.force_login(receptionist)
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/export.csv").status_code == 403


def test_only_managers_and_admins_see_the_dashboard_link(client, receptionist, manager):
    client.force_login(receptionist)
    assert 'href="/dashboard/"' not in client.get("/links/").content.decode()
    client.force_login(manager)
    assert 'href="/dashboard/"' in client.get("/links/").content.decode()


def test_a_manager_sees_only_the_practices_they_manage(client, manager, week, other_practice):
    # A receptionist at the other practice too: that does not make its figures theirs.
    Membership.objects.create(user=manager, practice=other_practice, role="reception")
    client.force_login(manager)
    response = client.get("/dashboard/", WEEK)
    assert list(response.context["form"].practices.values()) == [week["waiting"].practice]
    refused = client.get("/dashboard/", {**WEEK, "practice": other_practice.code})
    assert "board" not in refused.context
    assert "Select a valid choice" in refused.content.decode()
    assert other_practice.name not in refused.content.decode().split("<main", 1)[1]
    export = client.get("/dashboard/export.csv", {**WEEK, "practice": other_practice.code})
    assert export.status_code == 400


def test_an_outsider_sees_nothing_of_another_practice(client, outsider, week):
    client.force_login(outsider)
    assert client.get("/dashboard/").status_code == 403


def test_a_superuser_manages_every_practice(client, week, synced_practice, other_practice):
    boss = make_user("boss")
    boss.is_superuser = True
    boss.save()
    client.force_login(boss)
    form = client.get("/dashboard/", WEEK).context["form"]
    assert set(form.practices.values()) == {synced_practice, other_practice}
    other = board_for(client, practice=other_practice.code, **WEEK)
    assert (other.totals.sent, other.totals.paid) == (1, 1)


# Money in by payment date, and what the follow-ups recovered.


def test_collected_counts_what_was_paid_in_the_period_whenever_the_link_was_made(
    manager_client, week
):
    """By payment date: the link sent on 2 March and paid on the 3rd is in; the one sent on the
    9th and paid on the 10th is out. The cohort tiles are unchanged."""
    board = board_for(manager_client, **WEEK)
    money = board.money_in
    # 100 + 50 + 80 paid 3–6 March for links of the week, and 500 for the link of 2 March.
    assert (money.collected, money.collected_amount) == (4, Decimal("730.00"))
    assert (board.totals.paid, board.totals.paid_amount) == (4, Decimal("270.00"))
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    tile = page.split('id="collected-tile"', 1)[1].split("</li>", 1)[0]
    assert "€730.00" in tile
    assert "4 payments, whenever sent" in tile
    assert "nothing in the previous 7 days" in tile


def test_collected_is_compared_with_the_period_of_the_same_length_before(
    manager_client, departments, receptionist
):
    practice, department = departments[0].practice, departments[0]
    # The previous 7 days are 24 Feb – 2 March; a payment at 23:59 on 2 March is in them.
    make_link(practice, department, receptionist, created=at(20, month=2), paid=at(24, 0, 0, 2))
    make_link(
        practice,
        department,
        receptionist,
        created=at(1),
        paid=at(2, 23, 59),
        amount=Decimal("150.00"),
    )
    # Paid 23 Feb: in neither period.
    make_link(practice, department, receptionist, created=at(20, month=2), paid=at(23, 12, 0, 2))
    make_link(practice, department, receptionist, created=at(3), paid=at(3, 0, 0))
    make_link(
        practice,
        department,
        receptionist,
        created=at(5),
        paid=at(9, 23, 59),
        amount=Decimal("174.00"),
    )
    money = board_for(manager_client, **WEEK).money_in
    assert (money.previous.first, money.previous.last) == (
        dt.date(2025, 2, 24),
        dt.date(2025, 3, 2),
    )
    assert (money.previous_collected, money.previous_amount) == (2, Decimal("200.00"))
    assert (money.collected, money.collected_amount) == (2, Decimal("224.00"))
    assert money.change_percent == Decimal("12")
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    assert "+12 % on the previous 7 days" in page
    fewer = board_for(manager_client, period="custom", start="2025-03-09", end="2025-03-09")
    # 9 March against 8 March: 174 against nothing.
    assert fewer.money_in.change_text == "nothing the day before"


def test_collected_goes_down_with_a_minus_and_follows_the_department(
    manager_client, departments, receptionist
):
    practice, (first, second) = departments[0].practice, departments
    make_link(practice, first, receptionist, created=at(25, month=2), paid=at(26, 12, 0, 2))
    make_link(practice, first, receptionist, created=at(4), paid=at(4, 13), amount=Decimal("40"))
    make_link(practice, second, receptionist, created=at(4), paid=at(4, 13), amount=Decimal("99"))
    money = board_for(manager_client, **WEEK, department=first.provet_id).money_in
    assert (money.collected_amount, money.previous_amount) == (Decimal("40.00"), Decimal("50.00"))
    assert money.change_text == "−20 % on the previous 7 days"


def test_recovered_is_what_links_sent_again_automatically_brought_in(
    manager_client, departments, receptionist
):
    practice, department = departments[0].practice, departments[0]
    first = make_link(
        practice,
        department,
        receptionist,
        created=at(1),
        state=CLOSED,
        payment_status=EXPIRED,
        amount=Decimal("80.00"),
    )
    make_link(
        practice,
        department,
        None,
        created=at(3, 10),
        paid=at(4, 9),
        amount=Decimal("80.00"),
        invoice=first.invoice,
        replaces=first,
        sent_automatically=True,
    )
    # Sent again automatically and still waiting, and paid after the period: not recovered (yet).
    make_link(practice, department, None, created=at(8), sent_automatically=True)
    make_link(practice, department, None, created=at(9), paid=at(10, 9), sent_automatically=True)
    # Sent again by a person: collected, not recovered.
    make_link(practice, department, receptionist, created=at(5), paid=at(5, 10))
    board = board_for(manager_client, **WEEK)
    assert (board.money_in.recovered, board.money_in.recovered_amount) == (1, Decimal("80.00"))
    assert board.money_in.collected_amount == Decimal("130.00")
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    tile = page.split('id="recovered-tile"', 1)[1].split("</li>", 1)[0]
    assert "Recovered by follow-ups" in tile
    assert "€80.00" in tile
    assert "1 link sent again automatically, then paid" in tile


# Expired unpaid: each missing sum once.


def test_an_expired_link_sent_again_counts_once(manager_client, departments, receptionist):
    """Expired, sent again, expired again: one link's money is missing, not two."""
    practice, department = departments[0].practice, departments[0]
    expired = {"state": CLOSED, "payment_status": EXPIRED, "amount": Decimal("70.00")}
    first = make_link(practice, department, receptionist, created=at(3), **expired)
    make_link(
        practice,
        department,
        receptionist,
        created=at(4),
        invoice=first.invoice,
        replaces=first,
        **expired,
    )
    totals = board_for(manager_client, **WEEK).totals
    assert (totals.sent, totals.expired, totals.expired_amount) == (2, 1, Decimal("70.00"))


def test_an_expired_link_whose_money_a_later_link_collected_is_not_expired_unpaid(
    manager_client, departments, receptionist
):
    practice, department = departments[0].practice, departments[0]
    expired = {"state": CLOSED, "payment_status": EXPIRED}
    first = make_link(practice, department, receptionist, created=at(3), **expired)
    make_link(
        practice, department, receptionist, created=at(5), paid=at(5, 13), invoice=first.invoice
    )
    first.invoice.due_sum = Decimal("0.00")  # as Provet has it once the later link is paid
    first.invoice.save()
    # Split between two payers: one paid, the other's half expired and is still due.
    split = make_link(
        practice, department, receptionist, created=at(6), amount=Decimal("30.00"), **expired
    )
    make_link(
        practice,
        department,
        receptionist,
        created=at(6, 13),
        paid=at(6, 14),
        amount=Decimal("20.00"),
        invoice=split.invoice,
    )
    totals = board_for(manager_client, **WEEK).totals
    assert (totals.expired, totals.expired_amount) == (1, Decimal("30.00"))
    assert (totals.paid, totals.paid_amount) == (2, Decimal("70.00"))


def test_the_expired_list_shows_exactly_the_expired_unpaid_links(
    manager_client, departments, receptionist
):
    """The figure's own list, and the links list's "Expired" filter, hold the same links."""
    practice, department = departments[0].practice, departments[0]
    expired = {"state": CLOSED, "payment_status": EXPIRED}
    resent = make_link(practice, department, receptionist, created=at(3), **expired)
    again = make_link(
        practice,
        department,
        receptionist,
        created=at(4),
        invoice=resent.invoice,
        replaces=resent,
        **expired,
    )
    collected = make_link(practice, department, receptionist, created=at(5), **expired)
    collected.invoice.due_sum = Decimal("0.00")
    collected.invoice.save()
    still_due = make_link(practice, department, receptionist, created=at(6), **expired)
    board = board_for(manager_client, **WEEK)
    assert board.totals.expired == 2
    listed = manager_client.get(board.totals.links["expired"]).context["page"]
    assert {link.code for link in listed} == {again.code, still_due.code}
    everything = manager_client.get("/links/", {"status": "expired"}).context["page"]
    assert {link.code for link in everything} == {again.code, still_due.code}
    assert set(PaymentLink.objects.counted_as("expired")) == {again, still_due}
