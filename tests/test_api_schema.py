"""The API's contract: its OpenAPI description, the docs page under the CSP, and Schemathesis
against the live API (no server error, every answer as the description says)."""

import re
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from playwright.sync_api import Page

from clinics.models import Practice
from clinics.sync import sync_departments
from config.urls import api_v1
from paylinks.api.models import APIKey
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from tests.api_helpers import make_key
from tests.conftest import draft_for, make_practice, sandbox_invoice
from tests.test_security import in_chromium, inline_code

PROBLEM = "application/problem+json"


@pytest.fixture
def schema(db) -> dict:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_description_is_valid_openapi_without_warnings(db, tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s"))

    assert "openapi: 3" in (tmp_path / "s").read_text()


def test_every_endpoint_is_described_with_its_errors(schema):
    described = {re.sub(r"\{\w+\}", "<>", path) for path in schema["paths"]}
    routes = {
        "/api/v1/" + re.sub(r"<\w+:\w+>", "<>", str(pattern.pattern))
        for pattern in api_v1
        if isinstance(pattern, URLPattern)
    }
    assert described == routes
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        assert operation["summary"] and operation["description"], where
        for status in ("401", "429"):
            assert PROBLEM in operation["responses"][status]["content"], where
        assert "Retry-After" in operation["responses"]["429"]["headers"], where
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), f"{where} {parameter['name']}"


def test_the_idempotency_key_is_described_on_every_post(schema):
    for path, method, operation in operations(schema):
        if method != "post":
            continue
        [header] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header"
        assert header.get("required", False) is (path == "/api/v1/links/")
        assert "422" in operation["responses"] and "409" in operation["responses"]


def test_making_a_link_has_examples_and_strict_fields(schema):
    create = schema["paths"]["/api/v1/links/"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert len(examples) == 3
    body = schema["components"]["schemas"]["LinkCreateRequest"]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"delivery_method", "description"}
    assert "errors" in schema["components"]["schemas"]["Problem"]["properties"]
    assert "Idempotency" in schema["info"]["description"]


def test_the_docs_page_runs_only_paylinks_own_files(db):
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(src.startswith("/") for src in sources), sources
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in sources
    assert inline_code(response) == []
    script = Client().get(next(src for src in sources if "script" in src))
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


@pytest.mark.e2e
def test_the_docs_show_the_whole_api_in_a_browser_under_the_policy(live_server, transactional_db):
    seen: dict = {}

    def visit(page: Page) -> None:
        page.goto(f"{live_server.url}/api/docs/")
        page.locator(".opblock").first.wait_for()
        seen["operations"] = page.locator(".opblock").count()
        seen["title"] = page.locator(".info .title").first.inner_text()

    violations = in_chromium(visit)

    assert violations == []
    assert seen["operations"] == 12
    assert "PayLinks API" in seen["title"]


# Schemathesis against the live API, with an API key of a practice that has links.

EXAMPLES = 12


@pytest.fixture
def live_practice(transactional_db, seeded, live_server, settings) -> Practice:
    settings.API_REQUESTS_PER_MINUTE = 100_000
    practice = make_practice(seeded[0], live_server.url)
    practice.rate_budget_per_minute = 300
    practice.save(update_fields=["rate_budget_per_minute"])
    sync_departments(practice)
    return practice


def test_schemathesis_finds_no_server_error_and_every_answer_fits_the_description(
    live_server, live_practice
):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    api_key, secret = make_key(live_practice, role=APIKey.Role.MANAGER, name="Schemathesis")
    invoice = refresh_invoice(live_practice, sandbox_invoice(live_practice).id)
    link = create_link(draft_for(invoice, api_key.user, amount=1))
    api = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    headers = {"Authorization": f"Api-Key {secret}"}
    known = {"code": str(link.code), "provet_id": invoice.provet_id}
    started = time.monotonic()
    tried = 0
    answers: Counter = Counter()

    # Besides what Schemathesis makes up: the link and invoice that exist, and a body that
    # makes a link (for a cent, so that the invoice's due sum lasts).
    valid_body = {
        "invoice": invoice.provet_id,
        "amount": "0.01",
        "delivery_method": 0,
        "description": "Made by Schemathesis",
    }

    for result in api.get_all_operations():
        operation = result.ok()
        fixed = {name: known[name] for name in known if f"{{{name}}}" in operation.path}
        variants: list[dict] = [{}]
        if fixed:
            variants.append({"path_parameters": fixed})
        if operation.label == "POST /api/v1/links/":
            variants.append({"body": valid_body})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for variant in variants:
                if mode == GenerationMode.NEGATIVE and "body" in variant:
                    continue
                strategy = operation.as_strategy(mode, **variant)

                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def run(case):
                    response = case.call_and_validate(
                        base_url=live_server.url, headers=headers, checks=checks
                    )
                    answers[(operation.label, response.status_code)] += 1

                try:
                    run()
                except Unsatisfiable:
                    # Nothing of the operation can be made invalid (no body, no parameter
                    # with a type to break): there is no negative case to send.
                    assert mode == GenerationMode.NEGATIVE, operation.label
                    continue
                tried += 1

    assert tried >= 24  # 12 operations, both ways, and the link and invoice that exist
    assert time.monotonic() - started < 150
    # It got past the 400s and 404s too: links made, read, checked, cancelled.
    for label, status in [
        ("POST /api/v1/links/", 201),
        ("GET /api/v1/links/{code}/", 200),
        ("POST /api/v1/links/{code}/refresh/", 200),
        ("GET /api/v1/invoices/{provet_id}/", 200),
        ("GET /api/v1/summary/", 200),
    ]:
        assert answers[(label, status)], (label, status)
