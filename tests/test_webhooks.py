"""Provet's webhooks: a hint that makes the invoice's links due, the truth read via the API."""

import json

import httpx
import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus, WebhookDelivery
from paylinks.words import status_words
from sandbox import control
from tests.conftest import draft_for, link_made_in_provet, make_practice


@pytest.fixture
def link(invoice, receptionist) -> PaymentLink:
    return create_link(draft_for(invoice, receptionist))


def hook_url(practice) -> str:
    return f"/webhooks/provet/{practice.webhook_secret}/"


def test_an_invoice_payment_webhook_makes_the_link_paid_at_once(client, link):
    control.settle_link(link.external_id, "pay")
    response = client.post(
        hook_url(link.practice),
        {"invoice_id": link.invoice.provet_id, "timestamp": "2026-11-23T10:00:00Z"},
    )
    assert response.status_code == 200
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert link.events.get(kind=LinkEvent.Kind.PAYMENT_CHANGED).source == "webhook"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.invoice_provet_id, delivery.links_made_due) == (link.invoice.provet_id, 1)


def test_json_bodies_are_understood_too(client, link):
    response = client.post(
        hook_url(link.practice),
        json.dumps({"invoice_id": link.invoice.provet_id}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().invoice_provet_id == link.invoice.provet_id


def test_the_body_is_only_a_hint(client, link):
    # Nobody paid: the webhook lies (or is early). PayLinks asks Provet, and the link stays
    # waiting.
    before = link.checked_at
    client.post(hook_url(link.practice), {"invoice_id": link.invoice.provet_id})
    link.refresh_from_db()
    assert WebhookDelivery.objects.get().links_made_due == 1
    assert link.checked_at is not None and link.checked_at != before  # Provet was asked
    assert link.payment_status == PaymentStatus.PENDING


def test_a_repeated_delivery_does_no_harm(client, link):
    control.settle_link(link.external_id, "pay")
    for _ in range(2):
        assert client.post(hook_url(link.practice), {"invoice_id": 1}).status_code == 200
        client.post(hook_url(link.practice), {"invoice_id": link.invoice.provet_id})
    assert link.events.filter(kind=LinkEvent.Kind.PAYMENT_CHANGED).count() == 1


def test_an_unknown_secret_is_a_404(client, db):
    assert client.post("/webhooks/provet/not-a-secret/", {"invoice_id": 1}).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("invoice_id=abc", "application/x-www-form-urlencoded"),
        ("timestamp=2026", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
    ],
)
def test_a_malformed_body_is_a_400_and_is_kept(client, practice, body, content_type):
    response = client.post(hook_url(practice), body, content_type=content_type)
    assert response.status_code == 400
    assert WebhookDelivery.objects.get().error


NOT_AN_ID = "invoice_id must be a whole number from 1 to 2147483647."
NOT_IDS = ["-1", "0", "1e400", "Infinity", "NaN", "1.5", "2147483648", str(2**63), "9" * 5000]
NOT_IDS += ["١٢٣", " 12", "0x1F", "1_000"]


@pytest.mark.parametrize("value", NOT_IDS)
def test_a_form_encoded_id_that_is_no_provet_id_is_a_400_and_is_kept(client, practice, value):
    response = client.post(hook_url(practice), {"invoice_id": value})
    assert response.status_code == 400
    assert response.content.decode() == NOT_AN_ID
    delivery = WebhookDelivery.objects.get()
    assert (delivery.error, delivery.invoice_provet_id) == (NOT_AN_ID, None)


@pytest.mark.parametrize(
    "literal", ["-1", "0", "1e400", "1.0", "true", "2147483648", str(2**63), '"12a"', "[1]", "{}"]
)
def test_a_json_id_that_is_no_provet_id_is_a_400_and_is_kept(client, practice, literal):
    body = '{"invoice_id": ' + literal + "}"
    response = client.post(hook_url(practice), body, content_type="application/json")
    assert response.status_code == 400
    assert response.content.decode() == NOT_AN_ID
    assert WebhookDelivery.objects.get().error == NOT_AN_ID


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "9" * 5000])
def test_what_json_can_t_say_is_not_json(client, practice, literal):
    body = '{"invoice_id": ' + literal + "}"
    response = client.post(hook_url(practice), body, content_type="application/json")
    assert response.status_code == 400
    assert WebhookDelivery.objects.get().error == "The body is not valid JSON."


def test_the_largest_provet_id_is_understood(client, practice):
    response = client.post(hook_url(practice), {"unallocated_payment_id": "2147483647"})
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().unallocated_payment_id == 2**31 - 1


def test_json_nested_too_deep_to_read_is_a_400(client, practice):
    body = '{"invoice_id": ' + "[" * 30_000 + "]" * 30_000 + "}"
    response = client.post(hook_url(practice), body, content_type="application/json")
    assert response.status_code == 400
    assert WebhookDelivery.objects.get().error == ("The JSON body is nested deeper than 8 levels.")


