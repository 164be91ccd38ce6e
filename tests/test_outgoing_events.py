"""Outgoing events: written with the change that causes them, sent signed to a practice's
endpoints, retried for a day, listed in admin; and the sandbox's receiver that shows them."""

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from clinics.provet.types import PaymentLinkInfo
from demo.management.commands import demo_setup
from paylinks import event_sending, outbox, tasks
from paylinks.cancel import cancel_link
from paylinks.create import create_link
from paylinks.models import (
    DeliveryStatus,
    EventDelivery,
    EventEndpoint,
    EventType,
    OutgoingEvent,
    PaymentLink,
    PaymentStatus,
    new_endpoint_secret,
)
from paylinks.polling import poll_due_links
from paylinks.reconcile import reconcile_link
from paylinks.refresh import check_now
from paylinks.review import choose
from paylinks.send_again import send_again
from sandbox import control
from sandbox.models import EventReceiver, PosTransaction
from tests.conftest import add_fault, draft_for, post_in_provet


class Receiver:
    """A clinic's system listening on 127.0.0.1: keeps each request, answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.location = ""
        self.delay = 0.0
        self.url = ""

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, body in self.requests]


@pytest.fixture
def receiver():
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            time.sleep(got.delay)
            self.send_response(got.status)
            if got.location:
                self.send_header("Location", got.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_port}/paylinks-events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()
    thread.join()


def make_endpoint(practice, url: str, events=EventType.values, **fields) -> EventEndpoint:
    endpoint = EventEndpoint(practice=practice, url=url, events=list(events), **fields)
    endpoint.secret = new_endpoint_secret()
    endpoint.save()
    return endpoint


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What the README's receiver does."""
    signed = headers["paylinks-timestamp"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(expected, part.strip().removeprefix("v1="))
        for part in headers["paylinks-signature"].split(",")
    )


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what is queued on commit, as it runs after a real commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def admin_client(db, client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


def make_due(link: PaymentLink) -> dt.datetime:
    now = timezone.now()
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=now)
    return now


def answer(link: PaymentLink, payment: int, delivery: int = DeliveryStatus.NOT_SENT):
    """What Provet could say about the link."""
    with link.practice.provet_client() as client:
        posted = client.get_postransaction(link.postransaction_id)
    info = PaymentLinkInfo(
        external_id=link.external_id,
        url=link.payer_url,
        expiration_time=link.expires_at,
        payment_status=payment,
        delivery_status=delivery,
    )
    return dataclasses.replace(posted, payment_link=info)


# Exactly one signed link.paid, however the payment is seen.


def test_a_payment_found_by_the_poller_is_sent_once_as_a_signed_link_paid(
    invoice, receptionist, receiver, committed
):
    endpoint = make_endpoint(invoice.practice, receiver.url, [EventType.PAID])
    with committed():
        link = create_link(draft_for(invoice, receptionist))
    assert receiver.requests == []  # link.created wasn't chosen
    control.settle_link(link.external_id, "pay")

    with committed():
        poll_due_links(now=make_due(link))
        poll_due_links(now=make_due(link))  # the same answer again: nothing new

    [(headers, body)] = receiver.requests
    assert verified(endpoint.secret, headers, body)
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["type"] == "link.paid"
    assert headers["paylinks-event-id"] == document["id"]
    assert set(document) == {"id", "type", "created", "data"}
    sent = document["data"]["link"]
    link.refresh_from_db()
    assert sent["code"] == str(link.code)
    assert sent["kind"] == "invoice"
    assert sent["invoice"] == {"number": invoice.number, "provet_id": invoice.provet_id}
    assert sent["client_provet_id"] == invoice.client_provet_id
    assert (sent["amount"], sent["currency"]) == (str(link.amount), link.currency)
    assert (sent["payment_status"], sent["payment_status_label"]) == (5, "Paid")
    assert (sent["delivery_status"], sent["delivery_status_label"]) == (1, "Not sent")
    assert sent["state"] == "closed"
    assert sent["paid_at"] == link.paid_at.isoformat()
    assert sent["payer_url"] == link.payer_url and sent["replaced_by"] is None
    delivery = EventDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.next_attempt_at is None


