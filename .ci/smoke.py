"""The production smoke stage: PayLinks run the way it runs in production, proven end to end.

`.ci/smoke` runs this with the virtualenv's Python. It starts the sandbox as a separate server
standing in for Provet Cloud over real HTTP, prepares a fresh PostgreSQL database and a Redis
database, runs PayLinks with PAYLINKS_ENV=production under gunicorn (2 workers) with two
`manage.py qcluster` processes, and then, as a receptionist and a client would:

1. logs in, makes a payment link through the reception pages, pays it on the sandbox's payer page
   and sees Paid on the link page;
2. with the sandbox's webhooks off (only the poller finds payments), makes more links, pays some,
   SIGKILLs the qcluster that is in the middle of a poll pass, and checks that nothing was lost or
   duplicated, that the statuses agree with the sandbox's, and that the other cluster goes on;
3. replays a 500-webhook flood (20 at a time) about invoices the practice has dealt with before,
   and counts PayLinks' 5xx and 429 answers and the 429s the sandbox gave PayLinks during it and
   the minute after it, while the receptionist goes on opening invoices.

Every process it starts runs in its own process group (setsid) and is stopped at the end, failure
or not; their process groups are also written to RUN_DIR/pgids, for `.ci/smoke`'s trap. Every
failure is listed at the end, with what failed, and makes the exit non-zero.
"""

import argparse
import concurrent.futures
import contextlib
import html
import json
import os
import random
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import psycopg
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")

POSTGRES = "postgres://postgres@127.0.0.1:5432"
DATABASE = "paylinks_smoke"
REDIS_DB = 13
PROVET_ID = 4  # the sandbox's Northvale Veterinary Group
USERNAME = "smoke-desk"

PAID_WITHIN = 40  # seconds from paying to the link page showing Paid
POLL_PASS_WITHIN = 90  # seconds to wait for a poll pass to kill a cluster in
AGREE_WITHIN = 120  # seconds after the kill for the app to agree with the sandbox again
SURVIVOR_PAID_WITHIN = 90  # seconds for a payment to be seen by the poller after the kill
FLOOD = 500
FLOOD_CONCURRENCY = 20
FLOOD_INVOICES = 200  # distinct invoice ids in the flood, all known to PayLinks
AFTER_FLOOD = 60  # seconds after the flood that the sandbox's 429s are counted for
DESK_PAGES = 6  # invoices the receptionist opens during the flood and the minute after it
STOP_WITHIN = 30  # seconds a process has to stop on SIGTERM before it is SIGKILLed


class SmokeFailure(Exception):
    """What failed, in words for the CI log."""


class Stopped(BaseException):
    """The stage was told to stop (SIGTERM, SIGHUP): clean up and fail."""


