"""The dashboard's CSV export: what a spreadsheet gets, and what it must never run."""

import csv
import io
from decimal import Decimal

import pytest

from paylinks.models import DeliveryMethod, DeliveryStatus, PaymentLink, PaymentStatus
from reports.export import lines, neutralise
from tests.test_dashboard import WEEK, at, make_link


@pytest.fixture
def departments(synced_practice):
    return list(synced_practice.departments.order_by("provet_id")[:2])


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def download(client, **query) -> tuple[object, list[dict[str, str]]]:
    response = client.get("/dashboard/export.csv", query)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff"), "a byte-order mark, so Excel reads UTF-8"
    return response, list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_export_is_streamed_utf8_csv_with_a_file_name(manager_client, departments):
    response, rows = download(manager_client, **WEEK, department=departments[0].provet_id)
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="paylinks-northvale-veterinary-group-'
        f'{departments[0].name.lower().replace(" ", "-")}-2025-03-03-2025-03-09.csv"'
    )
    assert rows == []


def test_a_row_has_plain_amounts_and_local_iso_timestamps(
    manager_client, departments, receptionist
):
    link = make_link(
        departments[0].practice,
        departments[0],
        receptionist,
        created=at(4, 10, 0),
        paid=at(4, 10, 25),
        amount=Decimal("1234.50"),
        client_name='Mäkelä, "Musti" & co',
        delivery_method=DeliveryMethod.EMAIL,
        expires_at=at(6, 10, 0),
    )
    _, rows = download(manager_client, **WEEK)
    assert rows == [
        {
            "Link": str(link.code),
            "Created": "2025-03-04T10:00:00+02:00",
            "Created by": "riikka",
            "Department": departments[0].name,
            "Channel": "Email",
            "Invoice": link.invoice.number,
            "Client": 'Mäkelä, "Musti" & co',
            "Description": "",
            "Amount": "1234.50",
            "Currency": "EUR",
            "Status": "Paid",
            "Delivery status": "Sent",
            "Expires": "2025-03-06T10:00:00+02:00",
            "Paid": "2025-03-04T10:25:00+02:00",
            "Cancelled": "",
        }
    ]


def test_the_export_holds_the_links_the_dashboard_counts(manager_client, departments, receptionist):
    practice = departments[0].practice
    make_link(practice, departments[0], receptionist, created=at(3), paid=at(3, 13))
    make_link(practice, departments[1], receptionist, created=at(9, 23, 59))
    make_link(practice, departments[0], receptionist, created=at(5), state="failed")
    make_link(practice, departments[0], receptionist, created=at(10, 0, 0))
    make_link(practice, departments[0], receptionist, created=at(2, 23, 59))
    response = manager_client.get("/dashboard/", WEEK)
    totals = response.context["board"].totals
    _, rows = download(manager_client, **WEEK)
    assert len(rows) == totals.sent == 2
    paid = [row for row in rows if row["Status"] == "Paid"]
    assert sum(Decimal(row["Amount"]) for row in paid) == totals.paid_amount
    _, only_second = download(manager_client, **WEEK, department=departments[1].provet_id)
    assert [row["Department"] for row in only_second] == [departments[1].name]


def test_rows_come_oldest_first_with_every_status_in_words(
    manager_client, departments, receptionist
):
    practice = departments[0].practice
    make_link(
        practice,
        departments[0],
        receptionist,
        created=at(6),
        state="closed",
        payment_status=PaymentStatus.EXPIRED,
        delivery_status=DeliveryStatus.FAILED,
    )
    make_link(practice, departments[0], None, created=at(5), cancelled_at=at(5, 13))
    _, rows = download(manager_client, **WEEK)
    assert [(r["Created by"], r["Status"], r["Delivery status"]) for r in rows] == [
        ("Nobody in PayLinks (made in Provet)", "Cancelled", "Sent"),
        ("riikka", "Expired", "Delivery failed"),
    ]
    assert rows[0]["Cancelled"] == "2025-03-05T13:00:00+02:00"


@pytest.mark.parametrize(
    "dangerous",
    [
        '=HYPERLINK("http://evil.example","Click")',
        "+358 40 123",
        "-2+3",
        "@SUM(A1:A9)",
        "\tTabbed",
        "\rReturned",
    ],
)
def test_a_cell_a_spreadsheet_would_run_as_a_formula_starts_with_a_quote(
    manager_client, departments, receptionist, dangerous
):
    make_link(
        departments[0].practice,
        departments[0],
        receptionist,
        created=at(4),
        client_name=dangerous,
        description=dangerous,
    )
    _, (row,) = download(manager_client, **WEEK)
    assert row["Client"] == row["Description"] == "'" + dangerous


