"""How soon PayLinks learns that a client paid, and what that costs in Provet requests.

    .venv/bin/python bench/poller.py [--links 2000] [--new 300] [--seed 7]

One simulated hour against the sandbox (in-process, with its real rate limits), run three
times on the same scenario: a naive poller (every open link every minute, round robin, stopping
for Retry-After when Provet says 429), the adaptive poller (paylinks/polling.py: a pass every
10 s that reads Provet's invoice changes, then checks due links within the practice's budget),
and the adaptive poller with Provet's webhooks (each arriving 2 s after its payment, an
assumption; the check after a webhook runs at once, as a free worker would). It prints, for
each, the requests made, the 429s received and the p50/p95 delay between a payment and
PayLinks knowing it, then the ratios.

The scenario: `--links` links are open when the hour starts, sent over the 48 hours a link
stays payable, and `--new` more are sent during the hour. Payers pay at realistic times: 55%
pay, four in five of them within minutes of the message (log-normal, median 3 minutes), the
rest late (any time in the next two days); the others never pay. Payments made during the hour
are measured, with ten more minutes for the last of them to be seen; one still unseen then
counts as infinitely late.

The clock is simulated (Django's `timezone.now` and the sandbox's clock follow it), so the hour
takes a couple of minutes. It runs in a throwaway database, never the developer's.
"""

import argparse
import datetime as dt
import logging
import math
import os
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from functools import wraps
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["PAYLINKS_SANDBOX"] = "1"
os.environ.pop("DATABASE_URL", None)  # each run gets its own in-memory SQLite test database

import django

django.setup()

import httpx  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client as DjangoClient  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.conf import Conf  # noqa: E402

from clinics.models import Practice  # noqa: E402
from clinics.provet import ProvetClient, ProvetError, ProvetRateLimited  # noqa: E402
from clinics.provet import client as provet_client  # noqa: E402
from clinics.provet.auth import tokens  # noqa: E402
from clinics.provet.in_process import wsgi_transport  # noqa: E402
from clinics.sync import sync_departments  # noqa: E402
from demo.practices import connect_sandbox_installation  # noqa: E402
from paylinks import cadence, polling  # noqa: E402
from paylinks.models import Invoice, LinkEvent, PaymentLink, PaymentStatus  # noqa: E402
from sandbox import clock, control, links, ratelimit, webhooks  # noqa: E402
from sandbox import models as provet  # noqa: E402
from sandbox.seed import seed_sandbox  # noqa: E402

HOUR = dt.timedelta(hours=1)
TAIL = dt.timedelta(minutes=10)
LIFETIME = dt.timedelta(hours=48)
WEBHOOK_LATENCY = dt.timedelta(seconds=2)
NAIVE_ROUND = dt.timedelta(minutes=1)


