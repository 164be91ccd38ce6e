import json
import subprocess

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client as DjangoClient

from clinics.models import Membership, Practice
from clinics.provet import client as provet_client
from clinics.provet.auth import tokens
from clinics.provet.in_process import wsgi_transport
from demo.practices import connect_sandbox_installation

pytest_plugins = ["tests.sandbox_fixtures", "tests.clock"]

PASSWORD = "correct horse battery staple"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """`make quick` leaves out what needs a browser (`e2e`), a live server, another process or
    many requests (`slow`). A test that serves a live server is slow by its fixture; one that
    starts a process says so, or `_processes_are_slow` fails it."""
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _processes_are_slow(request, monkeypatch):
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError("a test that starts a process is marked @pytest.mark.slow")

    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashing():
    """Production's PBKDF2 takes half a second a password by design; a test makes a user or
    two each, so tests hash with MD5 (nothing here guards a real password)."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _forget_process_state(request, django_db_blocker):
    """Tokens (process memory) and the shared cache (a table no flush empties) outlive a
    test's database; a later test must not reuse them."""
    tokens.clear()
    if "django_db_setup" in request.fixturenames:
        request.getfixturevalue("django_db_setup")  # the test database, not the real one
        with django_db_blocker.unblock():
            cache.clear()
    yield
    tokens.clear()


@pytest.fixture
def in_process_provet(monkeypatch):
    """New Provet clients reach the sandbox through the WSGI stack of this process."""
    transport = wsgi_transport()
    monkeypatch.setattr(provet_client, "default_transport", lambda: transport)
    return transport


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, with the sandbox seeded once: each test's transaction is rolled back
    to it, so `seeded` costs a query instead of building 300 invoices (a test that empties the
    database, `transactional_db`, has `seeded` build them again)."""
    from sandbox.seed import seed_sandbox

    with django_db_blocker.unblock():
        seed_sandbox()


@pytest.fixture
def seeded(db):
    """The sandbox's two installations, seeded; a list of dicts as `sandbox_seed --json` prints."""
    from sandbox.seed import seed_sandbox

    return seed_sandbox()


def make_practice(installation: dict, root: str) -> Practice:
    return connect_sandbox_installation(installation, root)


@pytest.fixture
def practice(seeded, in_process_provet) -> Practice:
    """The first sandbox installation as a PayLinks practice, with OAuth2, reached in-process."""
    return make_practice(seeded[0], "http://localhost")


@pytest.fixture
def other_practice(seeded, in_process_provet) -> Practice:
    return make_practice(seeded[1], "http://localhost")


def make_user(username: str, practice: Practice | None = None, role: str = "reception"):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)
    if practice is not None:
        Membership.objects.create(user=user, practice=practice, role=role)
    return user


@pytest.fixture
def receptionist(practice):
    return make_user("riikka", practice, Membership.Role.RECEPTION)


@pytest.fixture
def manager(practice):
    return make_user("mikko", practice, Membership.Role.MANAGER)


@pytest.fixture
def outsider(other_practice):
    return make_user("hannah", other_practice, Membership.Role.RECEPTION)


@pytest.fixture(autouse=True)
def _tasks_run_at_once(monkeypatch):
    """django-q2 tasks run synchronously in tests, inside the request that queues them."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def app_clock(monkeypatch):
    """Moves the wall clock that the shared request budget and its pauses read
    (clinics/budget.py) to a given moment; the sandbox's clock follows it."""
    from django.utils import timezone

    def move_to(moment):
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return move_to


@pytest.fixture
def synced_practice(practice) -> Practice:
    """The practice with its departments brought in from Provet, as admin would."""
    from clinics.sync import sync_departments

    sync_departments(practice)
    return practice


def sandbox_invoice(practice: Practice, **conditions):
    """A seeded Provet invoice a link can be made for (finalized, due, Provet Pay allowed)."""
    from sandbox.models import Invoice as ProvetInvoice

    return (
        ProvetInvoice.objects.filter(
            installation__provet_id=practice.provet_id,
            status=3,
            credit_note=False,
            due_sum__gt=0,
            department__allow_nhp_processing=True,
            client__no_sms=False,
            client__no_email=False,
            **conditions,
        )
        .order_by("id")
        .first()
    )


