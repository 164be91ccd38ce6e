"""The Provet client over a real socket: what only a network can do (timeouts, dropped answers)."""

import socket

import httpx
import pytest

from clinics.models import Practice
from clinics.provet import ProvetClient, ProvetUnavailable
from clinics.provet.types import InvoiceStatus
from tests.conftest import invoice_link_body, make_practice


@pytest.fixture
def live_practice(transactional_db, seeded, live_server) -> Practice:
    return make_practice(seeded[0], live_server.url)


def fast_client(practice: Practice, read_timeout: float = 10) -> ProvetClient:
    return ProvetClient(
        practice.connection(),
        timeout=httpx.Timeout(read_timeout, connect=2),
        sleep=lambda seconds: None,
    )


def control(practice: Practice, what: str, body: dict) -> None:
    response = httpx.post(f"{practice.root_url}_control/{what}", json=body, timeout=5)
    assert response.status_code < 300, response.text


def first_invoice_link_body(practice: Practice, provet: ProvetClient) -> dict:
    invoice = provet.list_invoices({"status__is": InvoiceStatus.FINALIZED}, 1).results[0]
    return invoice_link_body(practice, "2.00", invoice.department_url, invoice.url)


def test_it_talks_to_the_sandbox_over_a_socket(live_practice):
    with fast_client(live_practice) as provet:
        departments = provet.list_departments()
    assert departments
    assert departments[0].url.startswith(live_practice.root_url)


def test_a_timeout_is_an_unavailable_error(live_practice):
    with fast_client(live_practice, read_timeout=0.5) as provet:
        department = provet.list_departments()[0]
        control(
            live_practice,
            "faults/",
            {"path": "department/", "kind": "timeout", "seconds": 2, "count": 3},
        )
        with pytest.raises(ProvetUnavailable, match="timed out") as unavailable:
            provet.get(f"department/{department.id}/")
    assert unavailable.value.request_sent


def test_a_dropped_answer_after_a_post_is_unknown_and_provet_kept_the_link(live_practice):
    with fast_client(live_practice) as provet:
        body = first_invoice_link_body(live_practice, provet)
        before = provet.get_invoice(int(body["invoice"].rstrip("/").rsplit("/", 1)[1]))
        control(
            live_practice, "faults/", {"path": "postransaction/", "method": "POST", "kind": "drop"}
        )
        with pytest.raises(ProvetUnavailable) as lost:
            provet.create_postransaction(body)
        after = provet.get_invoice(before.id)
    assert lost.value.request_sent
    assert len(after.postransactions) == len(before.postransactions) + 1


def test_a_refused_connection_is_known_not_to_have_reached_provet(live_practice):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    live_practice.base_url = f"http://127.0.0.1:{closed_port}/sandbox/4/"
    with fast_client(live_practice) as provet, pytest.raises(ProvetUnavailable) as refused:
        provet.list_departments()
    assert not refused.value.request_sent
