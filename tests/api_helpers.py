"""Calling the REST API in tests: API keys, and a client that speaks JSON with them."""

import json
import uuid

from django.test import Client

from clinics.models import Practice
from paylinks.api.models import APIKey


def make_key(practice: Practice, role: str = APIKey.Role.RECEPTION, name: str = "Booking site"):
    """A new API key of the practice: (the key's row, the key as its caller sends it)."""
    return APIKey.objects.create_key(name=name, practice=practice, role=role)


class Api:
    """The Django test client, authenticated with an API key, sending and reading JSON."""

    def __init__(self, key: str | None = None, client: Client | None = None):
        self.client = client or Client()
        self.headers = {"Authorization": f"Api-Key {key}"} if key else {}

    def get(self, path: str, params: dict | None = None, **headers):
        return self.client.get(path, params or {}, headers={**self.headers, **headers})

    def post(self, path: str, body=None, *, key: str | None = "new", **headers):
        """POST a JSON body; `key` is the Idempotency-Key ("new": a fresh one; None: none)."""
        sent = {**self.headers, **headers}
        if key == "new":
            key = str(uuid.uuid4())
        if key is not None:
            sent["Idempotency-Key"] = key
        data = "" if body is None else json.dumps(body)
        return self.client.post(path, data, content_type="application/json", headers=sent)


def invoice_link_body(invoice, /, **changes) -> dict:
    return {
        "invoice": invoice.provet_id,
        "amount": str(invoice.due_sum),
        "delivery_method": 0,
        "description": f"Payment for invoice {invoice}",
        **changes,
    }