def test_check_now_that_finds_the_payment_sends_it_too(
    client, invoice, receptionist, receiver, committed
):
    endpoint = make_endpoint(invoice.practice, receiver.url, [EventType.PAID])
    link = create_link(draft_for(invoice, receptionist))
    control.settle_link(link.external_id, "pay")
    client.force_login(receptionist)
    with committed():
        client.post(f"/links/{link.code}/check/")
    [(headers, body)] = receiver.requests
    assert verified(endpoint.secret, headers, body)
    assert json.loads(body)["data"]["link"]["payment_status"] == PaymentStatus.ACCEPTED


def test_a_webhook_the_poller_and_check_now_seeing_one_payment_make_one_event(
    client, invoice, receptionist, receiver, committed
):
    make_endpoint(invoice.practice, receiver.url)
    with committed():
        link = create_link(draft_for(invoice, receptionist))
    control.settle_link(link.external_id, "pay")
    with committed():
        hook = f"/webhooks/provet/{invoice.practice.webhook_secret}/"
        client.post(hook, {"invoice_id": invoice.provet_id})
        client.post(hook, {"invoice_id": invoice.provet_id})
        poll_due_links(now=make_due(link))
        check_now(link, user=receptionist, now=timezone.now() + dt.timedelta(minutes=1))
        link.record_status(answer(link, PaymentStatus.ACCEPTED), source="poller")
    assert receiver.types() == ["link.created", "link.paid"]
    assert OutgoingEvent.objects.filter(link=link, type=EventType.PAID).count() == 1


def test_the_database_holds_one_event_per_link_and_type(invoice, receptionist, receiver):
    """Even a second writer that got past the state machine can't announce a payment twice."""
    make_endpoint(invoice.practice, receiver.url)
    link = create_link(draft_for(invoice, receptionist))
    link.record_status(answer(link, PaymentStatus.ACCEPTED), source="poller")
    with transaction.atomic():
        assert outbox.record(link, EventType.PAID) is None
    assert OutgoingEvent.objects.filter(link=link, type=EventType.PAID).count() == 1
    assert EventDelivery.objects.filter(event__type=EventType.PAID).count() == 1


