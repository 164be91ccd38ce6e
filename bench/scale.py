"""Whether the poll fan-out keeps up with many practices, on one machine's worker processes.

    .venv/bin/python bench/scale.py [--practices 200] [--links 300] [--minutes 2] [--seed 7]
    .venv/bin/python bench/scale.py --quick     # 20 practices of 50 links, 1 minute: a smoke run

`--practices` practices, each its own sandbox installation (in-process, with its real rate
limits) with `--links` open invoice payment links sent over the 48 hours a link stays payable,
are polled the way the schedule does it (paylinks/tasks.py): every TICK (10 s) one
`poll_practice` pass per practice, each run by whichever of W worker processes is free (a fork
pool, W = 1 and 2). The links are in their steady state, looked at on their schedule
(paylinks/cadence.py) since they were sent, so their own checks fall due evenly. Meanwhile
clients pay (`--pay-rate` a practice a simulated minute, random links at random moments: far
more than a real clinic's few an hour, so that the delays are measured on enough payments).

It runs 10, 50, 100, 200 practices (up to `--practices`), each with 1 and 2 workers, and prints
per run: the real seconds the passes of a simulated minute took (the worst minute and the mean)
and whether that fits in the minute; how much of it is PayLinks' own, since the sandbox serving
Provet's side runs in the same processes and its time (everything inside the transport) would
be Provet's in production; the CPU the workers and PostgreSQL used; the p95 from a payment to
PayLinks knowing it (one never seen counts as infinitely late); the requests per practice per
simulated minute against the practice's budget (`Practice.rate_budget_per_minute`, of which
background work may use 80%, clinics/budget.py); and Provet's 429s. Then how the time grows with
the practice count and where a minute's passes stop fitting in the minute, along a straight
line through the mean minutes, and what a practice costs in CPU.

In production every ProvetClient gets its own HTTPS transport from httpx (a connection pool on
the process's one TLS context, clinics/provet/client.py `tls_context`), and a pass makes one or
two. The bench's requests go to the sandbox, but it builds and drops such a transport for every
client, so that this cost counts as PayLinks' own (`--bare-transport` leaves it out). The TLS
handshakes and the network aren't simulated.

The clock is simulated (Django's `timezone.now` and the sandbox's clock follow it, in every
process: a pass gets its tick's moment and sets its worker's clock to it), so only the passes'
real time is measured. The payments are made by the main process between ticks, outside that
time. Every tick's passes finish before the next tick starts: when a minute takes longer than
60 s, the real schedule would instead skip passes (at most one per practice is queued) and the
delays would grow, so the p95 printed is what it would be if the work fitted. The queueing
itself (tasks.poll, the broker) isn't measured, nor is anything else the workers would do. The
sandbox's rate-limit windows are kept per process, so with 2 workers each sees part of a
practice's requests; PayLinks' own budget is rows in the shared database and holds across them.
The workers, PostgreSQL and whatever else runs on the machine share its CPUs: the real seconds
are this machine's at that moment, the CPU seconds steadier.

Before the first minute an untimed tick warms the workers up; after the last, two untimed ticks
let its last payments be seen. The defaults (200 practices of 300 links, 2 minutes, eight runs)
took 23 minutes on two cores that other work kept busy (load 3 to 5), 6 with `--bare-transport`,
most of it in the 200-practice runs; `--minutes` was lowered from 3 for that.

It runs in a throwaway PostgreSQL database (`paylinks_scale`, made from a template
`paylinks_scale_seed` afresh for every run, both dropped at the end) on the server at
$PAYLINKS_SCALE_POSTGRES (default postgres://postgres@127.0.0.1:5432), never the developer's.
"""

import argparse
import datetime as dt
import logging
import math
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import wraps
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PAYLINKS_SCALE_POSTGRES", "postgres://postgres@127.0.0.1:5432")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["PAYLINKS_SANDBOX"] = "1"
os.environ["DATABASE_URL"] = os.environ["PAYLINKS_SCALE_POSTGRES"].rstrip("/") + "/paylinks_scale"
os.environ.pop("REDIS_URL", None)  # nothing of the developer's: the cache is a table in ours