def test_json_nesting_is_capped_at_8_levels_and_brackets_in_strings_do_not_count(client, practice):
    def post(extra):
        body = json.dumps({"invoice_id": 1, "extra": extra, "note": "[[[[[[[[[[{{{{"})
        return client.post(hook_url(practice), body, content_type="application/json")

    assert post([[[[[[[1]]]]]]]).status_code == 200  # 8 levels with the outer object
    assert post([[[[[[[[1]]]]]]]]).status_code == 400


def test_a_body_larger_than_64_kib_is_refused_unread(client, practice):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(hook_url(practice), body, content_type="application/json")
    assert response.status_code == 413
    delivery = WebhookDelivery.objects.get()
    assert (delivery.error, delivery.body) == ("The body is larger than 64 KiB.", "")


def test_a_form_with_too_many_fields_is_a_400_and_is_kept(client, practice):
    body = "invoice_id=1&" + "x=1&" * 2000
    response = client.post(hook_url(practice), body, "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert WebhookDelivery.objects.get().error == "The form body can't be read."


def test_a_body_with_nul_characters_is_kept_without_them(client, practice):
    response = client.post(
        hook_url(practice), "invoice_id=1\x00", "application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "\x00" not in WebhookDelivery.objects.get().body


@pytest.mark.parametrize("secret", ["%00", "a%20b", "x" * 65, "%D9%A1"])
def test_a_secret_no_practice_could_have_is_a_404(client, practice, secret):
    assert client.post(f"/webhooks/provet/{secret}/", {"invoice_id": 1}).status_code == 404
    assert not WebhookDelivery.objects.exists()


# The live server shares one in-memory SQLite connection between its threads, and here one
# request (the payer's) is still open while the webhook it fires is served: PostgreSQL only.
@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="needs a database that serves two threads at once"
)
def test_the_sandbox_fires_a_real_webhook_at_a_live_server(transactional_db, seeded, live_server):
    from clinics.sync import sync_departments
    from paylinks.invoices import refresh_invoice
    from tests.conftest import make_user, sandbox_invoice

    practice = make_practice(seeded[0], live_server.url)
    sync_departments(practice)
    user = make_user("webhook-reception", practice)
    invoice = refresh_invoice(practice, sandbox_invoice(practice).id)
    link = create_link(draft_for(invoice, user))
    response = httpx.post(
        f"{practice.root_url}_control/webhooks/",
        json={"url": f"{live_server.url}{hook_url(practice)}", "trigger": 11, "content_type": 1},
    )
    assert response.status_code == 201, response.text
    payer = httpx.post(f"{practice.root_url}_control/links/{link.external_id}/pay/", json={})
    assert payer.status_code == 200, payer.text
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert WebhookDelivery.objects.filter(invoice_provet_id=invoice.provet_id).exists()


def test_when_a_link_pays_the_invoice_its_other_open_links_show_superseded(
    client, invoice, receptionist
):
    first = create_link(draft_for(invoice, receptionist))
    second = link_made_in_provet(invoice)
    control.settle_link(first.external_id, "pay")
    client.post(hook_url(invoice.practice), {"invoice_id": invoice.provet_id})
    second.refresh_from_db()
    assert status_words(second) == ("Superseded: the invoice is paid", "neutral")
    second.invoice.refresh_from_db()
    assert second.invoice.due_sum == 0


def test_an_invoice_webhook_refreshes_the_invoice_even_without_open_links(
    client, invoice, receptionist
):
    link = create_link(draft_for(invoice, receptionist))
    control.settle_link(link.external_id, "pay")
    PaymentLink.objects.filter(pk=link.pk).update(state=PaymentLink.State.CLOSED)
    client.post(hook_url(invoice.practice), {"invoice_id": invoice.provet_id})
    invoice.refresh_from_db()
    assert invoice.due_sum == 0


def test_a_payment_that_raced_the_expiry_is_found_through_the_webhook(
    client, invoice, receptionist
):
    link = create_link(draft_for(invoice, receptionist))
    # PayLinks saw the link expire; Provet took the client's payment a moment later anyway.
    PaymentLink.objects.filter(pk=link.pk).update(
        state=PaymentLink.State.CLOSED,
        payment_status=PaymentStatus.EXPIRED,
        next_check_at=None,
        checked_at=timezone.now(),
    )
    control.settle_link(link.external_id, "pay")
    client.post(hook_url(invoice.practice), {"invoice_id": invoice.provet_id})
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.ACCEPTED
    assert link.events.get(kind="payment").source == "webhook"


def test_repeated_deliveries_for_one_invoice_cause_one_check(
    client, invoice, receptionist, monkeypatch
):
    from paylinks import webhooks

    create_link(draft_for(invoice, receptionist))
    followed = []
    monkeypatch.setattr(webhooks, "check_after", lambda delivery: followed.append(delivery.pk))
    for _ in range(20):
        assert (
            client.post(hook_url(invoice.practice), {"invoice_id": invoice.provet_id}).status_code
            == 200
        )
    assert len(followed) == 1
    assert WebhookDelivery.objects.filter(invoice_provet_id=invoice.provet_id).count() == 20
    cache.clear()  # the window has passed
    client.post(hook_url(invoice.practice), {"invoice_id": invoice.provet_id})
    assert len(followed) == 2
