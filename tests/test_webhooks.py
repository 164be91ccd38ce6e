"""Provet's webhooks: a hint that makes the invoice's links due, the truth read via the API."""

import json

import httpx
import pytest
from django.db import connection

from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus, WebhookDelivery
from sandbox import control
from tests.conftest import draft_for, make_practice


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
    # Nobody paid: the webhook lies (or is early), and the link stays waiting.
    client.post(hook_url(link.practice), {"invoice_id": link.invoice.provet_id})
    link.refresh_from_db()
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
    first, second = (create_link(draft_for(invoice, receptionist)) for _ in range(2))
    control.settle_link(first.external_id, "pay")
    client.post(hook_url(invoice.practice), {"invoice_id": invoice.provet_id})
    second.refresh_from_db()
    assert second.display_status() == ("Superseded: the invoice is paid", "neutral")
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
