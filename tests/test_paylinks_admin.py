"""In admin the audit trail is append-only: links are shown, never changed or deleted; their events
neither. A superuser is no exception."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from paylinks.create import create_link
from paylinks.models import (
    EventDelivery,
    EventEndpoint,
    LinkEvent,
    OutgoingEvent,
    PaymentLink,
    WebhookDelivery,
)
from tests.conftest import draft_for


@pytest.fixture
def admin_client(db, client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


@pytest.fixture
def link(invoice, receptionist) -> PaymentLink:
    return create_link(draft_for(invoice, receptionist))


@pytest.fixture
def event(link) -> LinkEvent:
    return link.events.earliest("created_at")


def link_url(link: PaymentLink, action: str = "change") -> str:
    return f"/admin/paylinks/paymentlink/{link.pk}/{action}/"


def event_url(event: LinkEvent, action: str = "change") -> str:
    return f"/admin/paylinks/linkevent/{event.pk}/{action}/"


def bulk_delete(admin_client, changelist: str, pk: int):
    """Admin's "Delete selected", asked for and confirmed, as a crafted form would post it."""
    return admin_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
        follow=True,
    )


def test_a_link_s_admin_page_shows_the_link_with_nothing_to_edit_or_save(admin_client, link):
    response = admin_client.get(link_url(link))
    assert response.status_code == 200
    page = response.content.decode()
    assert link.description in page
    assert 'name="_save"' not in page
    assert 'name="description"' not in page
    assert 'name="email"' not in page
    assert f'href="{link_url(link, "delete")}"' not in page


def test_posting_a_change_to_a_link_is_refused_and_changes_nothing(admin_client, link):
    before = link.description
    response = admin_client.post(
        link_url(link), {"description": "Changed in admin", "email": "someone@example.com"}
    )
    assert response.status_code == 403
    link.refresh_from_db()
    assert link.description == before
    assert link.email == ""


def test_a_link_can_t_be_deleted_in_admin(admin_client, link):
    assert admin_client.get(link_url(link, "delete")).status_code == 403
    assert admin_client.post(link_url(link, "delete"), {"post": "yes"}).status_code == 403
    assert PaymentLink.objects.filter(pk=link.pk).exists()


def test_links_can_t_be_deleted_in_bulk(admin_client, link):
    changelist = admin_client.get("/admin/paylinks/paymentlink/")
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.content.decode()
    bulk_delete(admin_client, "/admin/paylinks/paymentlink/", link.pk)
    assert PaymentLink.objects.filter(pk=link.pk).exists()
    assert link.events.exists()


def test_links_can_t_be_added_in_admin(admin_client, db):
    assert admin_client.get("/admin/paylinks/paymentlink/add/").status_code == 403


def test_a_link_s_events_on_its_page_can_t_be_edited_deleted_or_added(admin_client, link):
    page = admin_client.get(link_url(link)).content.decode()
    event = link.events.earliest("created_at")
    assert event.get_kind_display() in page
    assert "events-0-DELETE" not in page
    assert 'name="events-0-message"' not in page
    assert 'name="events-MAX_NUM_FORMS" value="0"' in page  # no row can be added


def test_a_link_event_s_admin_page_has_nothing_to_edit_or_save(admin_client, event):
    response = admin_client.get(event_url(event))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert 'name="message"' not in page