def _draft(practice, user, **fields):
    """A LinkDraft as a valid form hands it to create_link: sent nowhere, no card saving."""
    from paylinks.create import LinkDraft
    from paylinks.forms import new_form_token

    defaults = {
        "practice": practice,
        "delivery_method": 0,
        "email": "",
        "phone": "",
        "return_url": "",
        "tokenize": "",
        "recurring_model": "",
        "consent": False,
        "created_by": user,
        "idempotency_key": new_form_token(),
    }
    return LinkDraft(**{**defaults, **fields})


def draft_for(invoice, user, **changes):
    """What a valid invoice link form hands to create_link."""
    return _draft(
        invoice.practice,
        user,
        **{
            "department": invoice.department,
            "amount": invoice.due_sum,
            "description": f"Payment for invoice {invoice}",
            "duration_minutes": 60,
            "invoice": invoice,
            **changes,
        },
    )


@pytest.fixture
def invoice(synced_practice):
    """A payable invoice, snapshotted from Provet as the invoice page does."""
    from paylinks.invoices import refresh_invoice

    return refresh_invoice(synced_practice, sandbox_invoice(synced_practice).id)


def add_fault(practice, **fault):
    """Make the sandbox misbehave through its control API."""
    response = DjangoClient().post(
        f"/sandbox/{practice.provet_id}/_control/faults/",
        json.dumps({"count": 1, **fault}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


def invoice_link_body(practice: Practice, amount, department_url: str, invoice_url: str) -> dict:
    """A Provet Pay postransaction for an invoice, as the reference's example posts it."""
    return {
        "amount": amount,
        "terminal_id": 0,
        "payment_type": 5003,
        "transaction_type": 4,
        "creator": practice.provet_user_url,
        "department": department_url,
        "invoice": invoice_url,
        "payment_link_data": {"duration": 60, "delivery_method": 0},
    }


def post_in_provet(invoice, amount):
    """Someone makes a link for the invoice in Provet's own screens (or a lost POST did)."""
    practice = invoice.practice
    with practice.provet_client() as client:
        return client.create_postransaction(
            invoice_link_body(
                practice,
                amount,
                client.url_for("department", invoice.department.provet_id),
                client.url_for("invoice", invoice.provet_id),
            )
        )


def link_made_in_provet(invoice, amount=None):
    """A full link someone made in Provet itself, imported as the invoice page imports it.

    PayLinks never makes a second full link for an invoice; Provet's own screens can."""
    from paylinks.invoices import refresh_invoice
    from paylinks.models import PaymentLink

    posted = post_in_provet(invoice, amount or invoice.due_sum)
    refresh_invoice(invoice.practice, invoice.provet_id)
    return PaymentLink.objects.get(practice=invoice.practice, postransaction_id=posted.id)


def form_data(page, **changes) -> dict:
    """A link page's form as the browser would send it, with `changes` typed in."""
    form = page.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else value
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def prepayment_draft_for(practice, user, client_id: int, **changes):
    """What a valid prepayment form hands to create_link."""
    from decimal import Decimal

    return _draft(
        practice,
        user,
        **{
            "department": practice.departments.filter(allow_nhp_processing=True).first(),
            "amount": Decimal("80.00"),
            "description": "Prepayment for surgery",
            "duration_minutes": 1440,
            "client_provet_id": client_id,
            "client_name": "Client",
            "prepayment_description": "Prepayment for surgery",
            **changes,
        },
    )


def database_url(connection) -> str:
    """DATABASE_URL for the database the tests run on, for a process started by a test."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    return f"postgres://{config['USER']}@{config['HOST']}:{config['PORT']}/{config['NAME']}"


def time_as_read(value, language: str, zone) -> str:
    """A moment's time of day as a page in `language` shows it in the practice's time zone:
    the app's own formatter, so the hour is written as the locale writes it (6.11 in Finnish,
    06:11 in British English), whatever the hour the test runs at."""
    from django.utils import timezone, translation

    from clinics import formats

    with translation.override(language):
        return formats.time(timezone.localtime(value, zone))
