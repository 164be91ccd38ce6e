"""The Provet client against the sandbox, through the real HTTP stack (in-process WSGI)."""

import datetime as dt
import json
import logging
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest
from django.test import Client as DjangoClient
from django.utils import timezone

from clinics.models import Practice
from clinics.provet import (
    ProvetAuthError,
    ProvetClient,
    ProvetNotFound,
    ProvetPermissionError,
    ProvetRateLimited,
    ProvetUnavailable,
    ProvetValidationError,
)
from clinics.provet import client as provet_client
from clinics.provet.errors import ProvetForeignURL
from clinics.provet.in_process import wsgi_transport
from clinics.provet.types import InvoiceStatus
from tests.conftest import invoice_link_body


class Recorder(httpx.BaseTransport):
    """Passes requests to the sandbox and remembers them. With `retry_after` set, a 429's
    Retry-After says that instead: the sandbox gives seconds, Provet may give an HTTP date."""

    def __init__(self):
        self.inner = wsgi_transport()
        self.requests: list[httpx.Request] = []
        self.retry_after: str | None = None

    def handle_request(self, request):
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if response.status_code == 429 and self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        return response

    def paths(self, fragment: str) -> list[str]:
        return [r.url.path for r in self.requests if fragment in r.url.path]


@pytest.fixture
def recorder(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(provet_client, "default_transport", lambda: recorder)
    return recorder


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def provet(practice, sleeps, recorder) -> ProvetClient:
    return ProvetClient(practice.connection(), sleep=sleeps.append)


def control(practice: Practice, what: str, body: dict | None = None, method: str = "post"):
    response = getattr(DjangoClient(), method)(
        f"/sandbox/{practice.provet_id}/_control/{what}",
        data=json.dumps(body or {}),
        content_type="application/json",
    )
    assert response.status_code < 300, response.content
    return response


def add_fault(practice: Practice, **fault):
    control(practice, "faults/", {"count": 1, **fault})


def test_it_lists_departments_with_their_provet_pay_flag(provet):
    departments = provet.list_departments()
    assert len(departments) >= 3
    assert any(d.allow_nhp_processing for d in departments)
    assert any(not d.allow_nhp_processing for d in departments)


def test_a_legacy_token_works_too(practice, sleeps, recorder):
    practice.auth_scheme = Practice.AuthScheme.TOKEN
    provet = ProvetClient(practice.connection(), sleep=sleeps.append)
    assert provet.list_departments()
    assert recorder.paths("oauth2/token") == []
    assert recorder.requests[-1].headers["Authorization"].startswith("Token ")


def test_every_request_names_paylinks_and_carries_a_fresh_correlation_id(provet, recorder):
    provet.list_departments()
    provet.list_departments()
    api = [r for r in recorder.requests if "/api/0.1/" in r.url.path]
    assert all(r.headers["User-Agent"].startswith("PayLinks/") for r in recorder.requests)
    ids = [r.headers["X-Correlation-Id"] for r in api]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_calls_are_logged_with_their_outcome_but_never_a_secret(practice, provet, caplog):
    caplog.set_level(logging.INFO, logger="clinics.provet")
    provet.list_departments()
    logged = caplog.text
    assert "GET /sandbox/4/api/0.1/department/ 200" in logged
    assert "correlation_id=" in logged
    assert practice.client_secret not in logged
    assert "Bearer" not in logged and "access_token" not in logged


def test_the_oauth_token_is_fetched_once_and_reused(provet, recorder):
    provet.list_departments()
    provet.get_invoice(provet.list_invoices({}, page_size=1).results[0].id)
    assert len(recorder.paths("oauth2/token")) == 1


def test_an_expired_token_is_fetched_again_once(practice, provet, recorder):
    provet.list_departments()
    control(practice, "clock/", {"advance_seconds": 11 * 3600})
    assert provet.list_departments()
    assert len(recorder.paths("oauth2/token")) == 2


def test_a_wrong_client_secret_is_an_auth_error(practice, sleeps):
    practice.client_secret = "not-the-secret"
    with pytest.raises(ProvetAuthError, match="refused the OAuth client id or secret"):
        ProvetClient(practice.connection(), sleep=sleeps.append).list_departments()


def test_an_unknown_invoice_is_not_found(provet):
    with pytest.raises(ProvetNotFound):
        provet.get_invoice(987654)


def test_a_refused_postransaction_carries_provet_s_field_errors(practice, provet):
    with pytest.raises(ProvetValidationError) as refused:
        provet.create_postransaction(
            {
                "amount": Decimal("0"),
                "terminal_id": 0,
                "payment_type": 5003,
                "transaction_type": 4,
                "creator": practice.provet_user_url,
                "department": provet.url_for("department", 1),
                "prepayment_data": {"client_id": 1, "department_id": 1},
                "payment_link_data": {"duration": 60, "delivery_method": 0},
            }
        )
    assert "amount" in refused.value.flat_errors()


def test_a_missing_permission_is_a_permission_error(practice, provet):
    control(practice, "permissions/", {"financial_invoices": False})
    invoice = provet.list_invoices({"status__is": InvoiceStatus.FINALIZED}, 1).results[0]
    with pytest.raises(ProvetPermissionError):
        provet.create_postransaction(
            invoice_link_body(practice, Decimal("1.00"), invoice.department_url, invoice.url)
        )


def test_gets_are_retried_after_a_server_error(practice, provet, sleeps):
    add_fault(practice, path="department/", kind="503", count=2)
    assert provet.list_departments()
    assert sleeps == [0.5, 1.0]


def test_gets_give_up_after_three_attempts(practice, provet, sleeps):
    add_fault(practice, path="department/", kind="500", count=5)
    with pytest.raises(ProvetUnavailable):
        provet.list_departments()
    assert len(sleeps) == 2


def test_a_short_retry_after_is_waited_out(practice, provet, sleeps):
    add_fault(practice, path="department/", kind="429", retry_after=2)
    assert provet.list_departments()
    assert sleeps == [2.0]


def test_a_long_retry_after_is_handed_to_the_caller(practice, provet, sleeps):
    add_fault(practice, path="department/", kind="429", retry_after=45)
    with pytest.raises(ProvetRateLimited) as limited:
        provet.list_departments()
    assert limited.value.retry_after == 45
    assert sleeps == []


@pytest.fixture
def now(app_clock) -> dt.datetime:
    """The clock stopped on a whole second, as an HTTP date counts."""
    moment = timezone.now().replace(microsecond=0)
    app_clock(moment)
    return moment


def http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def test_a_retry_after_date_moments_away_is_waited_out(practice, provet, sleeps, recorder, now):
    add_fault(practice, path="department/", kind="429")
    recorder.retry_after = http_date(now + dt.timedelta(seconds=2))
    assert provet.list_departments()
    assert sleeps == [2.0]


def test_a_retry_after_date_further_off_is_handed_to_the_caller(
    practice, provet, sleeps, recorder, now
):
    add_fault(practice, path="department/", kind="429")
    recorder.retry_after = http_date(now + dt.timedelta(seconds=45))
    with pytest.raises(ProvetRateLimited) as limited:
        provet.list_departments()
    assert limited.value.retry_after == 45
    assert sleeps == []


def test_a_retry_after_date_already_past_means_at_once(practice, provet, sleeps, recorder, now):
    add_fault(practice, path="department/", kind="429")
    recorder.retry_after = http_date(now - dt.timedelta(hours=1))
    assert provet.list_departments()
    assert sleeps == [0.0]


@pytest.mark.parametrize("value", ["after lunch", "Mon, 32 Jan 2024 10:00:00 GMT", "inf", ""])
def test_a_retry_after_that_is_neither_seconds_nor_a_date_means_a_minute(
    practice, provet, sleeps, recorder, value
):
    add_fault(practice, path="department/", kind="429")
    recorder.retry_after = value
    with pytest.raises(ProvetRateLimited) as limited:
        provet.list_departments()
    assert limited.value.retry_after == 60
    assert sleeps == []


def test_posts_are_never_retried(practice, provet, recorder):
    add_fault(practice, path="postransaction/", method="POST", kind="503")
    invoice = provet.list_invoices({"status__is": InvoiceStatus.FINALIZED}, 1).results[0]
    with pytest.raises(ProvetUnavailable) as unavailable:
        provet.create_postransaction(
            invoice_link_body(practice, Decimal("1.00"), invoice.department_url, invoice.url)
        )
    assert unavailable.value.request_sent
    posts = [r for r in recorder.requests if r.method == "POST" and "postransaction" in r.url.path]
    assert len(posts) == 1


def test_the_sandbox_rate_limit_reaches_the_caller_with_its_retry_after(practice, provet):
    control(practice, "rate-limits/", {"GET /department/": 2})
    provet.list_departments()
    provet.list_departments()
    with pytest.raises(ProvetRateLimited) as limited:
        provet.list_departments()
    assert 0 < limited.value.retry_after <= 60


def test_the_page_iterator_follows_next_to_the_end(provet):
    first = provet.list_invoices({}, page_size=25)
    assert first.num_pages > 1
    everything = list(provet.iterate("invoice/", lambda data: data["id"], page_size=25))
    assert len(everything) == first.count == len(set(everything))


def test_a_created_link_comes_back_typed(practice, provet):
    invoice = provet.list_invoices({"status__is": InvoiceStatus.FINALIZED}, 1).results[0]
    created = provet.create_postransaction(
        invoice_link_body(practice, Decimal("1.50"), invoice.department_url, invoice.url)
    )
    assert created.amount == Decimal("1.50")
    assert created.invoice_id == invoice.id
    assert created.payment_link and created.payment_link.payment_status == 1
    again = provet.get_postransaction(created.id)
    assert again.payment_link and again.payment_link.external_id == created.payment_link.external_id
    assert created.url in provet.get_invoice(invoice.id).postransactions


def test_a_failing_token_endpoint_means_the_request_never_left(practice, sleeps):
    add_fault(practice, path="oauth2/token/", kind="503", count=5)
    provet = ProvetClient(practice.connection(), sleep=sleeps.append)
    with pytest.raises(ProvetUnavailable) as unavailable:
        provet.create_postransaction({"amount": Decimal("1.00")})
    assert not unavailable.value.request_sent


def test_a_token_hiccup_is_retried_for_gets(practice, sleeps):
    add_fault(practice, path="oauth2/token/", kind="503", count=1)
    assert ProvetClient(practice.connection(), sleep=sleeps.append).list_departments()
    assert sleeps == [0.5]


def test_a_next_link_to_another_host_is_refused_and_the_credentials_stay_home(
    practice, sleeps, caplog
):
    requests: list[httpx.Request] = []
    sandbox = wsgi_transport()
    first_page = f"/sandbox/{practice.provet_id}/api/0.1/department/"

    def provet_or_a_stranger(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.host != "localhost":
            return httpx.Response(200, json={"count": 0, "results": []})
        if request.url.path == first_page:
            return httpx.Response(
                200,
                json={
                    "count": 2,
                    "num_pages": 2,
                    "next": f"https://evil.example{first_page}?page=2&page_size=50",
                    "results": [{"id": 1}],
                },
            )
        return sandbox.handle_request(request)

    caplog.set_level(logging.INFO, logger="clinics.provet")
    provet = ProvetClient(
        practice.connection(),
        transport=httpx.MockTransport(provet_or_a_stranger),
        sleep=sleeps.append,
    )
    pages = provet.iterate("department/", lambda data: data["id"])
    assert next(pages) == 1
    with pytest.raises(
        ProvetForeignURL, match=r"outside this installation \(https://evil\.example"
    ):
        next(pages)
    assert [r for r in requests if r.url.host == "evil.example"] == []
    assert "refused" in caplog.text and "evil.example" in caplog.text
    assert "page=2" not in caplog.text and practice.client_secret not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/sandbox/{own}/api/0.1/postransaction/1/",
        "http://localhost:8080/sandbox/{own}/api/0.1/postransaction/1/",
        "https://localhost/sandbox/{own}/api/0.1/postransaction/1/",
        "http://localhost@evil.example/sandbox/{own}/api/0.1/postransaction/1/",
    ],
    ids=["another host", "another port", "another scheme", "a host behind user info"],
)
def test_a_postransaction_url_on_another_host_is_refused(practice, provet, recorder, url):
    own = practice.provet_id
    with pytest.raises(ProvetForeignURL) as refused:
        provet.get_postransaction_by_url(url.format(own=own))
    assert refused.value.permanent and not refused.value.request_sent
    assert recorder.paths("") == [f"/sandbox/{own}/oauth2/token/"]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/sandbox/{other}/api/0.1/postransaction/1/",
        "http://localhost/sandbox/{own}/api/0.1/%2e%2e/%2e%2e/%2e%2e/{other}/api/0.1/postransaction/1/",
        "http://localhost/sandbox/{own}/_control/faults/",
    ],
    ids=["another installation", "an encoded way out", "the installation outside its API"],
)
def test_a_url_on_the_same_host_outside_the_installation_s_api_is_refused(
    practice, other_practice, provet, recorder, url
):
    own, other = practice.provet_id, other_practice.provet_id
    with pytest.raises(ProvetForeignURL, match="outside this installation"):
        provet.get_postransaction_by_url(url.format(own=own, other=other))
    assert recorder.paths("") == [f"/sandbox/{own}/oauth2/token/"]


def test_a_postransaction_url_within_the_installation_is_followed(practice, provet):
    invoice = provet.list_invoices({"status__is": InvoiceStatus.FINALIZED}, 1).results[0]
    created = provet.create_postransaction(
        invoice_link_body(practice, Decimal("2.00"), invoice.department_url, invoice.url)
    )
    assert created.url.startswith(f"http://localhost/sandbox/{practice.provet_id}/api/0.1/")
    assert provet.get_postransaction_by_url(created.url).id == created.id