def test_a_change_that_rolls_back_leaves_no_event_and_sends_nothing(
    invoice, receptionist, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(invoice.practice, receiver.url, [EventType.PAID])
    link = create_link(draft_for(invoice, receptionist))
    paid = answer(link, PaymentStatus.ACCEPTED)
    with (
        django_capture_on_commit_callbacks(execute=True) as queued,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        assert link.record_status(paid, source="poller")
        assert OutgoingEvent.objects.filter(type=EventType.PAID).exists()  # written with it
        raise RuntimeError("what came after the change failed")
    assert not OutgoingEvent.objects.exists()
    assert not EventDelivery.objects.exists()
    assert queued == []
    assert receiver.requests == []
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.PENDING


# Each change, its own event; only the endpoints that chose it.


def test_each_change_to_a_link_is_announced_as_what_it_is(
    invoice, receptionist, receiver, committed
):
    make_endpoint(invoice.practice, receiver.url)
    with committed():
        first = create_link(draft_for(invoice, receptionist, amount=Decimal("1.00")))
        other = create_link(draft_for(invoice, receptionist, amount=Decimal("1.00")))
        first.record_status(
            answer(first, PaymentStatus.PENDING, DeliveryStatus.SENT), source="poller"
        )
        other.record_status(
            answer(other, PaymentStatus.EXPIRED, DeliveryStatus.FAILED), source="poller"
        )
        second = send_again(first, user=receptionist, idempotency_key="again-1")
        cancel_link(second, user=receptionist)

    sent = [json.loads(body) for _, body in receiver.requests]
    by_link = [(event["type"], event["data"]["link"]["code"]) for event in sent]
    assert by_link == [
        ("link.created", str(first.code)),
        ("link.created", str(other.code)),
        ("link.delivered", str(first.code)),
        ("link.delivery_failed", str(other.code)),
        ("link.expired", str(other.code)),
        ("link.cancelled", str(first.code)),  # cancelled in Provet before it was replaced
        ("link.replaced", str(first.code)),
        ("link.created", str(second.code)),
        ("link.cancelled", str(second.code)),
    ]
    assert sent[6]["data"]["link"]["replaced_by"] == str(second.code)
    assert sent[7]["data"]["link"]["replaces"] == str(first.code)
    assert sent[4]["data"]["link"]["payment_status_label"] == "Expired"
    assert sent[8]["data"]["link"]["cancelled_at"] is not None
    assert len({event["id"] for event in sent}) == len(sent)


def test_a_link_left_to_a_person_is_announced_and_created_once_decided(
    invoice, receptionist, manager, receiver, committed
):
    make_endpoint(invoice.practice, receiver.url)
    duplicate = post_in_provet(invoice, invoice.due_sum)
    add_fault(invoice.practice, path="postransaction/$", method="POST", kind="drop")
    with committed():
        link = create_link(draft_for(invoice, receptionist))
        reconcile_link(link)
    link.refresh_from_db()
    assert link.needs_review
    assert receiver.types() == ["link.needs_review"]
    assert json.loads(receiver.requests[0][1])["data"]["link"]["needs_review"] is True

    [ours] = PosTransaction.objects.filter(invoice_id=invoice.provet_id).exclude(pk=duplicate.id)
    with committed():
        choose(link, ours.pk, manager)
    assert receiver.types() == ["link.needs_review", "link.created"]


def test_only_the_practice_s_active_endpoints_that_chose_the_event_get_it(
    invoice, other_practice, receptionist, receiver, committed
):
    wanted = make_endpoint(invoice.practice, receiver.url + "/wanted", [EventType.CREATED])
    make_endpoint(invoice.practice, receiver.url + "/paid-only", [EventType.PAID])
    make_endpoint(invoice.practice, receiver.url + "/off", is_active=False)
    make_endpoint(other_practice, receiver.url + "/elsewhere")
    with committed():
        create_link(draft_for(invoice, receptionist))
    assert [delivery.endpoint for delivery in EventDelivery.objects.all()] == [wanted]
    assert len(receiver.requests) == 1


def test_an_endpoint_switched_off_gets_nothing_more(invoice, receptionist, receiver, committed):
    receiver.status = 503
    endpoint = make_endpoint(invoice.practice, receiver.url, [EventType.CREATED])
    with committed():
        create_link(draft_for(invoice, receptionist))
    endpoint.is_active = False
    endpoint.save()
    delivery = EventDelivery.objects.get()
    assert event_sending.attempt(delivery.pk, 1) == "endpoint switched off"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)
    assert len(receiver.requests) == 1


# Retries, failure, admin.


def test_a_failing_receiver_is_retried_for_a_day_then_failed_listed_and_sent_again(
    invoice, receptionist, receiver, committed, app_clock, admin_client
):
    receiver.status = 500
    make_endpoint(invoice.practice, receiver.url, [EventType.CREATED])
    start = timezone.now()
    app_clock(start)
    with committed():
        create_link(draft_for(invoice, receptionist))
    delivery = EventDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)

    waits = []
    while delivery.status == EventDelivery.Status.PENDING:
        due = delivery.next_attempt_at
        waits.append(due - delivery.last_attempt_at)
        app_clock(due - dt.timedelta(seconds=1))
        assert event_sending.send_due() == 0  # not yet
        app_clock(due)
        with committed():
            tasks.send_due_events()
        delivery.refresh_from_db()
        assert len(waits) < 40

    assert delivery.status == EventDelivery.Status.FAILED
    assert delivery.next_attempt_at is None
    assert dt.timedelta(hours=20) < delivery.last_attempt_at - start <= dt.timedelta(days=1)
    assert waits[0] == dt.timedelta(seconds=30)
    assert waits == sorted(waits) and max(waits) == dt.timedelta(hours=3)
    assert len(receiver.requests) == delivery.attempts == len(waits) + 1
    assert len({body for _, body in receiver.requests}) == 1  # the same event each time
    assert len({headers["paylinks-event-id"] for headers, _ in receiver.requests}) == 1

    admin_client.force_login(get_user_model().objects.get(username="root"))  # a day later
    page = admin_client.get("/admin/paylinks/eventdelivery/?status__exact=failed")
    assert page.status_code == 200
    listed = page.content.decode()
    assert "link.created" in listed and "Answered 500" in listed and "Failed" in listed
    assert list(page.context["cl"].result_list) == [delivery]

    receiver.status = 200
    with committed():
        answered = admin_client.post(
            "/admin/paylinks/eventdelivery/",
            {"action": "send_again", "_selected_action": [delivery.pk]},
            follow=True,
        )
    assert "queued to be sent again" in answered.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    assert len(receiver.requests) == delivery.attempts


