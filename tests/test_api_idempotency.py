"""Idempotency-Key, as Stripe defines it: the same request answers the same, once, for 24 hours.

The concurrency tests race real requests in threads released together (tests/test_races.py's
way). Every request that gets past the guard waits at a rendezvous just before it makes its
link, so that with the guard the first one is still running when the others arrive; the control
takes the guard away and shows every request making a link of its own.
"""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.test import Client

from clinics.provet import client as provet_client
from paylinks.api import idempotency
from paylinks.api import links as api_links
from paylinks.api.models import IdempotencyRecord
from paylinks.create import create_link
from paylinks.models import PaymentLink
from sandbox import control as sandbox_control
from sandbox.models import PosTransaction
from tests.api_helpers import Api, invoice_link_body, make_key
from tests.conftest import draft_for, sandbox_invoice
from tests.racing import Race
from tests.test_races import CountingTransport


@pytest.fixture
def counting(monkeypatch, in_process_provet) -> CountingTransport:
    """Every request PayLinks sends to Provet, counted (tests/test_races.py's transport)."""
    transport = CountingTransport()
    monkeypatch.setattr(provet_client, "default_transport", lambda: transport)
    return transport


@pytest.fixture
def key(synced_practice):
    return make_key(synced_practice)


@pytest.fixture
def api(key) -> Api:
    return Api(key[1])


def prepayment_body(practice, amount="25.00") -> dict:
    department = practice.departments.filter(allow_nhp_processing=True).first()
    return {
        "client": sandbox_invoice(practice).client_id,
        "department": department.provet_id,
        "amount": amount,
        "delivery_method": 0,
        "description": "Prepayment for a dental",
    }


def test_the_same_key_and_body_get_the_first_answer_and_make_one_link(api, invoice):
    body = invoice_link_body(invoice, amount="5.00")
    first = api.post("/api/v1/links/", body, key="booking-1234")

    again = api.post("/api/v1/links/", body, key="booking-1234")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert PaymentLink.objects.count() == 1
    assert PosTransaction.objects.filter(invoice_id=invoice.provet_id).count() == 1


def test_the_same_key_with_another_body_is_a_422(api, invoice):
    api.post("/api/v1/links/", invoice_link_body(invoice, amount="5.00"), key="k-1")

    other = api.post("/api/v1/links/", invoice_link_body(invoice, amount="6.00"), key="k-1")

    assert other.status_code == 422
    assert other["Content-Type"] == "application/problem+json"
    assert other.json()["type"] == "urn:paylinks:problem:idempotency-key-reused"
    assert PaymentLink.objects.count() == 1


def test_the_same_key_on_another_link_s_action_is_a_422(api, invoice, key):
    one, two = (create_link(draft_for(invoice, key[0].user, amount=Decimal(1))) for _ in range(2))
    assert api.post(f"/api/v1/links/{one.code}/cancel/", key="c-1").status_code == 200

    assert api.post(f"/api/v1/links/{two.code}/cancel/", key="c-1").status_code == 422


def test_making_a_link_needs_a_key(api, invoice):
    response = api.post("/api/v1/links/", invoice_link_body(invoice), key=None)

    assert response.status_code == 400
    assert response.json()["type"] == "urn:paylinks:problem:idempotency-key-missing"
    assert not PaymentLink.objects.exists()


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "ä-key"])
def test_an_unusable_key_is_a_400(api, invoice, bad):
    response = api.post("/api/v1/links/", invoice_link_body(invoice), key=bad)

    assert response.status_code == 400
    assert response.json()["type"] == "urn:paylinks:problem:idempotency-key-invalid"


@pytest.mark.parametrize(
    ("wrong", "status"),
    [
        ({"phone": "12", "delivery_method": 3}, 400),  # a field the form refuses
        ({"invoice": 999999}, 404),  # nothing there
        ({"practice": str(uuid.UUID(int=1))}, 404),  # not the caller's
    ],
)
def test_a_request_refused_before_it_did_anything_leaves_its_key_unused(
    api, invoice, wrong, status
):
    refused = api.post("/api/v1/links/", invoice_link_body(invoice, **wrong), key="k-2")
    assert refused.status_code == status

    corrected = api.post("/api/v1/links/", invoice_link_body(invoice), key="k-2")

    assert corrected.status_code == 201
    assert not IdempotencyRecord.objects.filter(state="running").exists()


def test_nothing_free_on_the_invoice_says_why_when_no_amount_is_given(api, invoice):
    make = api.post("/api/v1/links/", invoice_link_body(invoice))
    body = invoice_link_body(invoice)
    del body["amount"]

    second = api.post("/api/v1/links/", body)

    assert make.status_code == 201
    assert "already ask for" in second.json()["errors"]["amount"][0]


def test_an_error_after_acting_is_answered_again_too(api, invoice, key):
    link = create_link(draft_for(invoice, key[0].user))
    sandbox_control.settle_link(link.external_id, "pay")
    first = api.post(f"/api/v1/links/{link.code}/cancel/", key="c-2")

    again = api.post(f"/api/v1/links/{link.code}/cancel/", key="c-2")

    assert (first.status_code, again.status_code) == (409, 409)
    assert again.json() == first.json()
    assert again["Content-Type"] == "application/problem+json"


