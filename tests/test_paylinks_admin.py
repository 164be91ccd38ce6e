"""In admin the audit trail is append-only: links are shown, never changed or deleted; their events
neither. A superuser is no exception."""

import pytest
from django.contrib.auth import get_user_model

from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink
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
