"""Admins connect a practice to Provet: credentials stay secret, the actions say what happened."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient

from clinics.models import Department, Practice


@pytest.fixture
def admin_client(db, client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


def run_action(admin_client, action: str, practice: Practice):
    return admin_client.post(
        "/admin/clinics/practice/",
        {"action": action, "_selected_action": [practice.pk]},
        follow=True,
    )


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_test_connection_succeeds_against_the_seeded_practice(admin_client, practice):
    response = run_action(admin_client, "test_connection", practice)
    [message] = shown_messages(response)
    assert message.startswith("Northvale Veterinary Group: Connected:")
    assert "departments" in message and "Integration" in message


def test_test_connection_gives_a_clear_reason_when_the_secret_is_wrong(admin_client, practice):
    practice.client_secret = "wrong"
    practice.save()
    [message] = shown_messages(run_action(admin_client, "test_connection", practice))
    assert "refused the credentials" in message
    assert "Check the client id and secret" in message


def test_test_connection_explains_an_unreachable_provet(admin_client, practice):
    DjangoClient().post(
        f"/sandbox/{practice.provet_id}/_control/faults/",
        json.dumps({"path": "department/", "kind": "503", "count": 10}),
        content_type="application/json",
    )
    [message] = shown_messages(run_action(admin_client, "test_connection", practice))
    assert "could not be reached" in message


def test_sync_departments_brings_in_the_provet_pay_flag(admin_client, practice):
    response = run_action(admin_client, "sync_departments_action", practice)
    [message] = shown_messages(response)
    departments = Department.objects.filter(practice=practice)
    assert f"{departments.count()} departments added" in message
    assert departments.count() >= 3
    assert departments.filter(allow_nhp_processing=False).exists()
    assert departments.filter(allow_nhp_processing=True).exists()
    again = shown_messages(run_action(admin_client, "sync_departments_action", practice))
    assert "0 departments added" in again[0]
    assert Department.objects.filter(practice=practice).count() == departments.count()


def test_credentials_are_stored_encrypted_and_never_shown(admin_client, practice):
    secret = practice.client_secret
    stored = Practice.objects.values_list("client_secret_encrypted", flat=True).get()
    assert secret and secret not in stored
    page = admin_client.get(f"/admin/clinics/practice/{practice.pk}/change/").content.decode()
    assert secret not in page
    assert stored not in page
    assert "client secret, API token" in page  # what is stored, never its value


def test_saving_the_form_with_blank_secrets_keeps_them(admin_client, practice):
    secret = practice.client_secret
    response = admin_client.post(
        f"/admin/clinics/practice/{practice.pk}/change/",
        {
            "name": "Northvale (renamed)",
            "is_active": "on",
            "domain": "",
            "base_url": practice.base_url,
            "provet_id": practice.provet_id,
            "provet_user_url": practice.provet_user_url,
            "auth_scheme": "oauth2",
            "client_id": practice.client_id,
            "client_secret": "",
            "api_token": "",
            "currency": "EUR",
            "country": "FI",
            "timezone": "Europe/Helsinki",
            "default_duration_minutes": 2880,
            "default_return_url": "",
            "rate_budget_per_minute": 120,
            "departments-TOTAL_FORMS": 0,
            "departments-INITIAL_FORMS": 0,
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    practice.refresh_from_db()
    assert practice.name == "Northvale (renamed)"
    assert practice.client_secret == secret


def test_oauth_without_a_secret_is_refused_at_the_field(admin_client, db):
    response = admin_client.post(
        "/admin/clinics/practice/add/",
        {
            "name": "New clinic",
            "domain": "provetcloud.com",
            "provet_id": 12,
            "auth_scheme": "oauth2",
            "client_id": "abc",
            "currency": "EUR",
            "country": "FI",
            "timezone": "Europe/Helsinki",
            "default_duration_minutes": 2880,
            "rate_budget_per_minute": 120,
            "departments-TOTAL_FORMS": 0,
            "departments-INITIAL_FORMS": 0,
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "OAuth2 needs the client secret." in response.content.decode()
    assert not Practice.objects.exists()


def test_rotating_the_webhook_secret_keeps_the_old_address_working_for_a_grace_period(
    admin_client, practice
):
    from django.utils import timezone

    old = practice.webhook_secret
    [message] = shown_messages(run_action(admin_client, "rotate_webhook_secret", practice))
    assert "new webhook address" in message and "7 more days" in message
    practice.refresh_from_db()
    new = practice.webhook_secret
    assert new != old

    webhook = DjangoClient()
    for secret in (new, old):  # Provet still has the old address until someone changes it
        answer = webhook.post(f"/webhooks/provet/{secret}/", {"invoice_id": "1"})
        assert answer.status_code == 200, secret
    page = admin_client.get(f"/admin/clinics/practice/{practice.pk}/change/").content.decode()
    assert f"/webhooks/provet/{new}/" in page and "accepted until" in page

    Practice.objects.filter(pk=practice.pk).update(
        previous_webhook_secret_until=timezone.now()
    )  # the grace period is over
    assert webhook.post(f"/webhooks/provet/{old}/", {"invoice_id": "1"}).status_code == 404
    assert webhook.post(f"/webhooks/provet/{new}/", {"invoice_id": "1"}).status_code == 200
