"""Who may call the API and what they see: API keys and sessions, the pages' scoping (another
practice's anything is a 404), roles, rate limits, and errors as problem+json."""

import datetime as dt
import json
import re
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import URLPattern
from django.utils import timezone

from clinics.models import Membership
from config.urls import api_v1
from paylinks.api.models import APIKey
from paylinks.create import create_link
from paylinks.models import PaymentLink, PaymentStatus
from tests.api_helpers import Api, invoice_link_body, make_key
from tests.conftest import draft_for, make_user, sandbox_invoice

PROBLEM = "application/problem+json"


@pytest.fixture
def key(synced_practice):
    return make_key(synced_practice)


@pytest.fixture
def api(key) -> Api:
    return Api(key[1])


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    assert all(isinstance(body[name], str) for name in ("type", "title", "detail"))
    return body


# Another practice's key sees nothing of this one: every endpoint answers 404.


@pytest.fixture
def elsewhere(other_practice):
    """A manager key of the other practice (its departments synced)."""
    from clinics.sync import sync_departments

    sync_departments(other_practice)
    return Api(make_key(other_practice, role=APIKey.Role.MANAGER, name="Elsewhere")[1])


def test_every_endpoint_is_a_404_for_another_practice_s_key(
    synced_practice, invoice, key, elsewhere
):
    link = create_link(draft_for(invoice, key[0].user))
    ours = {"practice": str(synced_practice.code)}
    provet_invoice = sandbox_invoice(synced_practice)
    calls = {
        "links": [
            lambda: elsewhere.get("/api/v1/links/", ours),
            lambda: elsewhere.post("/api/v1/links/", {**invoice_link_body(invoice), **ours}),
            lambda: elsewhere.post("/api/v1/links/", invoice_link_body(invoice)),
            lambda: elsewhere.post(
                "/api/v1/links/",
                {
                    "client": provet_invoice.client_id,
                    "department": invoice.department.provet_id,
                    "amount": "5",
                    "delivery_method": 0,
                    "description": "Prepayment",
                },
            ),
        ],
        "link": [lambda: elsewhere.get(f"/api/v1/links/{link.code}/")],
        "link_refresh": [lambda: elsewhere.post(f"/api/v1/links/{link.code}/refresh/")],
        "link_cancel": [lambda: elsewhere.post(f"/api/v1/links/{link.code}/cancel/")],
        "link_send_again": [lambda: elsewhere.post(f"/api/v1/links/{link.code}/send-again/")],
        "link_replace": [lambda: elsewhere.post(f"/api/v1/links/{link.code}/replace/", {})],
        "invoices": [lambda: elsewhere.get("/api/v1/invoices/", {"q": invoice.number, **ours})],
        "invoice": [
            lambda: elsewhere.get(f"/api/v1/invoices/{invoice.provet_id}/"),
            lambda: elsewhere.get(f"/api/v1/invoices/{invoice.provet_id}/", ours),
        ],
        "departments": [lambda: elsewhere.get("/api/v1/departments/", ours)],
        "clients": [lambda: elsewhere.get("/api/v1/clients/", {"q": "a", **ours})],
        "summary": [lambda: elsewhere.get("/api/v1/summary/", ours)],
    }
    # Every endpoint of the API is walked: one added later must be added here too.
    assert set(calls) == {pattern.name for pattern in api_v1 if isinstance(pattern, URLPattern)}

    for name, requests in calls.items():
        for request in requests:
            assert_problem(request(), 404), name

    link.refresh_from_db()
    assert link.is_open and not link.cancelled_at
    assert PaymentLink.objects.count() == 1
    # Its own list is its own practice's: empty.
    assert elsewhere.get("/api/v1/links/").json()["results"] == []


def test_a_person_sees_exactly_the_practices_of_their_memberships(
    client, synced_practice, invoice, other_practice, receptionist, outsider
):
    link = create_link(draft_for(invoice, receptionist))
    client.force_login(outsider)

    assert client.get(f"/api/v1/links/{link.code}/").status_code == 404
    client.force_login(receptionist)
    assert client.get(f"/api/v1/links/{link.code}/").status_code == 200


def test_a_key_acts_as_a_member_of_its_practice_only_with_its_role(synced_practice, key):
    api_key, secret = key
    membership = Membership.objects.get(user=api_key.user)
    assert (membership.practice, membership.role) == (synced_practice, "reception")
    assert not api_key.user.has_usable_password()
    assert secret not in api_key.hashed_key and secret.split(".")[1] not in api_key.id

    api_key.role = APIKey.Role.MANAGER
    api_key.save()

    assert Membership.objects.get(user=api_key.user).role == "manager"


