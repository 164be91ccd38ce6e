from sandbox import clock
from sandbox.models import Invoice, PhoneNumber


def link_for(sandbox_api, invoice, **link_data) -> dict:
    body = sandbox_api.link_payload(invoice.pk, **link_data)
    answer = sandbox_api.post("postransaction/", body)
    assert answer.status_code == 201, answer.content
    return answer.json()


def delivery_status(sandbox_api, link) -> int:
    return sandbox_api.get(f"postransaction/{link['id']}/").json()["payment_link"][
        "delivery_status"
    ]


def test_a_link_not_to_be_sent_stays_not_sent(sandbox_api, payable_invoice):
    link = link_for(sandbox_api, payable_invoice, delivery_method=0)
    clock.advance(60)
    assert delivery_status(sandbox_api, link) == 1
    assert sandbox_api.control("outbox/", method="get").json()["results"] == []


def test_an_email_is_sent_a_few_seconds_later(sandbox_api, payable_invoice):
    link = link_for(sandbox_api, payable_invoice, delivery_method=2, email="owner@example.com")
    assert delivery_status(sandbox_api, link) == 1
    clock.advance(3)
    assert delivery_status(sandbox_api, link) == 2
    [message] = sandbox_api.control("outbox/", method="get").json()["results"]
    assert message["channel"] == "email"
    assert message["recipient"] == "owner@example.com"
    assert link["payment_link"]["url"] in message["text"]
    assert message["status"] == "sent"


def test_sms_and_email_put_two_messages_in_the_outbox(sandbox_api, payable_invoice):
    link_for(
        sandbox_api,
        payable_invoice,
        delivery_method=1,
        email="owner@example.com",
        phone="+358401234567",
    )
    channels = {
        m["channel"] for m in sandbox_api.control("outbox/", method="get").json()["results"]
    }
    assert channels == {"sms", "email"}


def test_an_sms_to_an_undeliverable_number_fails(sandbox_api, payable_invoice):
    number = PhoneNumber.objects.get(client__installation__provet_id=4, undeliverable=True)
    link = link_for(sandbox_api, payable_invoice, delivery_method=3, phone=number.phone_number)
    clock.advance(3)
    assert delivery_status(sandbox_api, link) == 3


def test_the_outbox_page_shows_messages_newest_first(sandbox_api, payable_invoice):
    first = link_for(sandbox_api, payable_invoice, delivery_method=3, phone="+358401111111")
    clock.advance(5)
    second = link_for(sandbox_api, payable_invoice, delivery_method=3, phone="+358402222222")
    page = sandbox_api.client.get("/sandbox/4/outbox/").content.decode()
    assert page.index("+358402222222") < page.index("+358401111111")
    assert second["payment_link"]["url"] in page
    assert first["payment_link"]["url"] in page
    assert "Sent" in page and "Queued" in page


def test_a_client_without_phone_cannot_be_texted_by_default(sandbox_api):
    invoice = Invoice.objects.filter(
        installation__provet_id=4,
        status=3,
        credit_note=False,
        due_sum__gt=0,
        client__phone_numbers__isnull=True,
    ).first()
    answer = sandbox_api.post(
        "postransaction/", sandbox_api.link_payload(invoice.pk, delivery_method=3)
    )
    assert answer.status_code == 400
    assert list(answer.json()["payment_link_data"]) == ["phone"]