def say(message: str) -> None:
    print(f"[smoke {time.strftime('%H:%M:%S')}] {message}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- processes ------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log: Path


@dataclass
class Processes:
    """What the stage started: each in its own session, so its whole group can be signalled."""

    run_dir: Path
    services: dict[str, Service] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        log = self.run_dir / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 (our own commands)
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with (self.run_dir / "pgids").open("a") as pgids:
            pgids.write(f"{process.pid}\n")
        service = Service(name, process, log)
        self.services[name] = service
        say(f"started {name} (process group {process.pid}): {' '.join(argv[1:4])} …")
        return service

    def kill(self, name: str) -> None:
        """SIGKILL a service's whole process group, as a crash or the OOM killer would."""
        service = self.services.pop(name)
        _signal_group(service.process.pid, signal.SIGKILL)
        service.process.wait(timeout=10)

    def stop_all(self) -> dict[str, str]:
        """SIGTERM every group, as systemd does; SIGKILL what is still there after STOP_WITHIN."""
        started = time.monotonic()
        for service in self.services.values():
            _signal_group(service.process.pid, signal.SIGTERM)
        how: dict[str, str] = {}
        for name, service in self.services.items():
            left = max(0.1, STOP_WITHIN - (time.monotonic() - started))
            try:
                service.process.wait(timeout=left)
                how[name] = f"stopped on SIGTERM in {time.monotonic() - started:.1f} s"
            except subprocess.TimeoutExpired:
                how[name] = f"still running {STOP_WITHIN} s after SIGTERM: SIGKILLed"
            # Whatever the main process did, nothing of its group outlives the stage.
            _signal_group(service.process.pid, signal.SIGKILL)
            if service.process.poll() is None:
                service.process.wait(timeout=10)
        self.services.clear()
        return how


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def run(argv: list[str], env: dict[str, str], what: str) -> str:
    """Run a command to completion; its stdout, or a failure with its output."""
    done = subprocess.run(  # noqa: S603 (our own commands)
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0:
        raise SmokeFailure(
            f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def wait_for_http(url: str, service: Service, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise SmokeFailure(f"{service.name} exited with {service.process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SmokeFailure(f"{service.name} did not answer at {url} within {within:.0f} s")


# --- pages ----------------------------------------------------------------------------------


@dataclass
class Form:
    attrs: dict[str, str]
    fields: list[dict] = field(default_factory=list)

    def values(self, press: tuple[str, str] | None = None) -> dict[str, str]:
        """What a browser sends when the form is submitted (with the button `press`)."""
        data: dict[str, str] = {}
        for item in self.fields:
            name, kind = item.get("name"), item.get("type", "text")
            if not name or kind in {"submit", "button", "reset", "image", "file"}:
                continue
            if kind in {"checkbox", "radio"}:
                if "checked" in item:
                    data[name] = item.get("value", "on")
            elif kind == "select":
                chosen = [o for o in item["options"] if o["selected"]] or item["options"][:1]
                data[name] = chosen[0]["value"] if chosen else ""
            else:
                data[name] = item.get("value") or ""
        if press:
            data[press[0]] = press[1]
        return data


class FormParser(HTMLParser):
    """The forms of a page with their fields, enough to submit them as a browser would."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: dict | None = None
        self._option: dict | None = None
        self._textarea: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(a))
        elif not self.forms:
            return
        elif tag == "input":
            self.forms[-1].fields.append({**a, "type": a.get("type", "text").lower()})
        elif tag == "button":
            self.forms[-1].fields.append({**a, "type": a.get("type", "submit").lower()})
        elif tag == "select":
            self._select = {**a, "type": "select", "options": []}
            self.forms[-1].fields.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}
            self._select["options"].append(self._option)
        elif tag == "textarea":
            self._textarea = {**a, "type": "textarea", "value": ""}
            self.forms[-1].fields.append(self._textarea)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "option" and self._option is not None:
            if self._option["value"] is None:
                self._option["value"] = self._option["text"].strip()
            self._option = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option["text"] += data
        if self._textarea is not None:
            self._textarea["value"] += data


def forms_of(page: str) -> list[Form]:
    parser = FormParser()
    parser.feed(page)
    return parser.forms


def the_form(page: str, has: str, where: str) -> Form:
    for form in forms_of(page):
        if form.attrs.get("method", "get").lower() == "post" and any(
            item.get("name") == has for item in form.fields
        ):
            return form
    raise SmokeFailure(f"{where}: no form with a {has!r} field on the page")


def browser(base_url: str) -> httpx.Client:
    """A client that keeps cookies as a browser does at http://127.0.0.1: browsers treat a
    loopback address as a secure context, so they send PayLinks' `Secure` cookies back to it
    (httpx, like urllib, sends them only over https)."""
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)

    def send_cookies(request: httpx.Request) -> None:
        host = request.url.host
        cookies = [c for c in client.cookies.jar if c.domain == host]
        if cookies:
            request.headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in cookies)

    client.event_hooks["request"] = [send_cookies]
    return client


def post_form(client: httpx.Client, url: str, data: dict[str, str]) -> httpx.Response:
    """A form post with the Origin a browser sends (Django's CSRF check compares it)."""
    page = client.base_url.join(url)
    origin = f"{page.scheme}://{page.netloc.decode()}"
    return client.post(url, data=data, headers={"Origin": origin, "Referer": str(page)})


PAYMENT_STATUS = re.compile(r'data-testid="payment-status">([^<]*)<')
PAYER_URL = re.compile(r'id="payer-url" value="([^"]+)"')


class Desk:
    """The receptionist, in a browser, on PayLinks' own pages."""

    def __init__(self, app_url: str, password: str) -> None:
        self.client = browser(app_url)
        self.password = password

    def log_in(self) -> None:
        page = self.client.get("/accounts/login/")
        check(page.status_code == 200, f"the login page answered {page.status_code}")
        form = the_form(page.text, "username", "login page")
        data = form.values() | {"username": USERNAME, "password": self.password}
        answer = post_form(self.client, "/accounts/login/", data)
        check(
            answer.status_code == 302 and answer.headers.get("location") == "/",
            f"logging in answered {answer.status_code} {answer.headers.get('location', '')} "
            "instead of a redirect to Reception",
        )
        home = self.client.get("/")
        check(home.status_code == 200, f"Reception answered {home.status_code} after logging in")

    def open_invoice(self, invoice: dict) -> str:
        """Find the invoice by its number on Reception and open it; the invoice page's HTML."""
        number = f"{invoice['prefix']}{invoice['number']}"
        found = self.client.get("/", params={"q": number})
        check(found.status_code == 200, f"searching for {number} answered {found.status_code}")
        href = f"/invoices/{invoice['id']}/"
        check(href in found.text, f"searching for {number} on Reception did not find it")
        page = self.client.get(href)
        check(
            page.status_code == 200,
            f"the invoice page of {number} answered {page.status_code} "
            f"{page.headers.get('location', '')}",
        )
        return page.text

    def make_link(self, invoice: dict) -> dict:
        """Make a link for the whole due sum as the form proposes it; the link's code and payer
        URL."""
        page = self.open_invoice(invoice)
        form = the_form(page, "form_token", f"invoice {invoice['id']}")
        href = f"/invoices/{invoice['id']}/"
        answer = post_form(self.client, href, form.values())
        location = answer.headers.get("location", "")
        made = re.fullmatch(r"/links/([0-9a-f-]{36})/", location)
        if answer.status_code != 302 or not made:
            errors = re.findall(r'class="error[^"]*"[^>]*>(.*?)</', answer.text, re.S)
            raise SmokeFailure(
                f"making a link for invoice {invoice['id']} answered {answer.status_code} "
                f"{location} {[html.unescape(e).strip() for e in errors][:3]}"
            )
        link_page = self.client.get(location)
        check(link_page.status_code == 200, f"the link page answered {link_page.status_code}")
        payer = PAYER_URL.search(link_page.text)
        check(payer is not None, f"the link page {location} shows no payment link")
        return {"code": made.group(1), "payer_url": html.unescape(payer.group(1)), **invoice}

    def status(self, link: dict) -> str:
        page = self.client.get(f"/links/{link['code']}/")
        check(page.status_code == 200, f"the link page answered {page.status_code}")
        found = PAYMENT_STATUS.search(page.text)
        check(found is not None, "the link page shows no payment status")
        return html.unescape(found.group(1)).strip()

    def wait_paid(self, link: dict, within: float, what: str) -> float:
        started = time.monotonic()
        shown = ""
        while time.monotonic() - started < within:
            shown = self.status(link)
            if shown == "Paid":
                return time.monotonic() - started
            time.sleep(1)
        raise SmokeFailure(f"{what}: the link page showed {shown!r}, not Paid, after {within} s")


def pay(payer_url: str) -> None:
    """The client pays on the sandbox's payer page, with a browser of their own."""
    with browser(payer_url) as client:
        page = client.get(payer_url)
        check(page.status_code == 200, f"the payer page answered {page.status_code}")
        form = the_form(page.text, "action", "payer page")
        answer = post_form(client, payer_url, form.values(press=("action", "pay")))
        check(answer.status_code == 303, f"paying on the payer page answered {answer.status_code}")
        done = client.get(payer_url)
        check(
            "Your payment has been accepted" in done.text,
            "the payer page did not accept the payment",
        )


# --- the two sides' records -----------------------------------------------------------------


class Sandbox:
    """The sandbox server: its control API over HTTP, its records read from its SQLite file."""

    def __init__(self, url: str, database: Path) -> None:
        self.url = url
        self.database = database
        self.control = f"{url}/sandbox/{PROVET_ID}/_control/"

    def rows(self, sql: str, *args: object) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=20) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, args).fetchall()

    def payable_invoices(self) -> list[dict]:
        rows = self.rows(
            """SELECT i.id, i.invoice_prefix, i.invoice_number FROM sandbox_invoice i
               JOIN sandbox_installation n ON n.id = i.installation_id
               JOIN sandbox_department d ON d.id = i.department_id
               WHERE n.provet_id = ? AND i.status = 3 AND NOT i.credit_note
                 AND i.due_sum > 0 AND d.allow_nhp_processing ORDER BY i.id""",
            PROVET_ID,
        )
        return [{"id": r[0], "prefix": r[1], "number": r[2]} for r in rows]

    def invoice_history(self) -> list[dict]:
        """Every invoice of the installation as PayLinks' snapshot of it would hold it."""
        rows = self.rows(
            """SELECT i.id AS provet_id, i.invoice_prefix, i.invoice_number, i.status,
                      i.credit_note, i.client_id AS client_provet_id, c.firstname, c.lastname,
                      c.organization_name, c.email AS client_email, c.no_sms AS client_no_sms,
                      c.no_email AS client_no_email, d.id AS department_provet_id,
                      CAST(i.total_with_vat AS TEXT) AS total_with_vat,
                      CAST(i.due_sum AS TEXT) AS due_sum, i.invoice_date, i.date_paid
               FROM sandbox_invoice i
               JOIN sandbox_installation n ON n.id = i.installation_id
               JOIN sandbox_client c ON c.id = i.client_id
               JOIN sandbox_department d ON d.id = i.department_id
               WHERE n.provet_id = ? ORDER BY i.id""",
            PROVET_ID,
        )
        history = []
        for row in map(dict, rows):
            prefix, number = row.pop("invoice_prefix"), row.pop("invoice_number")
            row["number"] = f"{prefix}{number}" if number is not None else ""
            person = f"{row.pop('firstname')} {row.pop('lastname')}".strip()
            row["client_name"] = row.pop("organization_name") or person
            history.append(row)
        return history

    def postransactions(self) -> dict[int, int]:
        """Every postransaction of the installation: id -> payment status."""
        rows = self.rows(
            """SELECT p.id, p.payment_status FROM sandbox_postransaction p
               JOIN sandbox_installation n ON n.id = p.installation_id WHERE n.provet_id = ?""",
            PROVET_ID,
        )
        return {r[0]: r[1] for r in rows}

    def call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        answer = httpx.request(method, self.control + path, json=body, timeout=10)
        check(answer.status_code < 300, f"sandbox {method} _control/{path}: {answer.status_code}")
        return answer

    def set_webhooks(self, app_url: str, secret: str) -> None:
        """As a clinic sets it up in Provet (and `demo_setup` does): payments are announced."""
        self.call("DELETE", "webhooks/")
        url = f"{app_url}/webhooks/provet/{secret}/"
        self.call("POST", "webhooks/", {"url": url, "trigger": 11})
        self.call("POST", "webhooks/", {"url": url, "trigger": 12, "content_type": 2})

    def throttled(self) -> dict:
        return self.call("GET", "rate-limits/counts/").json()


def app_links(database_url: str) -> list[dict]:
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            """SELECT code::text, state, postransaction_id, payment_status, imported
               FROM paylinks_paymentlink"""
        ).fetchall()
    keys = ("code", "state", "postransaction_id", "payment_status", "imported")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def disagreements(made: list[dict], database_url: str, sandbox: Sandbox) -> list[str]:
    """Whatever differs between the links the stage made, PayLinks' records and the sandbox's."""
    problems = []
    links = app_links(database_url)
    by_code = {link["code"]: link for link in links}
    remote = sandbox.postransactions()
    if len(links) != len(made):
        problems.append(f"PayLinks has {len(links)} links; the stage made {len(made)}")
    if len(remote) != len(made):
        problems.append(
            f"the sandbox has {len(remote)} postransactions; the stage made {len(made)}"
        )
    ids = [link["postransaction_id"] for link in links]
    if len(set(ids)) != len(ids):
        problems.append("two PayLinks links name the same postransaction")
    for link in made:
        mine = by_code.get(link["code"])
        if mine is None:
            problems.append(f"link {link['code']} is missing from PayLinks")
            continue
        if mine["state"] not in {"active", "closed"}:
            problems.append(f"link {link['code']} is {mine['state']}")
        theirs = remote.get(mine["postransaction_id"])
        if theirs is None:
            problems.append(f"link {link['code']}'s postransaction is missing from the sandbox")
        elif theirs != mine["payment_status"]:
            problems.append(
                f"link {link['code']}: payment status {mine['payment_status']} in PayLinks, "
                f"{theirs} in the sandbox"
            )
    return problems


# --- cluster logs ---------------------------------------------------------------------------


def log_lines(path: Path, start: int) -> tuple[list[dict], int]:
    """The JSON lines written to a log since byte `start`, and where they end."""
    with path.open("rb") as log:
        log.seek(start)
        data = log.read()
    end = start + data.rfind(b"\n") + 1 if b"\n" in data else start
    lines = []
    for raw in data[: end - start].splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines, end


def in_poll_pass(line: dict) -> bool:
    """A call to Provet made by the poller (the `poll` task, or its per-practice tasks)."""
    return "poll" in str(line.get("task", "")) and str(line.get("message", "")).startswith(
        "provet "
    )


# --- the stage ------------------------------------------------------------------------------


class Smoke:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.processes = Processes(run_dir)
        self.figures: list[str] = []
        self.database_url = f"{POSTGRES}/{DATABASE}"
        self.password = secrets.token_urlsafe(18)
        self.made: list[dict] = []
        self.failures: list[str] = []

    def figure(self, text: str) -> None:
        self.figures.append(text)
        say(text)

    def base_env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
        return {key: os.environ[key] for key in keep if key in os.environ}

    # The sandbox, standing in for Provet Cloud over HTTP.
    def start_sandbox(self) -> None:
        say("--- the sandbox as a separate server")
        port = free_port()
        self.sandbox = Sandbox(f"http://127.0.0.1:{port}", self.run_dir / "sandbox.sqlite3")
        env = self.base_env() | {
            "DJANGO_SETTINGS_MODULE": "sandbox.server_settings",
            "SANDBOX_DATABASE": str(self.sandbox.database),
        }
        run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env, "migrating the sandbox")
        seeded = json.loads(run([PYTHON, "manage.py", "sandbox_seed", "--json"], env, "seeding"))
        self.installation = next(i for i in seeded if i["provet_id"] == PROVET_ID)
        service = self.processes.start(
            "sandbox",
            [
                *(GUNICORN, "config.wsgi", "--workers", "1", "--threads", "16"),
                *("--bind", f"127.0.0.1:{port}", "--timeout", "120", "--no-control-socket"),
            ],
            env,
        )
        wait_for_http(f"{self.sandbox.url}/sandbox/", service)

    # PayLinks in production.
    def prepare_app(self) -> None:
        say("--- PayLinks with PAYLINKS_ENV=production on PostgreSQL and Redis")
        self.port = free_port()
        self.app_url = f"http://127.0.0.1:{self.port}"
        redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
        self.env = self.base_env() | {
            "PAYLINKS_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "PAYLINKS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback; a TLS proxy otherwise
            "DATABASE_URL": self.database_url,
            "REDIS_URL": redis_url,
            "Q_WORKERS": "2",
        }
        try:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as db:
                db.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
                db.execute(f"CREATE DATABASE {DATABASE}")
        except psycopg.Error as error:
            raise SmokeFailure(f"PostgreSQL at {POSTGRES}: {error}") from None
        try:
            redis.Redis.from_url(redis_url).flushdb()
        except redis.RedisError as error:
            raise SmokeFailure(f"Redis at {redis_url}: {error}") from None
        manage = [PYTHON, "manage.py"]
        run([*manage, "migrate", "--noinput", "-v0"], self.env, "migrate")
        run([*manage, "collectstatic", "--noinput", "-v0"], self.env, "collectstatic")
        checked = subprocess.run(  # noqa: S603 (our own command)
            [*manage, "check", "--deploy"], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        found = set(re.findall(r"\(([a-z_.]+\.[EWC]\d+)\)", checked.stdout + checked.stderr))
        # Plain HTTP on the loopback is the one thing this set-up does on purpose.
        check(
            checked.returncode == 0 and found <= {"security.W008"},
            f"check --deploy: {checked.stdout[-2000:]}{checked.stderr[-2000:]}",
        )
        self.figure(f"check --deploy: {', '.join(sorted(found)) or 'no issues'}")
        self.history = self.sandbox.invoice_history()
        history = self.run_dir / "history.json"
        history.write_text(json.dumps(self.history))
        setup = run(
            [*manage, "shell", "-c", SETUP],
            self.env
            | {
                "SMOKE_INSTALLATION": json.dumps(self.installation),
                "SMOKE_SANDBOX_URL": self.sandbox.url,
                "SMOKE_USERNAME": USERNAME,
                "SMOKE_PASSWORD": self.password,
                "SMOKE_HISTORY": str(history),
            },
            "connecting the practice",
        )
        self.practice = json.loads(setup.strip().splitlines()[-1])
        check(self.practice["departments"] > 0, "syncing departments found none")
        self.sandbox.set_webhooks(self.app_url, self.practice["webhook_secret"])
        say(
            f"practice connected, {self.practice['departments']} departments synced, "
            f"{self.practice['invoices']} invoices known from earlier weeks"
        )

    def start_app(self) -> None:
        web = self.processes.start(
            "gunicorn",
            [GUNICORN, "config.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{self.port}"],
            self.env,
        )
        for name in ("qcluster-1", "qcluster-2"):
            self.processes.start(name, [PYTHON, "manage.py", "qcluster"], self.env)
        wait_for_http(f"{self.app_url}/accounts/login/", web)

    # 1. A link made at the desk, paid by the client.
    def first_payment(self) -> None:
        say("--- log in, make a link on the reception pages, pay it on the payer page")
        self.invoices = self.sandbox.payable_invoices()
        random.Random(PROVET_ID).shuffle(self.invoices)
        check(len(self.invoices) >= 10, "the sandbox has too few payable invoices")
        self.desk = Desk(self.app_url, self.password)
        self.desk.log_in()
        link = self.desk.make_link(self.invoices.pop())
        self.made.append(link)
        check(self.desk.status(link) == "Waiting for payment", "a new link isn't waiting")
        pay(link["payer_url"])
        seen = self.desk.wait_paid(link, PAID_WITHIN, "the first payment")
        self.figure(f"first payment: Paid on the link page {seen:.1f} s after paying")

    # 2. A qcluster killed in the middle of a poll pass.
    def kill_a_cluster(self) -> None:
        say("--- SIGKILL a qcluster in the middle of a poll pass")
        # Only the poller finds these payments: no webhook says anything.
        self.sandbox.call("DELETE", "webhooks/")
        links = [self.desk.make_link(self.invoices.pop()) for _ in range(6)]
        self.made.extend(links)
        # Slow Provet's link reads, so that a pass is still busy when the kill lands.
        fault = {"kind": "latency", "path": r"/postransaction/\d+/", "method": "GET"}
        self.sandbox.call("POST", "faults/", fault | {"count": None, "latency_ms": 1500})
        for link in links[:3]:
            pay(link["payer_url"])
        pending = links[3:]
        clusters = [s for name, s in self.processes.services.items() if name.startswith("qc")]
        offsets = {s.name: s.log.stat().st_size for s in clusters}
        victim, call = None, {}
        waiting = time.monotonic()
        while victim is None and time.monotonic() - waiting < POLL_PASS_WITHIN:
            for service in clusters:
                lines, offsets[service.name] = log_lines(service.log, offsets[service.name])
                calls = [line for line in lines if in_poll_pass(line)]
                if calls:
                    victim, call = service, calls[-1]
                    break
            time.sleep(0.1)
        check(victim is not None, f"no cluster logged a poll pass within {POLL_PASS_WITHIN} s")
        self.processes.kill(victim.name)
        killed_at = time.monotonic()
        self.figure(
            f"{victim.name} SIGKILLed in the middle of a poll pass ({killed_at - waiting:.0f} s "
            f"after the payments, just after its {call.get('method')} {call.get('path')})"
        )
        self.sandbox.call("DELETE", "faults/")

        problems = disagreements(self.made, self.database_url, self.sandbox)
        while problems and time.monotonic() - killed_at < AGREE_WITHIN:
            time.sleep(2)
            problems = disagreements(self.made, self.database_url, self.sandbox)
        if problems:
            self.fail(
                f"{AGREE_WITHIN} s after the kill PayLinks and the sandbox disagree: {problems}"
            )
        else:
            self.figure(
                f"after the kill: {len(self.made)} links, each once in PayLinks and once in the "
                f"sandbox, none creating, statuses agree {time.monotonic() - killed_at:.0f} s on"
            )
        pay(pending[0]["payer_url"])
        try:
            seen = self.desk.wait_paid(pending[0], SURVIVOR_PAID_WITHIN, "after the kill")
            self.figure(f"the surviving cluster's poller saw a new payment as Paid in {seen:.1f} s")
        except SmokeFailure as failure:
            self.fail(str(failure))
        self.sandbox.set_webhooks(self.app_url, self.practice["webhook_secret"])

    def fail(self, message: str) -> None:
        """A failure the stage goes on after, so that one run shows every failure."""
        self.failures.append(message)
        say(f"FAILED: {message}")

    # 3. The webhook flood.
    def flood(self) -> None:
        say(f"--- a flood of {FLOOD} webhooks, {FLOOD_CONCURRENCY} at a time")
        self.throttled_before_flood = self.sandbox.throttled()
        self.cluster_offsets = {
            name: service.log.stat().st_size
            for name, service in self.processes.services.items()
            if name.startswith("qcluster")
        }
        rng = random.Random(FLOOD)
        ids = rng.sample([row["provet_id"] for row in self.history], FLOOD_INVOICES)
        bodies = []
        for n in range(FLOOD):
            # As Provet sends them: a form for one trigger, JSON for the other.
            invoice_id, stamp = ids[n % len(ids)], datetime.now(UTC).isoformat()
            if n % 2:
                body = json.dumps({"invoice_id": invoice_id, "timestamp": stamp})
                bodies.append(("application/json", body))
            else:
                body = f"invoice_id={invoice_id}&timestamp={stamp}"
                bodies.append(("application/x-www-form-urlencoded", body))
        rng.shuffle(bodies)
        url = f"{self.app_url}/webhooks/provet/{self.practice['webhook_secret']}/"

        def deliver(body: tuple[str, str]) -> int:
            try:
                answer = client.post(url, content=body[1], headers={"Content-Type": body[0]})
            except httpx.TransportError:
                return 0
            return answer.status_code

        started = time.monotonic()
        self.desk_work = concurrent.futures.ThreadPoolExecutor(1)
        self.desk_pages = self.desk_work.submit(self.keep_working, started)
        limits = httpx.Limits(max_connections=FLOOD_CONCURRENCY)
        with (
            httpx.Client(timeout=30, limits=limits) as client,
            concurrent.futures.ThreadPoolExecutor(FLOOD_CONCURRENCY) as pool,
        ):
            answers = list(pool.map(deliver, bodies))
        self.flood_ended = time.monotonic()
        counted: dict[str, int] = {}
        for status in answers:
            key = "no answer" if status == 0 else str(status)
            counted[key] = counted.get(key, 0) + 1
        self.server_errors = sum(1 for status in answers if status >= 500 or status == 0)
        self.too_many = answers.count(429)
        self.flood_answers = counted
        self.figure(
            f"flood: {FLOOD} webhooks about {len(ids)} known invoices in "
            f"{self.flood_ended - started:.1f} s; PayLinks answered "
            f"{json.dumps(counted, sort_keys=True)}: {self.server_errors} 5xx (or no answer), "
            f"{self.too_many} 429"
        )

    def keep_working(self, started: float) -> list[str]:
        """The receptionist opens invoices during the flood and the minute after it; what
        failed."""
        failures = []
        invoices = self.invoices[-DESK_PAGES:]
        for n, invoice in enumerate(invoices):
            time.sleep(max(0.0, started + n * AFTER_FLOOD / DESK_PAGES - time.monotonic()))
            try:
                self.desk.open_invoice(invoice)
            except SmokeFailure as failure:
                failures.append(str(failure))
        return failures

    def after_flood(self) -> None:
        """The sandbox's 429s to PayLinks during the flood and the minute after it."""
        wait = AFTER_FLOOD - (time.monotonic() - self.flood_ended)
        if wait > 0:
            say(f"waiting {wait:.0f} s, so the minute after the flood is counted whole")
            time.sleep(wait)
        page_failures = self.desk_pages.result()
        self.desk_work.shutdown()
        after = self.sandbox.throttled()
        before = self.throttled_before_flood
        refused = after["refused"] - before["refused"]
        allowed = after["allowed"] - before["allowed"]
        spent = {
            key: value["allowed"] - before["by_endpoint"].get(key, {}).get("allowed", 0)
            for key, value in after["by_endpoint"].items()
        }
        busiest = sorted(spent.items(), key=lambda item: -item[1])[:4]
        self.figure(
            f"the sandbox, from the flood to a minute after it: {allowed} requests from PayLinks "
            f"({', '.join(f'{k} {v}' for k, v in busiest if v)}), {refused} answered 429"
        )
        outcomes: dict[str, int] = {}
        for name, offset in self.cluster_offsets.items():
            if name not in self.processes.services:
                continue
            lines, _ = log_lines(self.processes.services[name].log, offset)
            for line in lines:
                if line.get("logger") == "paylinks.task" and line.get("task") == "after_webhook":
                    outcome = re.sub(r"\d+", "N", str(line.get("outcome", "")))
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
        self.figure(f"checks after webhooks run: {json.dumps(outcomes, sort_keys=True)}")
        self.figure(
            f"invoice pages opened meanwhile: {DESK_PAGES - len(page_failures)} of {DESK_PAGES} "
            "answered"
        )
        self.figure(f"the sandbox's 429s to PayLinks over the whole stage: {after['refused']}")
        for ok, message in [
            (self.server_errors == 0, f"PayLinks answered {self.server_errors} webhooks with 5xx"),
            (self.too_many == 0, f"PayLinks answered {self.too_many} webhooks with 429"),
            (
                self.flood_answers.get("200") == FLOOD,
                f"not every webhook was answered 200: {self.flood_answers}",
            ),
            (not page_failures, f"invoice pages failed during the flood: {page_failures}"),
            (
                refused == 0,
                f"the sandbox answered PayLinks {refused} times with 429 during the flood and "
                f"the minute after it ({allowed} requests)",
            ),
        ]:
            if not ok:
                self.fail(message)

    def health(self) -> None:
        answer = httpx.get(f"{self.app_url}/healthz", timeout=10)
        self.figure(f"/healthz: {answer.status_code} {answer.text}")
        if answer.status_code != 200:
            self.fail(f"/healthz answered {answer.status_code}")
        problems = disagreements(self.made, self.database_url, self.sandbox)
        if problems:
            self.fail(f"at the end PayLinks and the sandbox disagree: {problems}")
        else:
            self.figure(f"at the end: {len(self.made)} links, PayLinks and the sandbox agree")

    def run(self) -> None:
        started = time.monotonic()
        self.start_sandbox()
        self.prepare_app()
        self.start_app()
        self.first_payment()
        self.kill_a_cluster()
        self.flood()
        self.after_flood()
        self.health()
        self.figure(f"smoke stage checks took {time.monotonic() - started:.0f} s")
        if self.failures:
            raise SmokeFailure("\n  ".join(["", *self.failures]))


# Run by `manage.py shell -c` with the production settings: what an admin does in Django admin.
SETUP = """
import json, os
from django.contrib.auth import get_user_model
from demo.practices import connect_sandbox_installation
from clinics.models import Membership
from clinics.sync import sync_departments
from django.utils import timezone
from paylinks.models import Invoice

practice = connect_sandbox_installation(
    json.loads(os.environ["SMOKE_INSTALLATION"]), os.environ["SMOKE_SANDBOX_URL"]
)
synced = sync_departments(practice)
user = get_user_model().objects.create_user(
    os.environ["SMOKE_USERNAME"], password=os.environ["SMOKE_PASSWORD"], first_name="Sam"
)
Membership.objects.create(user=user, practice=practice, role=Membership.Role.RECEPTION)
# The invoices earlier weeks of links left PayLinks' snapshots of, as Provet has them now.
departments = {d.provet_id: d for d in practice.departments.all()}
history = json.loads(open(os.environ["SMOKE_HISTORY"]).read())
Invoice.objects.bulk_create(
    Invoice(
        practice=practice,
        department=departments.get(row.pop("department_provet_id")),
        fetched_at=timezone.now(),
        **row,
    )
    for row in history
)
print(json.dumps({
    "webhook_secret": practice.webhook_secret,
    "departments": synced.created + synced.updated,
    "invoices": practice.invoices.count(),
}))
"""


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="logs and the sandbox's file")
    args = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    smoke = Smoke(args.run_dir)
    failure = ""
    try:
        smoke.run()
    except SmokeFailure as error:
        failure = str(error)
    except (Stopped, KeyboardInterrupt) as error:
        failure = f"stopped by {error or 'SIGINT'}"
    except Exception as error:
        failure = f"{type(error).__name__}: {error}"
        traceback.print_exc()
    finally:
        stopped = smoke.processes.stop_all()
        for name, how in stopped.items():
            say(f"{name}: {how}")
    if failure:
        for log in sorted(args.run_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-25:]
            print(f"--- last lines of {log.name}", *tail, sep="\n", file=sys.stderr)
        print(f"SMOKE FAILED: {failure}", file=sys.stderr)
        return 1
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    say("--- figures")
    for line in smoke.figures:
        print(f"  {line}")
    say("--- smoke stage passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