import django

django.setup()

import httpx  # noqa: E402
import psycopg  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from clinics.budget import BACKGROUND_SHARE, Priority, priority  # noqa: E402
from clinics.models import Practice  # noqa: E402
from clinics.provet import client as provet_client  # noqa: E402
from clinics.provet.auth import tokens  # noqa: E402
from clinics.provet.in_process import wsgi_transport  # noqa: E402
from clinics.sync import sync_departments  # noqa: E402
from demo.practices import connect_sandbox_installation  # noqa: E402
from paylinks import cadence, polling  # noqa: E402
from paylinks.models import DeliveryStatus, Invoice, PaymentLink, PaymentStatus  # noqa: E402
from sandbox import clock, control, links, ratelimit, webhooks  # noqa: E402
from sandbox import models as provet  # noqa: E402

SERVER = os.environ["PAYLINKS_SCALE_POSTGRES"].rstrip("/")
DATABASE = "paylinks_scale"
TEMPLATE = "paylinks_scale_seed"
LIFETIME = dt.timedelta(hours=48)
MINUTE = dt.timedelta(minutes=1)
TAIL_TICKS = 2  # after the last minute, untimed: its last payments are seen
SIZES = (10, 50, 100, 200)
WORKERS = (1, 2)
FIRST_PROVET_ID = 10_000  # clear of seed_sandbox()'s installations


class SimClock:
    """What `timezone.now()` answers everywhere (app and sandbox) while the bench runs."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


SIM = SimClock(timezone.now().replace(microsecond=0))
INSTANTS: list[dict] = []  # once_per_instant's memories, forgotten between runs


def once_per_instant(catch_up):
    """The sandbox brings deliveries, expiries and webhook retries up to date on every request.
    With the clock standing still through a pass, once per simulated instant gives the same
    answers (as in bench/poller.py)."""
    last: dict[int | None, dt.datetime] = {}
    INSTANTS.append(last)

    @wraps(catch_up)
    def wrapper(installation=None, *args, **kwargs):
        key = getattr(installation, "pk", None)
        if args or kwargs or last.get(key) != timezone.now():
            last[key] = timezone.now()
            return catch_up(installation, *args, **kwargs)
        return 0

    return wrapper


class SandboxHandler(WSGIHandler):
    """Provet's side of the wire: the sandbox's views without PayLinks' middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list = []
        self._template_response_middleware: list = []
        self._exception_middleware: list = []
        self._middleware_chain = convert_exception_to_response(
            self._get_response  # type: ignore[attr-defined]
        )


class TimingTransport(httpx.BaseTransport):
    """Counts every request (status checks, the invoice feed, tokens) and the time spent on
    Provet's side of it, i.e. in the in-process sandbox. One per process, used by one thread."""

    def __init__(self) -> None:
        self.inner = wsgi_transport()
        self.inner._wsgi = httpx.WSGITransport(app=SandboxHandler())
        self.build_https = True
        self.reset()

    def for_new_client(self) -> httpx.BaseTransport:
        """Every ProvetClient's transport. In production each client gets its own HTTPS
        transport (a connection pool, on the process's one TLS context); unless told not to,
        one is built and dropped here too, so that its cost counts as PayLinks' own."""
        self.clients += 1
        if self.build_https:
            began = time.perf_counter()
            httpx.HTTPTransport(verify=provet_client.tls_context()).close()
            self.setup_seconds += time.perf_counter() - began
        return self

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        began = time.perf_counter()
        response = self.inner.handle_request(request)
        self.seconds += time.perf_counter() - began
        self.requests += 1
        self.rate_limited += response.status_code == 429
        return response

    def reset(self) -> None:
        self.requests = self.rate_limited = self.clients = 0
        self.seconds = self.setup_seconds = 0.0


TRANSPORT = TimingTransport()