def test_deliveries_and_events_are_read_only_in_admin(
    invoice, receptionist, receiver, admin_client
):
    make_endpoint(invoice.practice, receiver.url)
    create_link(draft_for(invoice, receptionist))
    delivery = EventDelivery.objects.get()
    page = admin_client.get(f"/admin/paylinks/eventdelivery/{delivery.pk}/change/").content
    assert b'name="_save"' not in page and b'name="status"' not in page
    event = admin_client.get(f"/admin/paylinks/outgoingevent/{delivery.event_id}/change/")
    assert event.status_code == 200 and b"link.created" in event.content
    assert b'name="_save"' not in event.content
    assert admin_client.get("/admin/paylinks/eventdelivery/add/").status_code == 403


def test_a_worker_that_died_mid_attempt_is_taken_over_by_the_sweep_without_a_double_send(
    invoice, receptionist, receiver, app_clock, committed
):
    make_endpoint(invoice.practice, receiver.url, [EventType.CREATED])
    start = timezone.now()
    app_clock(start)
    create_link(draft_for(invoice, receptionist))  # never committed: its first attempt is lost
    delivery = EventDelivery.objects.get()
    assert delivery.attempts == 0 and receiver.requests == []
    assert event_sending.send_due() == 0  # the queued first attempt has its go first

    app_clock(start + event_sending.CLAIM)
    with committed():
        assert event_sending.send_due() == 1
    assert event_sending.attempt(delivery.pk, 0) == "made already"  # the lost one, late
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(invoice, receptionist, receiver, committed):
    receiver.status, receiver.location = 302, "http://127.0.0.1:9/elsewhere"
    make_endpoint(invoice.practice, receiver.url, [EventType.CREATED])
    with committed():
        create_link(draft_for(invoice, receptionist))
    delivery = EventDelivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)
    assert "redirects are not followed" in delivery.last_error
    assert len(receiver.requests) == 1


def test_a_receiver_that_takes_too_long_is_given_up_on(
    invoice, receptionist, receiver, committed, monkeypatch
):
    monkeypatch.setattr(event_sending, "TIMEOUT", 0.2)
    receiver.delay = 1
    make_endpoint(invoice.practice, receiver.url, [EventType.CREATED])
    with committed():
        create_link(draft_for(invoice, receptionist))
    delivery = EventDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert delivery.last_error.startswith("No answer within")


def test_after_a_rotation_both_secrets_sign_for_a_day(invoice, receptionist, receiver, committed):
    endpoint = make_endpoint(invoice.practice, receiver.url, [EventType.CREATED])
    old = endpoint.secret
    new = endpoint.rotate_secret()
    assert new != old and endpoint.secret == new
    with committed():
        create_link(draft_for(invoice, receptionist))
    [(headers, body)] = receiver.requests
    assert headers["paylinks-signature"].count("v1=") == 2
    assert verified(new, headers, body) and verified(old, headers, body)
    assert not verified("plsec_someone-else", headers, body)
    later = timezone.now() + dt.timedelta(days=1, minutes=1)
    assert endpoint.signing_secrets(later) == [new]


# Where events may go.


@pytest.mark.parametrize(
    ("url", "production", "words"),
    [
        ("http://example.com/events", False, "Use https"),
        ("http://example.com/events", True, "Use https"),
        ("http://127.0.0.1:8000/events", True, "Use https"),
        ("https://10.1.2.3/events", True, "10.1.2.3, a private, loopback"),
        ("https://localhost/events", True, "a private, loopback, link-local or reserved"),
        ("https://169.254.169.254/latest/", True, "link-local"),
        ("https://[::ffff:192.168.1.1]/events", True, "192.168.1.1, a private"),
    ],
)
def test_admin_refuses_an_endpoint_events_must_not_go_to(
    admin_client, practice, settings, url, production, words
):
    settings.PRODUCTION = production
    response = admin_client.post(
        "/admin/paylinks/eventendpoint/add/",
        {"practice": practice.pk, "url": url, "events": ["link.paid"], "is_active": "on"},
    )
    assert response.status_code == 200
    assert words in response.context["adminform"].form.errors["url"][0]
    assert not EventEndpoint.objects.exists()