def test_posting_a_change_to_a_link_event_is_refused_and_changes_nothing(admin_client, event):
    before = event.message
    response = admin_client.post(event_url(event), {"message": "Nothing happened"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.message == before


def test_a_link_event_can_t_be_deleted_one_at_a_time_or_in_bulk(admin_client, event):
    assert admin_client.get(event_url(event, "delete")).status_code == 403
    assert admin_client.post(event_url(event, "delete"), {"post": "yes"}).status_code == 403
    changelist = admin_client.get("/admin/paylinks/linkevent/")
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.content.decode()
    bulk_delete(admin_client, "/admin/paylinks/linkevent/", event.pk)
    assert LinkEvent.objects.filter(pk=event.pk).exists()


def test_link_events_can_t_be_added_in_admin(admin_client, db):
    assert admin_client.get("/admin/paylinks/linkevent/add/").status_code == 403


# Times in the practice's time zone; nothing added by hand to what is a record.


HELSINKI_SUMMER = dt.datetime(2026, 7, 1, 9, 30, 5, tzinfo=dt.UTC)  # 12:30:05 EEST


@pytest.fixture
def at_a_known_moment(link, event):
    PaymentLink.objects.filter(pk=link.pk).update(
        created_at=HELSINKI_SUMMER, expires_at=HELSINKI_SUMMER + dt.timedelta(hours=1)
    )
    LinkEvent.objects.filter(pk=event.pk).update(created_at=HELSINKI_SUMMER)
    return link


def test_a_link_s_times_are_shown_in_the_practice_s_time_zone(admin_client, at_a_known_moment):
    link = at_a_known_moment
    listed = admin_client.get("/admin/paylinks/paymentlink/").content.decode()
    assert "2026-07-01 12:30:05 EEST" in listed
    page = admin_client.get(link_url(link)).content.decode()
    assert "2026-07-01 12:30:05 EEST" in page  # created, and its event on the page
    assert "2026-07-01 13:30:05 EEST" in page  # expires
    assert "9:30" not in page


def test_a_uk_practice_s_link_times_are_in_london_time(admin_client, at_a_known_moment):
    at_a_known_moment.practice.timezone = "Europe/London"
    at_a_known_moment.practice.save()
    listed = admin_client.get("/admin/paylinks/paymentlink/").content.decode()
    assert "2026-07-01 10:30:05 BST" in listed


def test_events_are_listed_in_the_practice_s_time_zone(admin_client, at_a_known_moment, event):
    listed = admin_client.get("/admin/paylinks/linkevent/").content.decode()
    assert "2026-07-01 12:30:05 EEST" in listed
    page = admin_client.get(event_url(event)).content.decode()
    assert "2026-07-01 12:30:05 EEST" in page


def test_webhooks_received_are_listed_in_the_practice_s_time_zone(admin_client, practice):
    delivery = WebhookDelivery.objects.create(practice=practice, trigger="invoice_payment")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=HELSINKI_SUMMER)
    listed = admin_client.get("/admin/paylinks/webhookdelivery/").content.decode()
    assert "2026-07-01 12:30:05 EEST" in listed
    page = admin_client.get(f"/admin/paylinks/webhookdelivery/{delivery.pk}/change/")
    assert "2026-07-01 12:30:05 EEST" in page.content.decode()


def test_outgoing_deliveries_are_listed_in_the_practice_s_time_zone(admin_client, link):
    endpoint = EventEndpoint(practice=link.practice, url="https://clinic.example/hook")
    endpoint.secret = "plsec_test"
    endpoint.save()
    event = OutgoingEvent.objects.create(
        practice=link.practice, link=link, type="link.paid", data={}, created_at=HELSINKI_SUMMER
    )
    delivery = EventDelivery.objects.create(
        event=event,
        endpoint=endpoint,
        retry_until=HELSINKI_SUMMER + dt.timedelta(days=1),
        next_attempt_at=HELSINKI_SUMMER,
        created_at=HELSINKI_SUMMER,
    )
    listed = admin_client.get("/admin/paylinks/eventdelivery/").content.decode()
    assert "2026-07-01 12:30:05 EEST" in listed
    page = admin_client.get(f"/admin/paylinks/eventdelivery/{delivery.pk}/change/")
    assert "2026-07-02 12:30:05 EEST" in page.content.decode()  # retried until
    page = admin_client.get(f"/admin/paylinks/outgoingevent/{event.pk}/change/")
    assert "2026-07-01 12:30:05 EEST" in page.content.decode()


@pytest.mark.parametrize(
    "model",
    [
        "paymentlink",
        "linkevent",
        "invoice",
        "prepayment",
        "webhookdelivery",
        "driftfinding",
        "outgoingevent",
        "eventdelivery",
    ],
)
def test_records_have_no_add_button_and_can_t_be_added(admin_client, model, db):
    changelist = admin_client.get(f"/admin/paylinks/{model}/")
    assert changelist.status_code == 200
    assert f'href="/admin/paylinks/{model}/add/"' not in changelist.content.decode()
    assert admin_client.get(f"/admin/paylinks/{model}/add/").status_code == 403
    index = admin_client.get("/admin/").content.decode()
    assert f'href="/admin/paylinks/{model}/add/"' not in index


def test_endpoints_can_still_be_added(admin_client, db):
    assert admin_client.get("/admin/paylinks/eventendpoint/add/").status_code == 200


def test_departments_come_from_provet_and_are_not_added_by_hand(admin_client, db):
    assert admin_client.get("/admin/clinics/department/add/").status_code == 403
    changelist = admin_client.get("/admin/clinics/department/").content.decode()
    assert 'href="/admin/clinics/department/add/"' not in changelist