def simulated(build_https: bool) -> None:
    """Route this process's clocks and Provet requests into the bench (inherited by forks)."""
    logging.disable(logging.WARNING)  # the client logs every request; the figures are printed
    logging.getLogger("django").disabled = True
    timezone.now = SIM
    clock.offset = lambda: 0.0  # the sandbox clock is timezone.now(), i.e. the simulated one
    links.refresh_due = once_per_instant(links.refresh_due)
    webhooks.deliver_due = once_per_instant(webhooks.deliver_due)
    TRANSPORT.build_https = build_https
    provet_client.default_transport = TRANSPORT.for_new_client
    provet_client.ProvetClient.__init__.__kwdefaults__["sleep"] = SIM.sleep  # type: ignore[index]


# The throwaway databases ------------------------------------------------------------------


def admin(*statements: str) -> None:
    """Run statements on the server's maintenance database, with nobody in ours."""
    connections.close_all()
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def drop_databases() -> None:
    admin(
        f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
        f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)",
    )


def database_cpu() -> dict[int, float] | None:
    """CPU seconds used so far by each server process serving our database; None when they
    can't be read (a server on another machine)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cursor.fetchall()]
    used = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return used or None


def fresh_copy() -> None:
    """Every run starts from the same seeded state."""
    admin(
        f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
        f"CREATE DATABASE {DATABASE} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY",
    )


# The practices ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Payment:
    at: dt.datetime
    practice: int  # its index: runs with fewer practices leave the later ones out
    link_id: int
    external_id: str


@dataclass
class Seeded:
    practice_ids: list[int]
    payments: list[Payment]


def seed(practices: int, per_practice: int, minutes: int, pay_rate: float, rng) -> Seeded:
    start = SIM.now
    installations = provet.Installation.objects.bulk_create(
        provet.Installation(
            provet_id=FIRST_PROVET_ID + n,
            name=f"Scale clinic {n + 1}",
            country="FI",
            currency="EUR",
            timezone="Europe/Helsinki",
            client_id=f"scale-{n}",
            client_secret=f"scale-secret-{n}",
        )
        for n in range(practices)
    )
    users = provet.ProvetUser.objects.bulk_create(
        provet.ProvetUser(
            installation=installation,
            email=f"integration.paylinks@clinic{n}.example",
            first_name="Integration",
            last_name="PayLinks",
            is_integration=True,
            modified=start - LIFETIME,
        )
        for n, installation in enumerate(installations)
    )
    departments = provet.Department.objects.bulk_create(
        provet.Department(installation=i, name=f"{i.name} Small Animals", modified=start - LIFETIME)
        for i in installations
    )
    clients = provet.Client.objects.bulk_create(
        provet.Client(
            installation=i,
            firstname="Pat",
            lastname=f"Owner {n}",
            created=start - LIFETIME,
            modified=start - LIFETIME,
        )
        for n, i in enumerate(installations)
    )
    connected = []
    for installation, user, department in zip(installations, users, departments, strict=True):
        practice = connect_sandbox_installation(
            {
                "provet_id": installation.provet_id,
                "name": installation.name,
                "currency": installation.currency,
                "country": installation.country,
                "timezone": installation.timezone,
                "client_id": installation.client_id,
                "client_secret": installation.client_secret,
                "legacy_token": "",
                "integration_user_id": user.pk,
            },
            "http://localhost",
        )
        sync_departments(practice)  # as an admin does; also fetches the practice's token
        connected.append((practice, installation, department))
    payments: list[Payment] = []
    for n, (practice, installation, department) in enumerate(connected):
        made = seed_links(
            practice, installation, department, clients[n], users[n], per_practice, rng
        )
        payments += plan_payments(n, made, minutes, pay_rate, rng)
    return Seeded(
        [practice.pk for practice, _, _ in connected], sorted(payments, key=lambda p: p.at)
    )


def seed_links(
    practice, installation, department, client, creator, count, rng
) -> list[PaymentLink]:
    """Open invoice links as PayLinks would have made them, sent over the last 48 hours, with
    their invoices and postransactions in the sandbox (bulk, like bench/poller.py)."""
    start = SIM.now
    amount = Decimal("42.00")
    sent = [
        start - dt.timedelta(seconds=rng.uniform(0, LIFETIME.total_seconds())) for _ in range(count)
    ]
    remote_invoices = provet.Invoice.objects.bulk_create(
        provet.Invoice(
            installation=installation,
            invoice_number=100_000 + n,
            invoice_prefix="SC-",
            status=provet.InvoiceStatus.FINALIZED,
            invoice_date=created.date(),
            client=client,
            department=department,
            total=amount,
            total_vat=Decimal("0"),
            total_with_vat=amount,
            due_sum=amount,
            created=created,
            modified=created,
        )
        for n, created in enumerate(sent)
    )
    remote = provet.PosTransaction.objects.bulk_create(
        provet.PosTransaction(
            installation=installation,
            amount=amount,
            invoice=invoice,
            department=department,
            creator=creator,
            payment_type=1,
            transaction_type=1,
            created=invoice.created,
            modified=invoice.created,
            expiration_time=invoice.created + LIFETIME,
            delivery_method=provet.DeliveryMethod.DO_NOT_SEND,
        )
        for invoice in remote_invoices
    )
    local_department = practice.departments.get(provet_id=department.pk)
    local_invoices = Invoice.objects.bulk_create(
        Invoice(
            practice=practice,
            provet_id=invoice.pk,
            number=f"{invoice.invoice_prefix}{invoice.invoice_number}",
            status=invoice.status,
            department=local_department,
            total_with_vat=amount,
            due_sum=amount,
            fetched_at=invoice.created,
        )
        for invoice in remote_invoices
    )
    made = []
    for invoice, pt in zip(local_invoices, remote, strict=True):
        link = PaymentLink(
            practice=practice,
            invoice=invoice,
            department=local_department,
            amount=amount,
            currency=practice.currency,
            duration_minutes=int(LIFETIME.total_seconds() // 60),
            idempotency_key=f"scale-{pt.pk}",
            postransaction_id=pt.pk,
            external_id=str(pt.external_id),
            expires_at=pt.expiration_time,
            payment_status=PaymentStatus.PENDING,
            delivery_status=DeliveryStatus.NOT_SENT,
            state=PaymentLink.State.ACTIVE,
            created_at=pt.created,
        )
        # The steady state: looked at on its schedule since it was sent, as the poller would
        # have done; its last look (none yet while it is young) and its next.
        looked, due = None, cadence.next_check_at(link, link.created_at)
        while due is not None and due <= start:
            looked, due = due, cadence.next_check_at(link, due)
        link.checked_at, link.next_check_at = looked, due
        made.append(link)
    created_at = PaymentLink._meta.get_field("created_at")
    created_at.auto_now_add = False  # they were made in the past
    try:
        return PaymentLink.objects.bulk_create(made)
    finally:
        created_at.auto_now_add = True


def plan_payments(practice: int, made, minutes: int, pay_rate: float, rng) -> list[Payment]:
    """Payments at random moments (a Poisson process) on links still payable by then."""
    start = SIM.now
    end = start + minutes * MINUTE
    payable = [link for link in made if link.expires_at > end]
    moments = []
    at = start
    while pay_rate > 0:
        at += dt.timedelta(minutes=rng.expovariate(pay_rate))
        if at >= end:
            break
        moments.append(at)
    chosen = rng.sample(payable, min(len(moments), len(payable)))
    return [
        Payment(moment, practice, link.pk, link.external_id)
        for moment, link in zip(moments, chosen, strict=False)
    ]


# The runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassStat:
    practice_id: int
    minute: int
    seconds: float  # the whole pass, in its worker
    provet_seconds: float  # of which inside the transport: the sandbox's share
    cpu_seconds: float  # the worker's CPU time (the database server's is not in it)
    clients: int  # ProvetClients made
    setup_seconds: float  # building their HTTPS transports, as production does
    requests: int
    rate_limited: int
    paused: int


def start_worker() -> None:
    # The main process closed its connections before forking: nothing inherited is shared.
    connections.close_all()


def run_pass(job: tuple[int, dt.datetime, int]) -> PassStat:
    """One poll pass, as tasks.poll_practice runs it, at its tick's simulated moment."""
    practice_id, now, minute = job
    SIM.now = now
    TRANSPORT.reset()
    began, cpu = time.perf_counter(), time.process_time()
    with priority(Priority.BACKGROUND):
        practice = Practice.objects.get(pk=practice_id)
        report = polling.poll_practice(practice, now=now)
    return PassStat(
        practice_id,
        minute,
        time.perf_counter() - began,
        TRANSPORT.seconds,
        time.process_time() - cpu,
        TRANSPORT.clients,
        TRANSPORT.setup_seconds,
        TRANSPORT.requests,
        TRANSPORT.rate_limited,
        len(report.paused),
    )


