"""Admins connect a practice to Provet: credentials stay secret, the actions say what happened."""

import datetime as dt
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


def practice_form(practice: Practice, **changes) -> dict:
    """The practice's admin page as the browser posts it unchanged, with `changes` made."""
    data = {
        "name": practice.name,
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
        "follow_up_delay_hours": 24,
        "follow_up_days": [1, 2, 3, 4, 5],
        "follow_up_opens_at": "08:00",
        "follow_up_closes_at": "17:00",
        "follow_up_max_sends": 1,
        "departments-TOTAL_FORMS": 0,
        "departments-INITIAL_FORMS": 0,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def save_practice(admin_client, practice: Practice, **changes):
    return admin_client.post(
        f"/admin/clinics/practice/{practice.pk}/change/", practice_form(practice, **changes)
    )


def field_errors(response) -> dict:
    return response.context["adminform"].form.errors


def test_saving_the_form_with_blank_secrets_keeps_them(admin_client, practice):
    secret = practice.client_secret
    response = save_practice(admin_client, practice, name="Northvale (renamed)")
    assert response.status_code == 302, field_errors(response)
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


# Automatic follow-up


def test_automatic_follow_up_is_off_until_an_admin_turns_it_on(admin_client, practice):
    assert not practice.auto_follow_up
    page = admin_client.get(f"/admin/clinics/practice/{practice.pk}/change/").content.decode()
    assert "Automatic follow-up" in page
    assert 'name="auto_follow_up"' in page and 'name="auto_follow_up" checked' not in page

    response = save_practice(
        admin_client,
        practice,
        auto_follow_up="on",
        follow_up_delay_hours=4,
        follow_up_days=[1, 2, 3, 4, 5, 6],
        follow_up_opens_at="07:30",
        follow_up_closes_at="19:00",
        follow_up_max_sends=2,
    )

    assert response.status_code == 302, field_errors(response)
    practice.refresh_from_db()
    assert practice.auto_follow_up
    assert practice.follow_up_since is not None  # links expiring from now on
    assert (practice.follow_up_delay_hours, practice.follow_up_days) == (4, [1, 2, 3, 4, 5, 6])
    assert (practice.follow_up_opens_at, practice.follow_up_closes_at) == (
        dt.time(7, 30),
        dt.time(19),
    )
    assert practice.follow_up_max_sends == 2


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"follow_up_opens_at": "17:00", "follow_up_closes_at": "08:00"},
            "follow_up_closes_at",
            "The practice must close after it opens.",
        ),
        (
            {"follow_up_opens_at": "09:00", "follow_up_closes_at": "09:00"},
            "follow_up_closes_at",
            "The practice must close after it opens.",
        ),
        ({"follow_up_max_sends": 0}, "follow_up_max_sends", "greater than or equal to 1"),
        ({"follow_up_delay_hours": 0}, "follow_up_delay_hours", "greater than or equal to 1"),
        ({"follow_up_delay_hours": 500}, "follow_up_delay_hours", "less than or equal to 168"),
        ({"follow_up_delay_hours": "soon"}, "follow_up_delay_hours", "Enter a whole number."),
        ({"follow_up_opens_at": "25:00"}, "follow_up_opens_at", "Enter a valid time."),
        (
            {"follow_up_days": []},
            "follow_up_days",
            "Choose at least one opening day, or turn automatic follow-up off.",
        ),
        ({"follow_up_days": [8]}, "follow_up_days", "Select a valid choice."),
    ],
)
def test_follow_up_settings_that_make_no_sense_are_refused_at_the_field(
    admin_client, practice, changes, field, message
):
    response = save_practice(admin_client, practice, auto_follow_up="on", **changes)

    assert response.status_code == 200
    assert message in " ".join(field_errors(response)[field])
    assert message.replace("'", "&#x27;") in response.content.decode()
    practice.refresh_from_db()
    assert not practice.auto_follow_up