# Authentication


def test_without_a_key_or_a_session_it_is_a_401(db):
    body = assert_problem(Client().get("/api/v1/links/"), 401)
    assert body["type"] == "about:blank" and body["title"] == "Unauthorized"
    assert Client().get("/api/v1/links/")["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize("change", ["revoked", "expired", "unknown"])
def test_a_revoked_expired_or_unknown_key_is_a_401(synced_practice, key, change):
    api_key, secret = key
    if change == "revoked":
        api_key.revoked = True
    elif change == "expired":
        api_key.expiry_date = timezone.now() - dt.timedelta(minutes=1)
    else:
        secret = secret.split(".")[0] + ".not-the-secret"
    api_key.save()

    assert_problem(Api(secret).get("/api/v1/departments/"), 401)


def test_a_session_works_with_its_csrf_token(synced_practice, invoice, receptionist):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(receptionist)
    browser.get("/")  # the page sets the CSRF cookie
    body = json.dumps(invoice_link_body(invoice))
    headers = {"Idempotency-Key": "tab-1"}

    refused = browser.post("/api/v1/links/", body, "application/json", headers=headers)
    token = browser.cookies["csrftoken"].value
    made = browser.post(
        "/api/v1/links/", body, "application/json", headers={**headers, "X-CSRFToken": token}
    )

    assert_problem(refused, 403)
    assert "CSRF" in refused.json()["detail"]
    assert made.status_code == 201
    assert PaymentLink.objects.get().created_by == receptionist


def test_a_session_s_keys_are_its_person_s(synced_practice, invoice, receptionist, manager):
    answers = []
    for person in (receptionist, manager):
        browser = Client()
        browser.force_login(person)
        answers.append(
            Api(client=browser).post(
                "/api/v1/links/", invoice_link_body(invoice, amount="1"), key="same"
            )
        )
    assert [a.status_code for a in answers] == [201, 201]
    assert PaymentLink.objects.count() == 2


# Roles


def test_the_summary_is_for_managers(synced_practice, invoice, key):
    create_link(draft_for(invoice, key[0].user))
    manager = Api(make_key(synced_practice, role=APIKey.Role.MANAGER, name="Accounting")[1])

    refused = Api(key[1]).get("/api/v1/summary/")
    summary = manager.get("/api/v1/summary/", {"period": "7d"})

    assert assert_problem(refused, 403)["detail"] == (
        "The summary is for managers and admins of a practice."
    )
    assert summary.status_code == 200, summary.content
    body = summary.json()
    assert body["totals"]["sent"] == 1
    assert body["totals"]["outstanding_amount"] == str(invoice.due_sum)
    assert [row["label"] for row in body["by_staff"]] == ["Booking site (API key)"]
    assert body["period"]["key"] == "7d" and len(body["days"]) == 7
    assert body["totals"]["links"]["sent"].startswith("http://testserver/links/?")
    assert body["money_in"] == {
        "collected": 0,
        "collected_amount": "0.00",
        "previous": {
            "key": "custom",
            "first": body["money_in"]["previous"]["first"],
            "last": body["money_in"]["previous"]["last"],
            "label": body["money_in"]["previous"]["label"],
        },
        "previous_collected": 0,
        "previous_amount": "0.00",
        "change_percent": None,
        "recovered": 0,
        "recovered_amount": "0.00",
    }


def test_the_summary_gives_money_in_by_payment_date_and_what_follow_ups_recovered(
    synced_practice, invoice, key
):
    link = create_link(draft_for(invoice, key[0].user))
    now = timezone.now()
    # Made two weeks ago, sent again automatically and paid now: collected and recovered now.
    PaymentLink.objects.filter(pk=link.pk).update(
        created_at=now - dt.timedelta(days=14),
        state=PaymentLink.State.CLOSED,
        payment_status=PaymentStatus.ACCEPTED,
        paid_at=now,
        sent_automatically=True,
    )
    manager = Api(make_key(synced_practice, role=APIKey.Role.MANAGER)[1])
    body = manager.get("/api/v1/summary/", {"period": "7d"}).json()
    assert body["totals"]["paid"] == 0  # not made in the period
    money = body["money_in"]
    amount = str(invoice.due_sum)
    assert (money["collected"], money["collected_amount"]) == (1, amount)
    assert (money["recovered"], money["recovered_amount"]) == (1, amount)
    assert (money["previous_collected"], money["change_percent"]) == (0, None)
    today = synced_practice.today()
    assert money["previous"]["last"] == (today - dt.timedelta(days=7)).isoformat()
    assert money["previous"]["first"] == (today - dt.timedelta(days=13)).isoformat()


def test_the_summary_s_filters_are_checked(synced_practice):
    manager = Api(make_key(synced_practice, role=APIKey.Role.MANAGER)[1])

    custom = manager.get("/api/v1/summary/", {"period": "custom", "start": "2026-03-01"})
    department = manager.get("/api/v1/summary/", {"department": "424242"})

    assert assert_problem(custom, 400)["errors"] == {"end": ["Give the last day of the range."]}
    assert "department" in assert_problem(department, 400)["errors"]


# Rate limits


def test_a_key_past_its_rate_gets_429_with_retry_after(synced_practice, settings):
    settings.API_REQUESTS_PER_MINUTE = 3
    busy = Api(make_key(synced_practice, name="Kiosk")[1])
    calm = Api(make_key(synced_practice, name="Booking")[1])

    answers = [busy.get("/api/v1/departments/") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    body = assert_problem(answers[-1], 429)
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert body["type"] == "about:blank" and "throttled" in body["detail"].lower()
    assert calm.get("/api/v1/departments/").status_code == 200


# Errors


def test_errors_are_problem_json_with_field_errors_under_errors(api, invoice):
    invalid = api.post("/api/v1/links/", invoice_link_body(invoice, amount="12.345"))
    not_json = api.client.post(
        "/api/v1/links/",
        "{not json",
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "x"},
    )
    form_post = api.client.post(
        "/api/v1/links/", {"a": "b"}, headers={**api.headers, "Idempotency-Key": "y"}
    )
    wrong_method = api.client.delete("/api/v1/links/", headers=api.headers)
    no_link = api.get(f"/api/v1/links/{uuid.uuid4()}/")
    no_code = api.get("/api/v1/links/not-a-code/")

    body = assert_problem(invalid, 400)
    assert body["type"] == "urn:paylinks:problem:invalid-request"
    assert body["errors"] == {"amount": ["Use at most two decimals, e.g. 120,50."]}
    assert assert_problem(not_json, 400)["type"] == "about:blank"
    assert_problem(form_post, 415)
    assert assert_problem(wrong_method, 405)["title"] == "Method Not Allowed"
    assert_problem(no_link, 404)
    assert_problem(no_code, 404)


def test_api_keys_are_made_in_admin_and_shown_once(admin_client, synced_practice):
    response = admin_client.post(
        "/admin/paylinks_api/apikey/add/",
        {"name": "Kiosk", "practice": synced_practice.pk, "role": "reception"},
        follow=True,
    )

    messages = " ".join(str(m) for m in response.context["messages"])
    secret = re.search(r"The API key for Kiosk is: (\S+)\. ", messages).group(1)
    api_key = APIKey.objects.get()
    assert api_key.practice == synced_practice and api_key.hashed_key != secret
    assert Api(secret).get("/api/v1/departments/").status_code == 200
    page = admin_client.get(f"/admin/paylinks_api/apikey/{api_key.pk}/change/")
    assert secret not in page.content.decode()


def test_a_key_of_an_inactive_practice_is_refused(synced_practice, key):
    synced_practice.is_active = False
    synced_practice.save(update_fields=["is_active"])

    assert_problem(Api(key[1]).get("/api/v1/departments/"), 401)


def test_someone_without_a_practice_gets_a_404(client, db):
    client.force_login(make_user("newcomer"))

    assert_problem(client.get("/api/v1/departments/"), 404)


def test_a_key_made_on_the_command_line_is_printed_once_and_works(synced_practice, capsys):
    call_command(
        "create_api_key", practice=synced_practice.name, name="Kiosk", role="manager", days=30
    )

    secret = capsys.readouterr().out.strip()
    api_key = APIKey.objects.get()
    assert (api_key.name, api_key.role, api_key.practice) == ("Kiosk", "manager", synced_practice)
    assert api_key.expiry_date > timezone.now() + dt.timedelta(days=29)
    assert Api(secret).get("/api/v1/summary/").status_code == 200
    with pytest.raises(CommandError):
        call_command("create_api_key", practice="Nowhere", name="Kiosk")
