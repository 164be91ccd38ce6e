import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from sandbox import clock, control
from sandbox.models import Client, WebhookDelivery


class Receiver:
    """A tiny HTTP server that records what it is sent and answers the statuses it is given."""

    def __init__(self, statuses: list[int]):
        self.statuses = statuses
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.received.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "body": self.rfile.read(length).decode(),
                    }
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/provet/s3cret/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None) -> Receiver:
        made.append(Receiver(list(statuses or [])))
        return made[-1]

    yield make
    for one in made:
        one.close()


def pay_invoice_link(sandbox_api, invoice) -> dict:
    link = sandbox_api.post("postransaction/", sandbox_api.link_payload(invoice.pk)).json()
    control.settle_link(link["payment_link"]["external_id"], "pay")
    return link


def test_paying_posts_the_invoice_id_form_encoded(sandbox_api, payable_invoice, receiver):
    server = receiver()
    control.add_webhook(4, server.url, trigger=11, content_type=1)
    pay_invoice_link(sandbox_api, payable_invoice)
    [hit] = server.received
    assert hit["path"] == "/hooks/provet/s3cret/"
    assert hit["content_type"] == "application/x-www-form-urlencoded"
    body = parse_qs(hit["body"])
    assert body["invoice_id"] == [str(payable_invoice.pk)]
    assert "timestamp" in body


def test_a_json_webhook_gets_a_json_body(sandbox_api, payable_invoice, receiver):
    server = receiver()
    control.add_webhook(4, server.url, trigger=9, content_type=2)
    pay_invoice_link(sandbox_api, payable_invoice)
    [hit] = server.received
    assert hit["content_type"] == "application/json"
    assert json.loads(hit["body"])["invoice_id"] == payable_invoice.pk


def test_every_matching_webhook_fires_and_others_do_not(sandbox_api, payable_invoice, receiver):
    invoices, payments, prepayments = receiver(), receiver(), receiver()
    control.add_webhook(4, invoices.url, trigger=9)
    control.add_webhook(4, payments.url, trigger=11)
    control.add_webhook(4, prepayments.url, trigger=12)
    pay_invoice_link(sandbox_api, payable_invoice)
    assert len(invoices.received) == 1
    assert len(payments.received) == 1
    assert prepayments.received == []


def test_a_paid_prepayment_posts_the_unallocated_payment_id(sandbox_api, northvale, receiver):
    server = receiver()
    control.add_webhook(4, server.url, trigger=12, content_type=2)
    body = sandbox_api.link_payload()
    body["prepayment_data"] = {
        "client_id": Client.objects.filter(installation__provet_id=4).first().pk,
        "department_id": northvale["department_ids"][0],
    }
    link = sandbox_api.post("postransaction/", body).json()
    control.settle_link(link["payment_link"]["external_id"], "pay")
    after = sandbox_api.get(f"postransaction/{link['id']}/").json()
    sent = json.loads(server.received[0]["body"])
    assert after["unallocated_payment"].endswith(
        f"/unallocatedpayment/{sent['unallocated_payment_id']}/"
    )


def test_a_failed_delivery_is_retried_lazily_after_its_backoff(
    sandbox_api, payable_invoice, receiver
):
    server = receiver([500])
    control.add_webhook(4, server.url, trigger=11)
    pay_invoice_link(sandbox_api, payable_invoice)
    assert len(server.received) == 1
    sandbox_api.get("department/")
    assert len(server.received) == 1  # the backoff has not passed yet
    clock.advance(10)
    sandbox_api.get("department/")
    assert len(server.received) == 2
    [delivery] = control.deliveries(4)
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]


def test_a_delivery_gives_up_after_ten_attempts(sandbox_api, payable_invoice, receiver):
    server = receiver([503] * 20)
    control.add_webhook(4, server.url, trigger=11)
    pay_invoice_link(sandbox_api, payable_invoice)
    for _ in range(12):
        control.retry_webhooks(4)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.attempts == 10
    assert len(server.received) == 10


def test_an_unreachable_receiver_is_recorded_and_retried(sandbox_api, payable_invoice, receiver):
    server = receiver()
    url = server.url
    server.close()
    control.add_webhook(4, url, trigger=11)
    pay_invoice_link(sandbox_api, payable_invoice)
    [delivery] = control.deliveries(4)
    assert delivery["status"] == "pending"
    assert delivery["attempts"][0]["status_code"] is None
    assert delivery["attempts"][0]["error"]