def test_turning_follow_up_off_and_on_again_starts_afresh(practice):
    practice.auto_follow_up = True
    practice.save()
    first = practice.follow_up_since
    practice.auto_follow_up = False
    practice.save()
    assert Practice.objects.get(pk=practice.pk).follow_up_since is None
    practice.auto_follow_up = True
    practice.save(update_fields=["auto_follow_up"])
    assert Practice.objects.get(pk=practice.pk).follow_up_since > first


def test_opening_hours_are_read_in_the_practice_s_time_zone(practice):
    practice.follow_up_days = [1, 2, 3, 4, 5]
    practice.follow_up_opens_at, practice.follow_up_closes_at = dt.time(8), dt.time(17)
    # Monday 2026-11-30, 06:30 UTC is 08:30 in Helsinki (open) and 06:30 in London (closed).
    monday = dt.datetime(2026, 11, 30, 6, 30, tzinfo=dt.UTC)
    assert practice.is_open_at(monday)
    practice.timezone = "Europe/London"
    assert not practice.is_open_at(monday)
    assert practice.is_open_at(monday + dt.timedelta(hours=2))
    assert not practice.is_open_at(monday + dt.timedelta(days=5, hours=2))  # Saturday


# Choices, addresses and times


def test_currency_country_and_time_zone_are_chosen_from_lists(admin_client, practice):
    response = admin_client.get(f"/admin/clinics/practice/{practice.pk}/change/")
    form = response.context["adminform"].form
    currencies = dict(form.fields["currency"].choices)
    assert {"EUR", "GBP", "SEK", "NOK", "DKK", "USD"} <= set(currencies)
    countries = dict(form.fields["country"].choices)
    assert countries["FI"] == "Finland (FI)" and countries["GB"] == "United Kingdom (GB)"
    assert all(len(code) == 2 for code in countries)
    zones = dict(form.fields["timezone"].choices)
    assert {"Europe/Helsinki", "Europe/London", "Europe/Stockholm", "UTC"} <= set(zones)
    page = response.content.decode()
    assert '<select name="currency"' in page and '<option value="GBP">' in page
    assert '<select name="country"' in page and '<option value="FI" selected>' in page
    assert '<select name="timezone"' in page
    assert '<option value="Europe/Helsinki" selected>' in page


@pytest.mark.parametrize(
    ("field", "value"),
    [("currency", "EURO"), ("currency", "XXX"), ("country", "ZZ"), ("timezone", "Mars/Olympus")],
)
def test_a_value_not_on_the_list_is_refused_at_the_field(admin_client, practice, field, value):
    response = save_practice(admin_client, practice, **{field: value})
    assert response.status_code == 200
    assert "Select a valid choice." in field_errors(response)[field][0]
    practice.refresh_from_db()
    assert getattr(practice, field) != value


def test_a_uk_practice_is_saved_with_its_currency_country_and_zone(admin_client, practice):
    response = save_practice(
        admin_client, practice, currency="GBP", country="GB", timezone="Europe/London"
    )
    assert response.status_code == 302, field_errors(response)
    practice.refresh_from_db()
    assert (practice.currency, practice.country, practice.timezone) == (
        "GBP",
        "GB",
        "Europe/London",
    )


def test_the_webhook_address_is_shown_in_full(admin_client, practice):
    page = admin_client.get(f"/admin/clinics/practice/{practice.pk}/change/").content.decode()
    full = f"http://testserver/webhooks/provet/{practice.webhook_secret}/"
    assert f'value="{full}"' in page
    assert "this PayLinks address" not in page
    # And it is the address that works.
    assert DjangoClient().post(full, {"invoice_id": "1"}).status_code == 200


def test_a_new_practice_s_webhook_address_is_promised_for_after_saving(admin_client, db):
    page = admin_client.get("/admin/clinics/practice/add/").content.decode()
    assert "Shown once the practice is saved." in page


def test_a_paused_practice_shows_until_when_in_its_own_time_zone(admin_client, practice):
    Practice.objects.filter(pk=practice.pk).update(
        paused_until=dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)
    )
    page = admin_client.get(f"/admin/clinics/practice/{practice.pk}/change/").content.decode()
    assert "2026-07-01 12:30:00 EEST" in page  # Helsinki in summer
