"""No input gives a 500: every page, with a hostile value in each query parameter and form field
the app reads, as a receptionist and as a manager.

`test_no_input_gives_a_server_error` runs 28 times (2 people × 14 values), each time one request
per target: 67 today (it asserts at least `MIN_REQUESTS`, so the list can't shrink unnoticed),
1,792 requests in all; `test_no_webhook_body_gives_a_server_error` makes 19 more. None may answer
5xx or raise. The link forms' fields are read from the forms the pages render, so a field added
to a form is tried too.
"""

import json
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from django.db import transaction
from django.forms import Form
from django.http.response import HttpResponseBase
from django.test import Client

from paylinks.create import create_link
from paylinks.forms import new_form_token
from paylinks.link_filters import LinkFilterForm
from paylinks.models import PaymentLink
from reports.views import DashboardFilterForm
from tests.conftest import draft_for

HOSTILE = {
    "empty": "",
    "year-1": "0001-01-01",
    "year-9999": "9999-12-31",
    "negative": "-1",
    "1e400": "1e400",
    "infinity": "Infinity",
    "nan": "NaN",
    "2**63": str(2**63),
    "long": "x" * 5000,
    "nul": "\x00",
    "percent": "%",
    "sql": "'; drop table",
    "arabic-indic-digits": "١٢٣",
    "decimal-comma": "12,50",
}

pytestmark = pytest.mark.slow  # 1,811 requests: a fuzzer, left out of `make quick`

# Requests one run makes at the least: the pages and fields below, as they are today.
MIN_REQUESTS = 65

WEEK = {"period": "custom", "start": "2025-03-03", "end": "2025-03-09"}


@dataclass
class Target:
    """One request: `name` set to the hostile value, the rest of `base` as a browser sends it."""

    method: str
    url: str
    name: str | None = None  # None: the value is in the address
    base: dict = field(default_factory=dict)
    as_json: bool = False
    headers: dict = field(default_factory=dict)

    def send(self, client: Client, value: str) -> HttpResponseBase:
        data = dict(self.base)
        if "form_token" in data:
            data["form_token"] = new_form_token()  # a fresh form each time, as a reload gives
        if self.name is not None:
            data[self.name] = value
        call = getattr(client, self.method)
        if self.as_json:
            return call(self.url, json.dumps(data), content_type="application/json")
        return call(self.url, data, headers=self.headers)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.url[:70]} {self.name or ''}".strip()


def filled_in(form: Form) -> dict:
    """A rendered form's fields as the browser sends them untouched."""
    data = {}
    for bound in form:
        value = bound.value()
        if value is None or value is False or value == "":
            continue
        data[bound.name] = "on" if value is True else str(value)
    return data


def page_targets(client: Client, link: PaymentLink) -> list[Target]:
    """Every page, with every query parameter and form field it reads."""
    found = [
        Target("get", "/", "q"),
        Target("get", "/", "q", headers={"HX-Request": "true"}),
        Target("get", "/links/follow-up/", "page"),
        Target("get", "/prepayments/new/", "client"),
        Target("get", "/prepayments/new/", "q"),
        Target("post", "/practice/", "practice"),
    ]
    found += [Target("get", "/links/", name) for name in [*LinkFilterForm.base_fields, "page"]]
    found += [Target("get", "/links/", "practice")]
    for url in ("/dashboard/", "/dashboard/export.csv"):
        found += [Target("get", url, name, WEEK) for name in DashboardFilterForm.base_fields]

    invoice_url = f"/invoices/{link.invoice.provet_id}/"
    form = client.get(invoice_url).context["form"]
    found += [Target("post", invoice_url, name, filled_in(form)) for name in form.fields]

    page = client.get("/prepayments/new/", {"client": link.invoice.client_provet_id})
    form = page.context["form"]
    base = filled_in(form)
    if "department" not in base:
        allowed = form.fields["department"].queryset.filter(allow_nhp_processing=True)
        base["department"] = str(allowed.first().pk)
    found += [Target("post", "/prepayments/new/", name, base) for name in form.fields]

    send_again = f"/links/{link.code}/send-again/"
    base = {"form_token": "", "next": "/links/follow-up/"}
    found += [Target("post", send_again, name, base) for name in base]

    review = f"/links/{link.code}/review/"
    found += [Target("post", review, name) for name in ("choose", "none", "cancel_others")]

    webhook = f"/webhooks/provet/{link.practice.webhook_secret}/"
    for name in ("invoice_id", "unallocated_payment_id"):
        found += [Target("post", webhook, name), Target("post", webhook, name, as_json=True)]
    return found


def address_targets(value: str) -> list[Target]:
    """The value as a link code, an invoice id or a webhook secret in the address."""
    piece = quote(value, safe="")
    return [
        Target("get", f"/links/{piece}/"),
        Target("get", f"/links/{piece}/status/"),
        Target("post", f"/links/{piece}/send-again/"),
        Target("get", f"/invoices/{piece}/"),
        Target("post", f"/webhooks/provet/{piece}/", base={"invoice_id": "1"}),
    ]


def problem(client: Client, target: Target, value: str) -> str | None:
    """What went wrong, or None when the answer is below 500."""
    try:
        # A savepoint: a crash must leave the test's transaction usable for the next request.
        with transaction.atomic():
            response = target.send(client, value)
            if response.streaming:  # the CSV export runs its query while it streams
                b"".join(response.streaming_content)
    except Exception as error:
        return f"{target}: {type(error).__name__}: {error}"[:300]
    if response.status_code >= 500:
        return f"{target}: answered {response.status_code}"
    return None


@pytest.fixture(params=["receptionist", "manager"])
def person(request, receptionist, manager):
    return {"receptionist": receptionist, "manager": manager}[request.param]


@pytest.fixture
def link(invoice, receptionist) -> PaymentLink:
    return create_link(draft_for(invoice, receptionist))


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_no_input_gives_a_server_error(client, person, link, value):
    client.force_login(person)
    targets = page_targets(client, link) + address_targets(value)
    problems = [found for target in targets if (found := problem(client, target, value))]
    assert problems == [], "\n".join(problems)
    assert len(targets) >= MIN_REQUESTS


WEBHOOK_BODIES = {
    **{f"literal-{key}": '{"invoice_id": ' + value + "}" for key, value in HOSTILE.items()},
    "nested-100000-deep": '{"invoice_id": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nested-30000-deep": '{"invoice_id": ' + "[" * 30_000 + "]" * 30_000 + "}",
    "a-megabyte": '{"invoice_id": 1, "padding": "' + "x" * 1_000_000 + '"}',
    "nul": '{"invoice_id": 1}\x00',
    "not-utf-8": b'{"invoice_id": "\xff\xfe"}',
}


@pytest.mark.parametrize("body", WEBHOOK_BODIES.values(), ids=WEBHOOK_BODIES.keys())
def test_no_webhook_body_gives_a_server_error(client, practice, body):
    url = f"/webhooks/provet/{practice.webhook_secret}/"
    response = client.post(url, body, content_type="application/json")
    assert 400 <= response.status_code < 500