def test_an_action_with_a_key_acts_once(api, invoice, key, counting):
    link = create_link(draft_for(invoice, key[0].user))
    counting.seen.clear()

    answers = [api.post(f"/api/v1/links/{link.code}/send-again/", key="again-1") for _ in "ab"]

    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["code"] == answers[1].json()["code"]
    assert (counting.count("POST"), counting.deletes()) == (1, 1)


def test_while_the_first_request_runs_the_same_key_gets_409(api, invoice, monkeypatch):
    body = invoice_link_body(invoice)
    during: list = []
    real = api_links.create_link

    def meanwhile(draft):
        during.append(api.post("/api/v1/links/", body, key="k-3"))
        return real(draft)

    monkeypatch.setattr(api_links, "create_link", meanwhile)

    first = api.post("/api/v1/links/", body, key="k-3")

    [second] = during
    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["type"] == "urn:paylinks:problem:idempotency-key-in-use"
    assert second["Retry-After"] == "1"
    assert api.post("/api/v1/links/", body, key="k-3").json() == first.json()


def test_a_key_is_kept_for_24_hours(api, invoice):
    api.post("/api/v1/links/", invoice_link_body(invoice, amount="1.00"), key="k-4")
    IdempotencyRecord.objects.update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    later = api.post("/api/v1/links/", invoice_link_body(invoice, amount="2.00"), key="k-4")

    assert later.status_code == 201
    assert PaymentLink.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1  # the old one is gone


def test_keys_belong_to_their_api_key(synced_practice, invoice):
    booking, kiosk = (Api(make_key(synced_practice, name=n)[1]) for n in ("Booking", "Kiosk"))
    body = invoice_link_body(invoice, amount="1.00")

    answers = [caller.post("/api/v1/links/", body, key="order-77") for caller in (booking, kiosk)]

    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["code"] != answers[1].json()["code"]


def test_a_request_that_died_is_taken_over_and_finds_the_link_it_made(
    api, invoice, monkeypatch, counting
):
    body = invoice_link_body(invoice)
    real = api_links._answer

    def crash(*args, **kwargs):
        raise RuntimeError("the process died")

    monkeypatch.setattr(api_links, "_answer", crash)
    with pytest.raises(RuntimeError):
        api.post("/api/v1/links/", body, key="k-5")
    monkeypatch.setattr(api_links, "_answer", real)
    assert api.post("/api/v1/links/", body, key="k-5").status_code == 409  # may still run
    IdempotencyRecord.objects.update(locked_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    taken_over = api.post("/api/v1/links/", body, key="k-5")

    assert taken_over.status_code == 201
    [link] = PaymentLink.objects.all()
    assert taken_over.json()["code"] == str(link.code)
    assert counting.count("POST") == 1


# Concurrent requests with one key, on the database the tests run on (PostgreSQL in CI too).


@pytest.fixture
def rendezvous(monkeypatch):
    """Every request that gets as far as making its link meets the others there
    (tests/racing.py). With the guard, the one that gets there waits until the others have
    been answered."""

    def arm(parties: int, *, guarded: bool = True) -> Race:
        race = Race(parties, guarded=guarded)
        real = api_links.create_link

        def meet_then_create(draft):
            race.meet()
            return real(draft)

        monkeypatch.setattr(api_links, "create_link", meet_then_create)
        return race

    return arm


def twenty_at_once(race: Race, secret: str, body: dict, key: str) -> list:
    callers = [Api(secret, Client()) for _ in range(20)]
    return race.run([lambda c=c: c.post("/api/v1/links/", body, key=key) for c in callers])


@pytest.mark.parametrize("subject", ["invoice", "prepayment"])
def test_twenty_concurrent_creates_with_one_key_make_one_link_and_one_post(
    transactional_db, synced_practice, counting, rendezvous, subject
):
    from paylinks.invoices import refresh_invoice

    _, secret = make_key(synced_practice)
    if subject == "invoice":
        invoice = refresh_invoice(synced_practice, sandbox_invoice(synced_practice).id)
        body = invoice_link_body(invoice)
    else:
        body = prepayment_body(synced_practice)
    key = str(uuid.uuid4())
    counting.seen.clear()
    race = rendezvous(20)

    answers = twenty_at_once(race, secret, body, key)

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 19
    [link] = PaymentLink.objects.all()
    assert counting.count("POST") == 1
    replay = Api(secret).post("/api/v1/links/", body, key=key)
    assert (replay.status_code, replay.json()["code"]) == (201, str(link.code))


def test_without_the_guard_twenty_concurrent_creates_make_twenty_links(
    transactional_db, synced_practice, counting, rendezvous, monkeypatch
):
    """The control: the row isn't inserted, so nothing stops the other requests."""
    monkeypatch.setattr(idempotency, "insert", lambda record: True)
    _, secret = make_key(synced_practice)
    body = prepayment_body(synced_practice)
    counting.seen.clear()
    race = rendezvous(20, guarded=False)

    answers = twenty_at_once(race, secret, body, str(uuid.uuid4()))

    assert race.most_met == 20  # all twenty past the (missing) guard before any made a link
    assert [answer.status_code for answer in answers] == [201] * 20
    assert PaymentLink.objects.count() == 20
    assert counting.count("POST") == 20