@dataclass
class Run:
    practices: int
    workers: int
    minute_seconds: list[float] = field(default_factory=list)  # real time per simulated minute
    database_seconds: list[float] = field(default_factory=list)  # the server's CPU, per minute
    passes: list[PassStat] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    unseen: int = 0
    budget: int = 0
    load: float = 0.0  # the machine's, at the end: other work shares the CPUs

    @property
    def worst(self) -> float:
        return max(self.minute_seconds)

    @property
    def mean(self) -> float:
        return sum(self.minute_seconds) / len(self.minute_seconds)

    @property
    def provet_share(self) -> float:
        total = sum(p.seconds for p in self.passes)
        return sum(p.provet_seconds for p in self.passes) / total if total else 0.0

    def p95(self) -> float:
        ordered = sorted(self.delays) + [math.inf] * self.unseen
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    def per_practice_minute(self) -> Counter[tuple[int, int]]:
        spent: Counter[tuple[int, int]] = Counter()
        for p in self.passes:
            spent[p.practice_id, p.minute] += p.requests
        return spent

    def worst_cpu(self) -> float:
        """The workers' CPU seconds in the simulated minute that used the most."""
        used: dict[int, float] = {}
        for p in self.passes:
            used[p.minute] = used.get(p.minute, 0.0) + p.cpu_seconds
        return max(used.values(), default=0.0)

    def cpu_per_minute(self) -> tuple[float, float | None]:
        """Mean CPU seconds per simulated minute: the workers', the database server's."""
        minutes = len(self.minute_seconds)
        workers = sum(p.cpu_seconds for p in self.passes) / minutes
        database = sum(self.database_seconds) / minutes if self.database_seconds else None
        return workers, database

    def line(self) -> str:
        spent = self.per_practice_minute()
        mean = sum(spent.values()) / len(spent) if spent else 0.0
        background = math.floor(self.budget * BACKGROUND_SHARE)
        fits = "yes" if self.worst <= 60 else "NO"
        own = self.worst * (1 - self.provet_share)
        database = "-" if not self.database_seconds else f"{max(self.database_seconds):.1f}"
        return (
            f"{self.practices:>9} {self.workers:>7} {self.worst:>7.1f} {self.mean:>6.1f} "
            f"{fits:>4} {own:>8.1f} {self.provet_share:>7.0%} {self.worst_cpu():>6.1f} "
            f"{database:>6} {self.p95():>6.1f} {len(self.delays) + self.unseen:>8} "
            f"{self.unseen:>6} {mean:>9.1f} {max(spent.values(), default=0):>4} "
            f"{f'{self.budget}/{background}':>7} {sum(p.rate_limited for p in self.passes):>4} "
            f"{self.load:>4.1f}"
        )


