from sandbox import clock
from sandbox.models import Fault, Invoice, Webhook


def test_faults_can_be_added_listed_and_cleared_over_http(sandbox_api):
    made = sandbox_api.control("faults/", {"path": "/invoice/", "kind": "503", "count": 1})
    assert made.status_code == 201
    listed = sandbox_api.control("faults/", method="get").json()["results"]
    assert [f["kind"] for f in listed] == ["503"]
    assert sandbox_api.get("invoice/").status_code == 503
    assert sandbox_api.control("faults/", method="get").json()["results"] == []
    sandbox_api.control("faults/", {"path": ".", "kind": "500", "count": None})
    assert sandbox_api.control("faults/", method="delete").status_code == 204
    assert Fault.objects.count() == 0


def test_an_unknown_fault_kind_is_refused(sandbox_api):
    answer = sandbox_api.control("faults/", {"path": ".", "kind": "gremlins"})
    assert answer.status_code == 400


def test_the_clock_moves_forward_on_request(sandbox_api):
    before = clock.now()
    answer = sandbox_api.control("clock/", {"advance_seconds": 3600}).json()
    assert answer["offset_seconds"] == 3600
    assert (clock.now() - before).total_seconds() >= 3600


def test_a_link_can_be_paid_through_the_control_api(sandbox_api, payable_invoice):
    body = sandbox_api.link_payload(payable_invoice.pk)
    body["amount"] = f"{payable_invoice.due_sum:.2f}"
    link = sandbox_api.post("postransaction/", body).json()
    external_id = link["payment_link"]["external_id"]
    answer = sandbox_api.control(f"links/{external_id}/pay/")
    assert answer.json()["payment_status"] == 5
    assert Invoice.objects.get(pk=payable_invoice.pk).due_sum == 0
    again = sandbox_api.control(f"links/{external_id}/cancel/")
    assert again.status_code == 400


def test_the_invoice_permission_can_be_taken_away_and_given_back(sandbox_api, payable_invoice):
    sandbox_api.control("permissions/", {"financial_invoices": False})
    body = sandbox_api.link_payload(payable_invoice.pk)
    assert sandbox_api.post("postransaction/", body).status_code == 403
    sandbox_api.control("permissions/", {"financial_invoices": True})
    assert sandbox_api.post("postransaction/", body).status_code == 201


def test_rate_limit_overrides_apply_and_clear(sandbox_api):
    sandbox_api.control("rate-limits/", {"GET /client/": 1})
    assert sandbox_api.control("rate-limits/", method="get").json() == {
        "overrides": {"GET /client/": 1}
    }
    sandbox_api.get("client/")
    assert sandbox_api.get("client/").status_code == 429
    sandbox_api.control("rate-limits/", method="delete")
    assert sandbox_api.get("client/").status_code == 200


def test_the_requests_let_through_and_refused_are_counted(sandbox_api):
    sandbox_api.control("rate-limits/", {"GET /client/": 1})
    sandbox_api.get("client/")
    sandbox_api.get("client/")
    counts = sandbox_api.control("rate-limits/counts/", method="get").json()
    assert counts["by_endpoint"]["GET /client/"] == {"allowed": 1, "refused": 1}
    assert counts["refused"] == 1


def test_webhooks_can_be_configured_over_http(sandbox_api):
    made = sandbox_api.control(
        "webhooks/", {"url": "http://127.0.0.1:9/hook/", "trigger": 11, "content_type": 2}
    )
    assert made.status_code == 201
    assert sandbox_api.control("webhooks/", method="get").json()["results"][0]["trigger"] == 11
    assert sandbox_api.control("webhooks/retry/").json() == {"attempted": 0}
    assert sandbox_api.control("webhooks/deliveries/", method="get").json() == {"results": []}
    sandbox_api.control("webhooks/", method="delete")
    assert Webhook.objects.count() == 0


def test_reset_brings_back_a_calm_sandbox(sandbox_api):
    sandbox_api.control("faults/", {"path": ".", "kind": "500", "count": None})
    sandbox_api.control("clock/", {"advance_seconds": 100})
    sandbox_api.control("rate-limits/", {"GET /department/": 1})
    sandbox_api.control("permissions/", {"financial_invoices": False})
    sandbox_api.control("webhooks/", {"url": "http://127.0.0.1:9/", "trigger": 9})
    assert sandbox_api.control("reset/").status_code == 200
    assert sandbox_api.get("department/").status_code == 200
    assert sandbox_api.get("department/").status_code == 200
    assert sandbox_api.control("clock/", method="get").json()["offset_seconds"] == 0
    assert sandbox_api.control("permissions/", method="get").json() == {"financial_invoices": True}
    assert Webhook.objects.count() == 0


def test_the_control_api_of_an_unknown_installation_is_not_found(client, db):
    assert client.post("/sandbox/99/_control/reset/").status_code == 404


def test_the_index_lists_installations_with_their_credentials(client, northvale):
    page = client.get("/sandbox/").content.decode()
    assert "Northvale Veterinary Group" in page
    assert northvale["client_secret"] in page
    assert "/sandbox/4/outbox/" in page