def test_an_endpoint_made_in_admin_shows_its_secret_once(admin_client, practice):
    form = admin_client.get("/admin/paylinks/eventendpoint/add/")
    assert form.status_code == 200
    assert form.content.decode().count('type="checkbox" name="events"') == len(EventType)
    response = admin_client.post(
        "/admin/paylinks/eventendpoint/add/",
        {
            "practice": practice.pk,
            "url": "http://localhost:8123/events",
            "events": ["link.paid", "link.expired"],
            "is_active": "on",
        },
        follow=True,
    )
    endpoint = EventEndpoint.objects.get()
    assert endpoint.events == ["link.paid", "link.expired"]
    secret = endpoint.secret
    assert secret.startswith("plsec_") and secret not in endpoint.secret_encrypted
    assert secret in response.content.decode()
    page = admin_client.get(f"/admin/paylinks/eventendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and secret not in page.content.decode()

    rotated = admin_client.post(
        "/admin/paylinks/eventendpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != secret and endpoint.secret in rotated.content.decode()


def test_in_production_nothing_is_sent_to_a_loopback_address(
    invoice, receptionist, receiver, committed, settings
):
    make_endpoint(invoice.practice, receiver.url.replace("http:", "https:"), [EventType.CREATED])
    settings.PRODUCTION = True
    with committed():
        create_link(draft_for(invoice, receptionist))
    delivery = EventDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert delivery.last_error.startswith("Not sent: 127.0.0.1 is at 127.0.0.1, a private")
    assert receiver.requests == []


def test_plain_http_to_another_host_is_never_sent(invoice, receptionist, committed):
    make_endpoint(invoice.practice, "http://example.com/events", [EventType.CREATED])
    with committed():
        create_link(draft_for(invoice, receptionist))
    assert EventDelivery.objects.get().last_error.startswith("Not sent: Use https")


# The sandbox's receiver and the demo.


def test_the_sandbox_receiver_checks_signatures_and_lists_what_it_got(
    transactional_db, live_server, invoice, receptionist, client
):
    name = "booking-site"
    assert "Nothing received yet" in client.get(f"/sandbox/_receiver/{name}/").content.decode()
    assert not EventReceiver.objects.filter(name=name).exists()  # looking makes nothing
    endpoint = make_endpoint(invoice.practice, f"{live_server.url}/sandbox/_receiver/{name}/")
    told = client.post(
        f"/sandbox/_receiver/{name}/_control/",
        json.dumps({"secret": endpoint.secret}),
        content_type="application/json",
    )
    assert told.status_code == 200 and told.json()["has_secret"]

    link = create_link(draft_for(invoice, receptionist))  # committed: sent at once
    control.settle_link(link.external_id, "pay")
    poll_due_links(now=make_due(link))

    received = client.get(f"/sandbox/_receiver/{name}/_control/").json()["received"]
    assert [(r["event_type"], r["signature_valid"]) for r in received] == [
        ("link.paid", True),
        ("link.created", True),
    ]
    assert EventDelivery.objects.filter(status="delivered").count() == 2

    forged = client.post(
        f"/sandbox/_receiver/{name}/",
        json.dumps({"id": "x", "type": "link.paid"}),
        content_type="application/json",
        headers={"PayLinks-Timestamp": "1", "PayLinks-Signature": "v1=00"},
    )
    assert forged.status_code == 200
    page = client.get(f"/sandbox/_receiver/{name}/").content.decode()
    assert page.count('<span class="sent">valid</span>') == 2
    assert page.count('<span class="failed">invalid</span>') == 1


def test_demo_setup_registers_a_sandbox_receiver_per_practice_for_every_event(
    db, in_process_provet, monkeypatch, settings
):
    monkeypatch.setattr(demo_setup, "LINKS_PER_DAY", {4: 1, 7: 1})
    call_command("demo_setup", base_url="http://localhost")
    first = {e.url: e.secret for e in EventEndpoint.objects.all()}
    call_command("demo_setup", base_url="http://localhost")

    endpoints = EventEndpoint.objects.order_by("practice__provet_id")
    assert [e.url for e in endpoints] == [
        "http://localhost/sandbox/_receiver/practice-4/",
        "http://localhost/sandbox/_receiver/practice-7/",
    ]
    assert {e.url: e.secret for e in endpoints} == first  # the same secret after a rerun
    for endpoint in endpoints:
        assert endpoint.events == EventType.values and endpoint.is_active
        name = f"practice-{endpoint.practice.provet_id}"
        assert EventReceiver.objects.get(name=name).secret == endpoint.secret