HEADER = (
    f"{'practices':>9} {'workers':>7} {'worst s':>7} {'mean s':>6} {'fits':>4} {'PayLinks':>8} "
    f"{'sandbox':>7} {'CPU s':>6} {'DB CPU':>6} {'p95 s':>6} {'payments':>8} {'unseen':>6} "
    f"{'req/p/min':>9} {'max':>4} {'budget':>7} {'429s':>4} {'load':>4}"
)


LEGEND = """
worst s / mean s: real seconds the passes of a simulated minute took, the worst minute and the
mean; fits: the worst within 60 s. PayLinks: of the worst, the part outside the in-process
sandbox; sandbox: the share of the passes' time spent inside the transport (Provet's side).
CPU s: the workers' CPU seconds in their busiest minute (both together); DB CPU: PostgreSQL's
in the busiest minute, for PayLinks' and the sandbox's queries alike (a local server only).
p95 s: from a payment to PayLinks knowing it, unseen ones infinitely late. req/p/min: requests
per practice per simulated minute, mean and max; budget: rate_budget_per_minute / its
background share (clinics/budget.py). load: the machine's load average at the run's end
(other processes share the CPUs)."""


def simulate(size: int, workers: int, seeded: Seeded, start: dt.datetime, minutes: int) -> Run:
    fresh_copy()
    active = seeded.practice_ids[:size]
    Practice.objects.exclude(pk__in=active).update(is_active=False)
    budget = Practice.objects.get(pk=active[0]).rate_budget_per_minute
    ratelimit.reset()
    for memory in INSTANTS:
        memory.clear()
    pending = [p for p in seeded.payments if p.practice < size]
    paid_at: dict[int, dt.datetime] = {}
    run = Run(size, workers, budget=budget)
    connections.close_all()  # before the fork: the workers open their own

    def tick(pool, now: dt.datetime, minute: int) -> tuple[float, list[PassStat]]:
        """The payments made since the last tick, then a pass per practice: real seconds."""
        while pending and pending[0].at <= now:
            payment = pending.pop(0)
            SIM.now = payment.at
            control.settle_link(payment.external_id, "pay")
            paid_at[payment.link_id] = payment.at
        SIM.now = now
        began = time.perf_counter()
        stats = list(pool.imap_unordered(run_pass, [(pid, now, minute) for pid in active]))
        return time.perf_counter() - began, stats

    with get_context("fork").Pool(workers, initializer=start_worker) as pool:
        # The schedule was running before the first minute: an untimed tick warms the workers'
        # connections and caches.
        tick(pool, start - polling.TICK, -1)
        for minute in range(minutes):
            spent = 0.0
            database_before = database_cpu()
            for number in range(polling.PASSES_PER_MINUTE):
                seconds, stats = tick(pool, start + minute * MINUTE + number * polling.TICK, minute)
                spent += seconds
                run.passes += stats
            run.minute_seconds.append(spent)
            database_after = database_cpu()
            if database_before is not None and database_after is not None:
                run.database_seconds.append(
                    sum(
                        used - database_before.get(pid, 0.0) for pid, used in database_after.items()
                    )
                )
        for number in range(TAIL_TICKS):  # untimed: the last payments are seen
            tick(pool, start + minutes * MINUTE + number * polling.TICK, minutes)
    run.load = os.getloadavg()[0]
    seen: dict[int, dt.datetime] = dict(
        PaymentLink.objects.filter(pk__in=paid_at, payment_status=PaymentStatus.ACCEPTED)
        .exclude(paid_at=None)
        .values_list("pk", "paid_at")  # type: ignore[arg-type]
    )
    run.delays = [(seen[pk] - paid).total_seconds() for pk, paid in paid_at.items() if pk in seen]
    run.unseen = len(paid_at) - len(run.delays)
    return run


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares: seconds = fixed + slope × practices (through zero for a single point)."""
    if len(points) == 1:
        return 0.0, points[0][1] / points[0][0]
    mean_n = sum(n for n, _ in points) / len(points)
    mean_t = sum(t for _, t in points) / len(points)
    slope = sum((n - mean_n) * (t - mean_t) for n, t in points) / sum(
        (n - mean_n) ** 2 for n, _ in points
    )
    return mean_t - slope * mean_n, slope


def growth(runs: list[Run], build_https: bool) -> str:
    """How a minute's time grows with the practices, and what a practice costs in CPU."""
    lines = []
    for workers in WORKERS:
        points = [(r.practices, r.mean) for r in runs if r.workers == workers]
        if not points:
            continue
        fixed, slope = fit(points)
        fits = (60 - fixed) / slope if slope > 0 else math.inf
        largest = max((r for r in runs if r.workers == workers), key=lambda r: r.practices)
        lines.append(
            f"{workers} worker{'s' if workers > 1 else ''}: a mean minute grows by about "
            f"{slope * 1000:.0f} ms of real time per practice ({largest.mean:.1f} s, worst "
            f"{largest.worst:.1f} s, for {largest.practices}); along that line a minute's passes "
            f"stop fitting in the minute at about {fits:.0f} practices."
        )
    most = max(r.practices for r in runs)
    largest_runs = [r for r in runs if r.practices == most]
    workers_cpu = sum(r.cpu_per_minute()[0] for r in largest_runs) / len(largest_runs) / most
    own = workers_cpu * (1 - sum(r.provet_share for r in largest_runs) / len(largest_runs))
    used = [r.cpu_per_minute()[1] for r in largest_runs]
    database = None if None in used else sum(used) / len(used) / most  # type: ignore[arg-type]
    cores = os.cpu_count() or 1
    total = workers_cpu + (database or 0.0)
    lines.append(
        f"CPU per practice per simulated minute at {most} practices: {workers_cpu * 1000:.0f} ms "
        f"in the workers ({own * 1000:.0f} ms of it PayLinks' own, the rest the sandbox's)"
        + ("" if database is None else f" and {database * 1000:.0f} ms in PostgreSQL (for both)")
        + f"; with nothing else running, this machine's {cores} CPUs could keep up with about "
        f"{60 * cores / total:.0f} practices, the in-process sandbox included."
    )
    passes = [p for r in largest_runs for p in r.passes]
    clients = sum(p.clients for p in passes)
    if build_https and clients:
        setup = sum(p.setup_seconds for p in passes)
        own_time = sum(p.seconds - p.provet_seconds for p in passes)
        lines.append(
            f"A pass makes {clients / len(passes):.2f} ProvetClients; building each one's HTTPS "
            f"transport, as httpx does in production, took {setup / clients * 1000:.1f} ms: "
            f"{setup / own_time:.0%} of PayLinks' own time in the passes."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--practices", type=int, default=200, help="the largest run")
    parser.add_argument("--links", type=int, default=300, help="open links per practice")
    parser.add_argument("--minutes", type=int, default=2, help="simulated minutes of payments")
    parser.add_argument(
        "--pay-rate", type=float, default=1.0, help="payments per practice per simulated minute"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="20 practices of 50 links, 1 minute: a smoke run"
    )
    parser.add_argument(
        "--bare-transport",
        action="store_true",
        help="don't build (and drop) the HTTPS transport each ProvetClient has in production",
    )
    args = parser.parse_args()
    if args.quick:
        args.practices, args.links, args.minutes = 20, 50, 1
    sizes = sorted({n for n in SIZES if n < args.practices} | {args.practices})
    began = time.monotonic()
    simulated(build_https=not args.bare_transport)
    drop_databases()
    admin(f"CREATE DATABASE {DATABASE}")
    try:
        call_command("migrate", verbosity=0)
        tokens.clear()
        seeded = seed(
            args.practices, args.links, args.minutes, args.pay_rate, random.Random(args.seed)
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # the planner's statistics, as a live database has them
        admin(f"CREATE DATABASE {TEMPLATE} TEMPLATE {DATABASE} STRATEGY FILE_COPY")
        print(
            f"{args.practices} practices of {args.links} open invoice links, "
            f"{len(seeded.payments)} payments over {args.minutes} simulated minutes "
            f"(+{TAIL_TICKS} ticks to see the last); seeded in {time.monotonic() - began:.0f} s",
            file=sys.stderr,
        )
        start = SIM.now
        runs = []
        for size in sizes:
            for workers in WORKERS:
                run = simulate(size, workers, seeded, start, args.minutes)
                runs.append(run)
                print(
                    f"  ran {size} practices with {workers} worker(s): "
                    f"{' '.join(f'{s:.1f}' for s in run.minute_seconds)} s per minute",
                    file=sys.stderr,
                )
    finally:
        drop_databases()

    print(
        f"\n{args.links} open links a practice, paid at {args.pay_rate:g} a practice a minute; "
        f"{args.minutes} timed simulated minute(s) a run, a pass every "
        f"{polling.TICK.seconds} s a practice; {os.cpu_count()} CPUs"
        + (", HTTPS transports not built" if args.bare_transport else "")
    )
    print(HEADER)
    for run in runs:
        print(run.line())
    print(LEGEND)
    print(growth(runs, build_https=not args.bare_transport))
    print(f"\nran in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
