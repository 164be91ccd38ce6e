"""The lists: open links first, filters and search, pagination, and the follow-up queue."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from clinics.models import Department
from paylinks.create import create_link
from paylinks.forms import new_form_token
from paylinks.models import Invoice, PaymentLink, PaymentStatus
from paylinks.refresh import check_now
from paylinks.views.lists import PAGE_SIZE
from tests.conftest import draft_for, make_user, time_as_read


@pytest.fixture
def staff(client, receptionist):
    client.force_login(receptionist)
    return client


@pytest.fixture
def departments(synced_practice):
    return list(synced_practice.departments.filter(allow_nhp_processing=True))


def make_link(practice, department, user, **fields) -> PaymentLink:
    invoice, _ = Invoice.objects.get_or_create(
        practice=practice,
        provet_id=fields.pop("invoice_id", 1),
        defaults={
            "number": fields.pop("number", "NV-1"),
            "status": 3,
            "due_sum": fields.pop("due_sum", Decimal("50.00")),
            "fetched_at": timezone.now(),
        },
    )
    defaults = {
        "practice": practice,
        "invoice": invoice,
        "department": department,
        "amount": Decimal("50.00"),
        "currency": "EUR",
        "duration_minutes": 60,
        "idempotency_key": new_form_token(),
        "state": PaymentLink.State.ACTIVE,
        "payment_status": PaymentStatus.PENDING,
        "created_by": user,
        "client_name": "Maija Laine",
    }
    defaults.update(fields)
    return PaymentLink.objects.create(**defaults)


def listed(response) -> list[PaymentLink]:
    return list(response.context["page"].object_list)


def test_open_links_come_first_then_the_newest(staff, departments, receptionist):
    practice = departments[0].practice
    paid = make_link(practice, departments[0], receptionist, payment_status=5, state="closed")
    waiting = make_link(practice, departments[0], receptionist)
    newer_paid = make_link(practice, departments[0], receptionist, payment_status=5)
    assert listed(staff.get("/links/")) == [waiting, newer_paid, paid]


def test_links_filter_by_status_department_and_creator(staff, departments, receptionist):
    practice = departments[0].practice
    colleague = make_user("colleague", practice)
    here = make_link(practice, departments[0], receptionist)
    there = make_link(practice, departments[1], colleague, payment_status=5)
    assert listed(staff.get("/links/", {"status": "paid"})) == [there]
    assert listed(staff.get("/links/", {"status": "open"})) == [here]
    assert listed(staff.get("/links/", {"department": departments[1].provet_id})) == [there]
    assert listed(staff.get("/links/", {"created_by": "colleague"})) == [there]


def test_links_filter_by_the_day_they_were_made(staff, departments, receptionist):
    practice = departments[0].practice
    today = make_link(practice, departments[0], receptionist)
    old = make_link(practice, departments[0], receptionist)
    PaymentLink.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(3))
    # The filter's day is the practice's (Helsinki), not UTC's: they differ from 22:00 UTC.
    day = timezone.localdate(timezone=practice.zone).isoformat()
    assert listed(staff.get("/links/", {"date": day})) == [today]


@pytest.mark.parametrize("query", ["laine", "NV-77", "maija@", "401234"])
def test_links_are_found_by_client_invoice_email_or_phone(staff, departments, receptionist, query):
    practice = departments[0].practice
    found = make_link(
        practice,
        departments[0],
        receptionist,
        invoice_id=77,
        number="NV-77",
        email="maija@example.com",
        phone="+358401234567",
    )
    make_link(practice, departments[0], receptionist, client_name="Other Person")
    assert listed(staff.get("/links/", {"q": query})) == [found]


def test_lists_are_paginated(staff, departments, receptionist):
    for _ in range(PAGE_SIZE + 3):
        make_link(departments[0].practice, departments[0], receptionist)
    first = staff.get("/links/")
    assert len(listed(first)) == PAGE_SIZE
    second = staff.get("/links/", {"page": 2})
    assert len(listed(second)) == 3
    assert "Page 2 of 2" in second.content.decode()


def test_another_practice_s_links_never_appear(client, outsider, departments, receptionist):
    make_link(departments[0].practice, departments[0], receptionist)
    client.force_login(outsider)
    assert listed(client.get("/links/")) == []
    assert listed(client.get("/links/follow-up/")) == []


def test_follow_up_lists_expired_unpaid_links_still_due(staff, departments, receptionist):
    practice = departments[0].practice
    expired = make_link(practice, departments[0], receptionist, payment_status=3, state="closed")
    make_link(practice, departments[0], receptionist, payment_status=5, state="closed")
    settled = make_link(
        practice,
        departments[0],
        receptionist,
        payment_status=3,
        state="closed",
        invoice_id=2,
        due_sum=Decimal("0"),
    )
    replaced = make_link(practice, departments[0], receptionist, payment_status=3, state="closed")
    make_link(practice, departments[0], receptionist, replaces=replaced)
    shown = listed(staff.get("/links/follow-up/"))
    assert shown == [expired]
    assert settled not in shown


def test_department_choices_are_the_practice_s_own(staff, departments):
    other = Department.objects.exclude(practice=departments[0].practice)
    form = staff.get("/links/").context["form"]
    names = [label for _, label in form.fields["department"].choices]
    assert all(d.name not in names for d in other)


def test_one_click_sends_an_expired_link_again(staff, invoice, receptionist):
    from sandbox import clock

    link = create_link(draft_for(invoice, receptionist, amount=Decimal("10.00")))
    clock.advance(2 * 3600)
    check_now(link, user=receptionist)
    assert link.payment_status == PaymentStatus.EXPIRED
    page = staff.get("/links/follow-up/")
    [(row, token)] = page.context["rows"]
    response = staff.post(
        f"/links/{row.code}/send-again/",
        {"form_token": token, "next": "/links/follow-up/"},
    )
    new = PaymentLink.objects.exclude(pk=link.pk).get()
    assert response["Location"] == "/links/follow-up/"  # the queue stays in front of them
    assert new.state == PaymentLink.State.ACTIVE
    assert listed(staff.get("/links/follow-up/")) == []


def test_a_page_of_links_costs_the_same_queries_however_many_rows(
    staff, departments, receptionist, django_assert_max_num_queries
):
    for _ in range(3):
        make_link(departments[0].practice, departments[0], receptionist)
    with django_assert_max_num_queries(12) as few:
        staff.get("/links/")
    for _ in range(20):
        make_link(departments[0].practice, departments[0], receptionist)
    with django_assert_max_num_queries(len(few.captured_queries)):
        staff.get("/links/")


OUT_OF_REACH = "Pick a date between 1 Jan 2000 and 31 Dec 2100."


@pytest.mark.parametrize("field", ["date", "created_from", "created_to"])
@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1999-12-31", "2101-01-01"])
def test_a_date_nobody_means_is_refused_at_its_field_and_filters_nothing(
    staff, departments, receptionist, field, day
):
    link = make_link(departments[0].practice, departments[0], receptionist)
    response = staff.get("/links/", {field: day})
    assert response.status_code == 200
    assert response.context["form"].errors == {field: [OUT_OF_REACH]}
    assert OUT_OF_REACH in response.content.decode()
    assert listed(response) == [link]


def test_the_first_and_the_last_day_within_reach_can_be_picked(staff, departments, receptionist):
    link = make_link(departments[0].practice, departments[0], receptionist)
    response = staff.get("/links/", {"created_from": "2000-01-01", "created_to": "2100-12-31"})
    assert response.context["form"].errors == {}
    assert listed(response) == [link]


def test_a_range_that_ends_before_it_starts_says_so(staff, departments):
    response = staff.get("/links/", {"created_from": "2025-03-09", "created_to": "2025-03-01"})
    assert response.context["form"].errors == {"created_to": ["The range ends before it starts."]}
    assert "The range ends before it starts." in response.content.decode()


@pytest.mark.parametrize("code", ["garbage", "0" * 5000, "\x00", ""])
def test_a_malformed_practice_code_lists_the_practice_worked_in(
    staff, departments, receptionist, code
):
    link = make_link(departments[0].practice, departments[0], receptionist)
    response = staff.get("/links/", {"practice": code})
    assert response.status_code == 200
    assert response.context["practice"] == link.practice
    assert listed(response) == [link]


@pytest.mark.parametrize(
    "stored", ["+358406716444", "0406716444", "040 671 6444", "+358 40 6716444"]
)
@pytest.mark.parametrize(
    "typed", ["040 671 6444", "0406716444", "+358 40 6716444", "+358406716444", "671 6444"]
)
def test_a_phone_is_found_however_it_was_typed_or_stored(
    staff, departments, receptionist, stored, typed
):
    practice = departments[0].practice
    found = make_link(practice, departments[0], receptionist, phone=stored)
    make_link(practice, departments[0], receptionist, phone="+358401234567", invoice_id=2)
    assert listed(staff.get("/links/", {"q": typed})) == [found]


def test_a_phone_is_found_on_the_invoice_s_client_too(staff, departments, receptionist):
    practice = departments[0].practice
    found = make_link(practice, departments[0], receptionist, invoice_id=5, phone="")
    Invoice.objects.filter(provet_id=5).update(client_phone="+358406716444")
    make_link(practice, departments[0], receptionist, invoice_id=6, phone="")
    assert listed(staff.get("/links/", {"q": "040 671 6444"})) == [found]


def test_a_number_that_is_no_phone_still_finds_invoices_and_not_every_phone(
    staff, departments, receptionist
):
    practice = departments[0].practice
    invoice_1042 = make_link(practice, departments[0], receptionist, invoice_id=9, number="NV-1042")
    make_link(practice, departments[0], receptionist, invoice_id=10, phone="+358406716444")
    assert listed(staff.get("/links/", {"q": "1042"})) == [invoice_1042]


def test_the_list_shows_amounts_and_days_the_reader_s_way(client, departments, receptionist):
    from clinics.languages import SESSION_KEY

    practice = departments[0].practice
    make_link(practice, departments[0], receptionist, amount=Decimal("1192.81"))
    client.force_login(receptionist)
    english = client.get("/links/").content.decode()
    assert "€1,192.81" in english
    session = client.session
    session[SESSION_KEY] = "fi"
    session.save()
    finnish = client.get("/links/").content.decode()
    assert "1\xa0192,81\xa0€" in finnish
    made = PaymentLink.objects.get().created_at
    assert time_as_read(made, "fi", practice.zone) in finnish
