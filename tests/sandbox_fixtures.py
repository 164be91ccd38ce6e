"""Fixtures for tests that drive the Provet sandbox (owned by the sandbox work)."""

import json

import pytest

from sandbox import ratelimit


@pytest.fixture(autouse=True)
def _calm_sandbox_rate_limits():
    """Rate-limit windows live in memory, outside the test database: start each test empty."""
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def sandbox_installations(db) -> list[dict]:
    """The seeded clinic group (`sandbox.seed.seed_sandbox()`): provet_id 4 and 7."""
    from sandbox.seed import seed_sandbox

    return seed_sandbox()


@pytest.fixture
def northvale(sandbox_installations) -> dict:
    """Provet installation 4, Northvale Veterinary Group (EUR, Europe/Helsinki)."""
    return sandbox_installations[0]


class SandboxAPI:
    """The Django test client pointed at one installation's API, with its legacy token."""

    def __init__(self, client, installation: dict):
        self.client = client
        self.installation = installation
        self.provet_id = installation["provet_id"]
        self.base = f"/sandbox/{self.provet_id}/api/0.1/"
        self.headers = {"Authorization": f"Token {installation['legacy_token']}"}

    def url(self, resource: str, pk: int | None = None) -> str:
        path = f"{self.base}{resource}/" + (f"{pk}/" if pk is not None else "")
        return f"http://testserver{path}"

    def get(self, path: str, **params):
        return self.client.get(self.base + path, params, headers=self.headers)

    def post(self, path: str, body):
        return self.client.post(
            self.base + path,
            json.dumps(body),
            content_type="application/json",
            headers=self.headers,
        )

    def delete(self, path: str):
        return self.client.delete(self.base + path, headers=self.headers)

    def control(self, path: str, body: dict | None = None, method: str = "post"):
        call = getattr(self.client, method)
        url = f"/sandbox/{self.provet_id}/_control/{path}"
        if method in {"post", "put"}:
            return call(url, json.dumps(body or {}), content_type="application/json")
        return call(url)

    def link_payload(self, invoice_pk: int | None = None, **link_data) -> dict:
        """A valid Provet Pay postransaction for an invoice, as the reference shows it."""
        body = {
            "amount": "10.00",
            "terminal_id": 0,
            "payment_type": 5003,
            "transaction_type": 4,
            "creator": self.url("user", self.installation["integration_user_id"]),
            "department": self.url("department", self.installation["department_ids"][0]),
            "payment_link_data": {"duration": 2880, "delivery_method": 0, **link_data},
        }
        if invoice_pk is not None:
            body["invoice"] = self.url("invoice", invoice_pk)
        return body


@pytest.fixture
def sandbox_api(client, northvale) -> SandboxAPI:
    return SandboxAPI(client, northvale)


@pytest.fixture
def payable_invoice(northvale):
    """A finalized, unpaid invoice of installation 4 (a sandbox.models.Invoice)."""
    from sandbox.models import Invoice

    return (
        Invoice.objects.filter(
            installation__provet_id=northvale["provet_id"],
            status=3,
            credit_note=False,
            date_paid__isnull=True,
            department_id=northvale["department_ids"][0],
        )
        .order_by("id")
        .first()
    )