class SimClock:
    """What `timezone.now()` answers everywhere (app and sandbox) while the bench runs."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        # A worker waiting for Retry-After waits in simulated time.
        self.now += dt.timedelta(seconds=seconds)


def once_per_instant(catch_up):
    """The sandbox brings deliveries, expiries and webhook retries up to date on every request.
    With the clock standing still through a poll pass, once per simulated instant gives the
    same answers and keeps the bench to minutes."""
    last: dict[int | None, dt.datetime] = {}

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
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)


class CountingTransport(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = wsgi_transport()
        self.inner._wsgi = httpx.WSGITransport(app=SandboxHandler())
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        with self.lock:  # every request counts: status checks, the invoice feed, tokens
            self.statuses[response.status_code] += 1
        return response


@dataclass(frozen=True)
class Plan:
    """One link of the scenario: when it was sent and when (if ever) its client pays."""

    sent: dt.timedelta  # from the start of the hour; negative for links already open
    pays: dt.timedelta | None


def scenario(links: int, new: int, seed: int) -> list[Plan]:
    rng = random.Random(seed)

    def payment_delay() -> dt.timedelta | None:
        if rng.random() >= 0.55:
            return None
        if rng.random() < 0.8:
            minutes = min(rng.lognormvariate(math.log(3), 0.9), 120)
        else:
            minutes = rng.uniform(60, LIFETIME.total_seconds() / 60)
        return dt.timedelta(minutes=minutes)

    plans: list[Plan] = []
    while len(plans) < links:  # open at the start: sent earlier, not paid yet
        sent = -dt.timedelta(seconds=rng.uniform(0, LIFETIME.total_seconds()))
        delay = payment_delay()
        if delay is None or sent + delay > dt.timedelta(0):
            plans.append(Plan(sent, None if delay is None else sent + delay))
    for _ in range(new):
        sent = dt.timedelta(seconds=rng.uniform(0, HOUR.total_seconds()))
        delay = payment_delay()
        plans.append(Plan(sent, None if delay is None else sent + delay))
    return plans


@dataclass
class Result:
    name: str
    requests: int
    rate_limited: int
    delays: list[float]
    unseen: int

    def percentile(self, share: float) -> float:
        """Over every payment of the hour; one never seen counts as infinitely late."""
        ordered = sorted(self.delays) + [math.inf] * self.unseen
        return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]

    def line(self) -> str:
        return (
            f"{self.name:<28} {self.requests:>9} {self.rate_limited:>6} "
            f"{self.percentile(0.5):>8.1f} {self.percentile(0.95):>8.1f} {self.unseen:>7}"
        )


def seed_links(practice: Practice, plans: list[Plan], start: dt.datetime) -> list[PaymentLink]:
    """The links as PayLinks would have made them, and their postransactions in the sandbox."""
    installation = provet.Installation.objects.get(provet_id=practice.provet_id)
    template = installation.invoices.filter(status=3, credit_note=False).first()
    department = practice.departments.get(provet_id=template.department_id)
    creator = installation.integration_user
    amount = Decimal("42.00")
    remote_invoices = provet.Invoice.objects.bulk_create(
        [
            provet.Invoice(
                installation=installation,
                invoice_number=900_000 + n,
                invoice_prefix=template.invoice_prefix,
                status=3,
                invoice_date=template.invoice_date,
                client=template.client,
                department=template.department,
                total=amount,
                total_vat=Decimal("0"),
                total_with_vat=amount,
                due_sum=amount,
                created=start + plan.sent,
                modified=min(start, start + plan.sent),  # no invoice changes in the future
            )
            for n, plan in enumerate(plans)
        ]
    )
    remote = provet.PosTransaction.objects.bulk_create(
        [
            provet.PosTransaction(
                installation=installation,
                amount=amount,
                invoice=invoice,
                department=template.department,
                creator=creator,
                payment_type=1,
                transaction_type=1,
                created=start + plan.sent,
                modified=min(start, start + plan.sent),
                expiration_time=start + plan.sent + LIFETIME,
                delivery_method=provet.DeliveryMethod.DO_NOT_SEND,
            )
            for invoice, plan in zip(remote_invoices, plans, strict=True)
        ]
    )
    local_invoices = Invoice.objects.bulk_create(
        [
            Invoice(
                practice=practice,
                provet_id=invoice.pk,
                number=f"{invoice.invoice_prefix}{invoice.invoice_number}",
                status=3,
                department=department,
                total_with_vat=amount,
                due_sum=amount,
                fetched_at=start,
            )
            for invoice in remote_invoices
        ]
    )
    links = PaymentLink.objects.bulk_create(
        [
            PaymentLink(
                practice=practice,
                invoice=invoice,
                department=department,
                amount=amount,
                currency=practice.currency,
                duration_minutes=int(LIFETIME.total_seconds() // 60),
                idempotency_key=f"bench-{pt.pk}",
                postransaction_id=pt.pk,
                external_id=str(pt.external_id),
                expires_at=pt.expiration_time,
                payment_status=PaymentStatus.PENDING,
                state=PaymentLink.State.ACTIVE,
            )
            for invoice, pt in zip(local_invoices, remote, strict=True)
        ]
    )
    for link, plan in zip(links, plans, strict=True):
        link.created_at = start + plan.sent
        # As `polling.schedule` does when a link is made; a link sent in the past has been
        # looked at on its schedule until now.
        link.checked_at = start if plan.sent < dt.timedelta(0) else None
        link.next_check_at = cadence.next_check_at(link, max(start, link.created_at))
    PaymentLink.objects.bulk_update(links, ["created_at", "checked_at", "next_check_at"])
    return links


class NaivePoller:
    """Every open link every minute, round robin; stops the round when Provet says 429."""

    def __init__(self, practice: Practice, sim: SimClock) -> None:
        self.practice = practice
        self.sim = sim
        self.cursor = 0
        self.resume_at: dt.datetime | None = None

    def round(self, now: dt.datetime) -> None:
        if self.resume_at and now < self.resume_at:
            return
        open_links = list(
            PaymentLink.objects.filter(
                practice=self.practice, state=PaymentLink.State.ACTIVE, created_at__lte=now
            ).order_by("pk")
        )
        if not open_links:
            return
        start = self.cursor % len(open_links)
        # Outside PayLinks' shared budget (clinics/budget.py): only Provet's 429s hold it back.
        with ProvetClient(self.practice.connection()) as client:
            for offset in range(len(open_links)):
                link = open_links[(start + offset) % len(open_links)]
                try:
                    posted = client.get_postransaction(link.postransaction_id)
                except ProvetRateLimited as error:
                    self.cursor = start + offset
                    self.resume_at = self.sim.now + dt.timedelta(seconds=error.retry_after)
                    return
                except ProvetError:
                    continue
                link.record_status(posted, source=LinkEvent.Source.POLLER, now=self.sim.now)
        self.cursor = 0


def run_alone(job: tuple[str, list[Plan], bool, bool]) -> tuple[Result, float]:
    """One run in its own process and database (the runs share two cores)."""
    name, plans, adaptive, hooked = job
    began = time.monotonic()
    logging.disable(logging.WARNING)  # the client logs every request; the figures are printed
    logging.getLogger("django").disabled = True
    Conf.SYNC = True  # the checks after webhooks run at once, as a free worker would
    links.refresh_due = once_per_instant(links.refresh_due)
    webhooks.deliver_due = once_per_instant(webhooks.deliver_due)
    clock.offset = lambda: 0.0  # the sandbox clock is timezone.now(), i.e. the simulated one
    # Each run its own throwaway database (the suite's test database is a shared file).
    connection.settings_dict["TEST"]["NAME"] = ":memory:"
    old = setup_databases(verbosity=0, interactive=False)
    try:
        result = run(name, plans, adaptive=adaptive, webhooks=hooked)
    finally:
        teardown_databases(old, verbosity=0)
    return result, time.monotonic() - began


def run(name: str, plans: list[Plan], *, adaptive: bool, webhooks: bool) -> Result:
    tokens.clear()
    ratelimit.reset()
    start = timezone.localtime().replace(microsecond=0)
    sim = SimClock(start)
    transport = CountingTransport()
    real_now = timezone.now
    provet_client.default_transport = lambda: transport
    provet_client.ProvetClient.__init__.__kwdefaults__["sleep"] = sim.sleep
    timezone.now = sim
    try:
        with transaction.atomic():
            practice = connect_practice()
            links = seed_links(practice, plans, start)
            transport.statuses.clear()
            result = simulate(name, practice, plans, links, sim, adaptive, webhooks, transport)
            transaction.set_rollback(True)
    finally:
        timezone.now = real_now
        provet_client.ProvetClient.__init__.__kwdefaults__["sleep"] = time.sleep
    return result


def connect_practice() -> Practice:
    practice = connect_sandbox_installation(seed_sandbox()[0], "http://localhost")
    sync_departments(practice)
    return practice


def simulate(name, practice, plans, links, sim, adaptive, webhooks, transport) -> Result:
    start = sim.now
    events: list[tuple[dt.datetime, int, str, PaymentLink | None]] = []
    for plan, link in zip(plans, links, strict=True):
        if plan.pays is not None and dt.timedelta(0) <= plan.pays < HOUR:
            events.append((start + plan.pays, 1, "pay", link))
            if webhooks:
                events.append((start + plan.pays + WEBHOOK_LATENCY, 2, "webhook", link))
    tick = polling.TICK if adaptive else NAIVE_ROUND
    moment = start
    while moment < start + HOUR + TAIL:
        events.append((moment, 0, "poll", None))
        moment += tick
    events.sort(key=lambda event: (event[0], event[1]))

    naive = NaivePoller(practice, sim)
    web = DjangoClient()
    hook = f"/webhooks/provet/{practice.webhook_secret}/"
    paid_at: dict[int, dt.datetime] = {}
    for when, _, kind, link in events:
        sim.now = max(sim.now, when)
        if kind == "pay":
            control.settle_link(link.external_id, "pay")
            paid_at[link.pk] = sim.now
        elif kind == "webhook":
            web.post(hook, {"invoice_id": link.invoice.provet_id}, HTTP_HOST="localhost")
        elif adaptive:
            polling.poll_due_links(now=sim.now, practice=practice)
        else:
            naive.round(sim.now)

    seen = dict(
        PaymentLink.objects.filter(pk__in=paid_at, payment_status=PaymentStatus.ACCEPTED)
        .exclude(paid_at=None)
        .values_list("pk", "paid_at")
    )
    delays = [(seen[pk] - paid).total_seconds() for pk, paid in paid_at.items() if pk in seen]
    return Result(
        name,
        requests=sum(transport.statuses.values()),
        rate_limited=transport.statuses[429],
        delays=delays,
        unseen=len(paid_at) - len(delays),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=2000, help="links open at the start")
    parser.add_argument("--new", type=int, default=300, help="links sent during the hour")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    plans = scenario(args.links, args.new, args.seed)
    paying = sum(1 for p in plans if p.pays is not None and dt.timedelta(0) <= p.pays < HOUR)
    print(
        f"{len(plans)} links ({args.links} open at the start, {args.new} sent during the hour), "
        f"{paying} payments during the simulated hour"
    )
    jobs = [
        ("naive", plans, False, False),
        ("adaptive", plans, True, False),
        ("adaptive + webhooks", plans, True, True),
    ]
    results = {}
    with get_context("fork").Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
        for result, seconds in pool.imap(run_alone, jobs):
            results[result.name] = result
            print(f"  ran {result.name} in {seconds:.0f} s", file=sys.stderr)

    print(f"\n{'':<28} {'requests':>9} {'429s':>6} {'p50 s':>8} {'p95 s':>8} {'unseen':>7}")
    for result in results.values():
        print(result.line())
    naive, adaptive = results["naive"], results["adaptive"]
    hooked = results["adaptive + webhooks"]
    ratio = adaptive.percentile(0.95) / naive.percentile(0.95)
    print(
        f"\nadaptive / naive: requests {adaptive.requests / naive.requests:.2f}, "
        f"p50 delay {adaptive.percentile(0.5) / naive.percentile(0.5):.2f}, "
        f"p95 delay {ratio:.2f}"
    )
    checks = [
        (
            "adaptive: at most 0.15 of naive's requests, p95 delay at most 10 s",
            adaptive.requests <= 0.15 * naive.requests and adaptive.percentile(0.95) <= 10,
        ),
        ("adaptive p95 delay at most half of naive's", ratio <= 0.5),
        ("adaptive gets no 429s", adaptive.rate_limited == 0 and hooked.rate_limited == 0),
        ("with webhooks, p95 delay under 10 s", hooked.percentile(0.95) < 10),
    ]
    for label, ok in checks:
        print(f"  {'met ' if ok else 'MISSED'} {label}")


if __name__ == "__main__":
    main()