def test_harmless_text_and_numbers_are_left_alone():
    assert neutralise("Maija Laine") == "Maija Laine"
    assert neutralise("a=b") == "a=b"
    assert neutralise("") == ""
    assert neutralise("=1+1") == "'=1+1"


def test_the_csv_comes_in_chunks_not_all_at_once():
    records = ([str(n), "x"] for n in range(1200))
    chunks = list(lines(records))
    assert len(chunks) == 3
    assert "".join(chunks).count("\r\n") == 1200


def test_only_managers_may_export(client, receptionist):
    client.force_login(receptionist)
    assert client.get("/dashboard/export.csv").status_code == 403


def test_a_bad_range_is_refused_with_the_reason(manager_client, departments):
    response = manager_client.get(
        "/dashboard/export.csv", {"period": "custom", "start": "2025-03-09", "end": "2025-03-01"}
    )
    assert response.status_code == 400
    assert "The range ends before it starts." in response.content.decode()


def test_the_dashboard_offers_the_export_of_what_it_shows(manager_client, departments):
    page = manager_client.get("/dashboard/", WEEK).content.decode()
    assert (
        'href="/dashboard/export.csv?period=custom&amp;start=2025-03-03&amp;end=2025-03-09"' in page
    )


def test_unsent_links_have_no_row(manager_client, departments, receptionist):
    for state in (PaymentLink.State.CREATING, PaymentLink.State.UNKNOWN, "failed"):
        make_link(departments[0].practice, departments[0], receptionist, created=at(4), state=state)
    _, rows = download(manager_client, **WEEK)
    assert rows == []


def test_the_status_column_says_what_the_link_page_says(
    manager_client, departments, receptionist, manager
):
    """Cancelled, replaced, superseded, paid, expired: the words of status_words, whichever
    Provet status lies beneath."""
    practice = departments[0].practice
    expired = make_link(
        practice,
        departments[0],
        receptionist,
        created=at(4, 9),
        state="closed",
        payment_status=PaymentStatus.EXPIRED,
    )
    make_link(
        practice,
        departments[0],
        receptionist,
        created=at(4, 10),
        invoice=expired.invoice,
        replaces=expired,
        idempotency_key="again",
    )
    superseded = make_link(practice, departments[0], receptionist, created=at(5, 9))
    superseded.invoice.due_sum = Decimal("0.00")
    superseded.invoice.save()
    make_link(practice, departments[0], receptionist, created=at(6, 9), paid=at(6, 10))
    make_link(practice, departments[0], receptionist, created=at(7, 9), cancelled_at=at(7, 10))
    _, rows = download(manager_client, **WEEK)
    assert [row["Status"] for row in rows] == [
        "Replaced by a new link",
        "Waiting for payment",
        "Superseded: the invoice is paid",
        "Paid",
        "Cancelled",
    ]
    # The same words as on each link's own page.
    for row in rows:
        page = manager_client.get(f"/links/{row['Link']}/").content.decode()
        assert row["Status"] in page


def test_created_by_is_the_person_s_name_and_the_channel_the_dashboard_s(
    manager_client, departments, receptionist
):
    practice = departments[0].practice
    receptionist.first_name, receptionist.last_name = "Riikka", "Järvinen"
    receptionist.save()
    for day, channel in ((3, DeliveryMethod.SMS_AND_EMAIL), (4, DeliveryMethod.DONT_SEND)):
        make_link(practice, departments[0], receptionist, created=at(day), delivery_method=channel)
    make_link(practice, departments[0], None, created=at(5), imported=True)
    _, rows = download(manager_client, **WEEK)
    assert [(row["Created by"], row["Channel"]) for row in rows] == [
        ("Riikka Järvinen", "SMS and email"),
        ("Riikka Järvinen", "Handed over at the desk"),
        ("Nobody in PayLinks (made in Provet)", "SMS"),
    ]
    board = manager_client.get("/dashboard/", WEEK).context["board"]
    assert {row["Created by"] for row in rows} == {row.label for row in board.by_staff}
    assert {row["Channel"] for row in rows} == {row.label for row in board.by_channel}


def test_the_export_costs_the_same_queries_however_many_links(
    manager_client, departments, receptionist, django_assert_max_num_queries
):
    practice = departments[0].practice
    make_link(practice, departments[0], receptionist, created=at(4))
    with django_assert_max_num_queries(20) as few:
        download(manager_client, **WEEK)
    for day in range(3, 10):
        make_link(practice, departments[1], None, created=at(day), paid=at(day, 13))
        make_link(practice, departments[0], receptionist, created=at(day, 14))
    with django_assert_max_num_queries(len(few.captured_queries)):
        _, rows = download(manager_client, **WEEK)
    assert len(rows) == 15
