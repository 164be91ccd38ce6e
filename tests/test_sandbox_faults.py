import http.client
import json
import time

import httpx
import pytest
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from sandbox import control
from sandbox.faults import ConnectionDropped
from sandbox.models import PosTransaction


def test_latency_delays_the_answer_and_then_serves_it(sandbox_api):
    control.add_fault(4, "latency", path=r"/department/$", latency_ms=300)
    started = time.monotonic()
    answer = sandbox_api.get("department/")
    assert time.monotonic() - started >= 0.3
    assert answer.status_code == 200


def test_timeout_holds_the_request_for_seconds_before_processing(sandbox_api):
    control.add_fault(4, "timeout", path="/invoice/", seconds=0.3)
    started = time.monotonic()
    assert sandbox_api.get("invoice/").status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("kind", ["500", "503"])
def test_a_server_error_is_answered_count_times(sandbox_api, kind):
    control.add_fault(4, kind, path="/invoice/", count=2)
    assert sandbox_api.get("invoice/").status_code == int(kind)
    assert sandbox_api.get("invoice/").status_code == int(kind)
    assert sandbox_api.get("invoice/").status_code == 200


def test_an_injected_429_carries_retry_after(sandbox_api):
    control.add_fault(4, "429", path="/postransaction/", retry_after=7)
    answer = sandbox_api.get("postransaction/")
    assert answer.status_code == 429
    assert answer["Retry-After"] == "7"


def test_a_fault_can_target_one_method(sandbox_api, payable_invoice):
    control.add_fault(4, "500", path="/postransaction/", method="POST")
    assert sandbox_api.get("postransaction/").status_code == 200
    answer = sandbox_api.post("postransaction/", sandbox_api.link_payload(payable_invoice.pk))
    assert answer.status_code == 500
    assert PosTransaction.objects.count() == 0


def test_a_fault_with_no_count_keeps_firing_until_cleared(sandbox_api):
    control.add_fault(4, "503", path="/user/", count=None)
    assert [sandbox_api.get("user/").status_code for _ in range(3)] == [503, 503, 503]
    control.clear_faults(4)
    assert sandbox_api.get("user/").status_code == 200


def test_drop_commits_and_then_raises_in_process(sandbox_api, payable_invoice):
    control.add_fault(4, "drop", path="/postransaction/", method="POST")
    answer = sandbox_api.post("postransaction/", sandbox_api.link_payload(payable_invoice.pk))
    with pytest.raises(ConnectionDropped):
        b"".join(answer.streaming_content)
    assert PosTransaction.objects.filter(invoice=payable_invoice).count() == 1


@pytest.fixture
def keep_db_connection():
    """Like Django's test client: a request must not close the test's connection on PostgreSQL."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_drop_raises_out_of_an_httpx_wsgi_transport_after_the_commit(
    sandbox_api, payable_invoice, keep_db_connection
):
    control.add_fault(4, "drop", path="/postransaction/")
    transport = httpx.WSGITransport(app=get_wsgi_application())
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(ConnectionDropped):
            client.post(
                sandbox_api.base + "postransaction/",
                json=sandbox_api.link_payload(payable_invoice.pk),
                headers=sandbox_api.headers,
            )
        assert (
            client.get(sandbox_api.base + "postransaction/", headers=sandbox_api.headers).json()[
                "count"
            ]
            == 1
        )


@pytest.mark.django_db(transaction=True)
def test_drop_cuts_a_real_socket_after_the_commit(live_server, sandbox_api, payable_invoice):
    control.add_fault(4, "drop", path="/postransaction/", method="POST")
    host, port = live_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request(
        "POST",
        sandbox_api.base + "postransaction/",
        body=json.dumps(sandbox_api.link_payload(payable_invoice.pk)),
        headers={**sandbox_api.headers, "Content-Type": "application/json"},
    )
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        connection.getresponse()
    connection.close()
    assert PosTransaction.objects.filter(invoice=payable_invoice).count() == 1
