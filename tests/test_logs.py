"""Logs: a line per request, per task and per Provet call; never a secret or a client's details."""

import importlib
import io
import json
import logging
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.urls import clear_url_caches

from clinics.models import Practice
from config.logs import JSONFormatter, PlainFormatter
from paylinks import tasks
from paylinks.create import create_link
from sandbox import control
from tests.conftest import draft_for
from tests.test_settings_production import OWN_VARIABLES, PRODUCTION, ROOT


class Captured:
    def __init__(self, stream: io.StringIO):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def of(self, logger: str) -> list[dict]:
        return [line for line in self.lines if line["logger"] == logger]


def capture(formatter: logging.Formatter):
    """Everything logged at INFO and above, written by `formatter` as the console handler does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield Captured(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def logged():
    yield from capture(JSONFormatter())


@pytest.fixture
def logged_plain():
    yield from capture(PlainFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))


def test_a_page_request_is_one_json_line_with_method_path_status_and_duration(
    client, receptionist, logged
):
    client.force_login(receptionist)
    assert client.get("/links/").status_code == 200
    [line] = logged.of("paylinks.request")
    assert (line["method"], line["path"], line["status"]) == ("GET", "/links/", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")
    assert line["message"].startswith("GET /links/ 200 in ")
    assert line["user"] == receptionist.pk
    assert receptionist.email not in logged.text


def test_a_request_line_names_the_practice_the_person_chose(client, practice, receptionist, logged):
    client.force_login(receptionist)
    client.post("/practice/", {"practice": practice.code})
    client.get("/links/")
    assert logged.of("paylinks.request")[-1]["practice"] == str(practice.code)


@pytest.fixture
def link(invoice, receptionist):
    return create_link(draft_for(invoice, receptionist))


def test_a_webhook_is_logged_without_its_secret(client, link, logged):
    practice = link.practice
    control.settle_link(link.external_id, "pay")
    response = client.post(
        f"/webhooks/provet/{practice.webhook_secret}/", {"invoice_id": link.invoice.provet_id}
    )
    assert response.status_code == 200
    assert practice.webhook_secret not in logged.text
    # The sandbox's own requests are logged too; the webhook's is the last to end.
    request = logged.of("paylinks.request")[-1]
    assert (request["method"], request["path"], request["status"]) == (
        "POST",
        "/webhooks/provet/…/",
        200,
    )
    # The check after the webhook ran inside the request (tests run tasks at once): it, and the
    # Provet calls it made, carry the practice and the request's id.
    [task] = logged.of("paylinks.task")
    assert (task["task"], task["practice"]) == ("after_webhook", str(practice.code))
    assert task["request_id"] == request["request_id"]
    calls = logged.of("clinics.provet")
    assert calls and all(call["practice"] == str(practice.code) for call in calls)


@pytest.mark.parametrize("formatter", ["logged", "logged_plain"])
def test_a_malformed_webhook_is_logged_without_its_secret(client, practice, formatter, request):
    logs = request.getfixturevalue(formatter)
    url = f"/webhooks/provet/{practice.webhook_secret}/"
    response = client.post(url, "[1]", content_type="application/json")
    assert response.status_code == 400
    lines = logs.text.splitlines() if formatter == "logged_plain" else logs.lines
    messages = [line if isinstance(line, str) else line["message"] for line in lines]
    # Django's own warning, redacted.
    assert any("Bad Request: /webhooks/provet/…/" in message for message in messages)
    assert practice.webhook_secret not in logs.text


def test_a_wrong_webhook_secret_is_not_logged_either(client, db, logged):
    assert client.post("/webhooks/provet/a-guess-0123/", {}).status_code == 404
    assert "a-guess-0123" not in logged.text


@pytest.fixture
def password_reset(settings):
    """The URLs as PayLinks makes them with EMAIL_URL set: with password reset."""

    def urls(on: bool) -> None:
        settings.PASSWORD_RESET = on
        importlib.reload(importlib.import_module(settings.ROOT_URLCONF))
        clear_url_caches()

    before = settings.PASSWORD_RESET
    urls(True)
    yield
    urls(before)


def test_a_password_reset_link_is_logged_without_its_token(
    client, receptionist, password_reset, logged
):
    client.post("/accounts/password_reset/", {"email": receptionist.email})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/reset/" in line)
    path = urlsplit(link).path
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert client.get(path, follow=True).status_code == 200
    assert token not in logged.text
    assert [line["path"] for line in logged.of("paylinks.request")][-2:] == [
        path.replace(token, "…"),
        path.replace(token, "set-password"),
    ]


def test_a_search_is_logged_without_what_was_searched_for(client, receptionist, logged):
    client.force_login(receptionist)
    assert client.get("/", {"q": "Maija"}).status_code == 200
    home = logged.of("paylinks.request")[-1]
    assert (home["path"], home["status"]) == ("/", 200)
    assert logged.of("clinics.provet"), "the search asked Provet"
    assert "Maija" not in logged.text


def test_a_query_string_in_any_message_is_dropped(logged_plain):
    logging.getLogger("paylinks").warning('"GET /?q=Maija+0401234567 HTTP/1.1" 404 179')
    assert '"GET / HTTP/1.1" 404 179' in logged_plain.text
    assert "Maija" not in logged_plain.text and "0401234567" not in logged_plain.text


def test_a_provet_call_logs_its_correlation_id_as_a_field(practice, logged):
    with practice.provet_client() as provet:
        provet.list_departments()
    [*_, call] = logged.of("clinics.provet")
    assert len(call["correlation_id"]) == 32
    assert (call["method"], call["status"]) == ("GET", 200)
    assert call["path"].endswith("/api/0.1/department/")
    assert practice.client_secret not in logged.text and "Bearer" not in logged.text


def test_a_task_logs_its_name_practice_duration_and_outcome(practice, logged):
    tasks.find_drift_for(practice.pk)
    [line] = logged.of("paylinks.task")
    assert (line["task"], line["practice"]) == ("find_drift_for", str(practice.code))
    assert line["outcome"] == "0 open mismatches" and line["duration_ms"] >= 0


def test_a_failing_task_is_logged_as_failed(db, logged):
    with pytest.raises(Practice.DoesNotExist):
        tasks.find_drift_for(0)
    [line] = logged.of("paylinks.task")
    assert line["level"] == "ERROR" and line["outcome"] == "failed: DoesNotExist"


def test_an_exception_stays_on_one_line(logged):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("paylinks").exception("it broke")
    [line] = logged.lines
    assert "ValueError: boom" in line["exc"]


def log_at_startup(**env: str) -> str:
    """What a process configured with `env` writes for one log line (stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith((*OWN_VARIABLES, "LOG_"))}
    script = "import django; django.setup(); import logging; logging.getLogger('x').info('hello')"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr.strip()


@pytest.mark.slow
def test_production_logs_json_lines():
    line = json.loads(log_at_startup(**PRODUCTION))
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "x", "hello")


@pytest.mark.slow
def test_development_logs_plain_text_and_either_can_be_chosen():
    assert log_at_startup().endswith("INFO x hello")
    assert json.loads(log_at_startup(LOG_FORMAT="json"))["message"] == "hello"
    assert log_at_startup(**PRODUCTION, LOG_FORMAT="plain").endswith("INFO x hello")


@pytest.mark.slow
def test_an_unknown_log_format_stops_start_up():
    with pytest.raises(subprocess.CalledProcessError) as refused:
        log_at_startup(LOG_FORMAT="xml")
    assert "LOG_FORMAT must be one of json, plain" in refused.value.stderr
