"""How fast the manager dashboard renders, and how lean its CSV export stays, as links pile up.

    .venv/bin/python bench/dashboard.py [--renders 7] [--seed 5]

On PostgreSQL, set DATABASE_URL first, e.g. postgres://postgres@127.0.0.1:5432/paylinks_bench.

It seeds one practice (four departments, eight staff) with 1 000 links and their events, then
tops it up to 100 000: a busy clinic group's year, the links spread evenly over the last 365
days. At each size it prints the dashboard's server time through Django's test client (median
of `--renders` renders after a warm-up: view, queries and template) and its number of queries,
for the default period (last 7 days), the last 30 days, and a custom range over the whole year,
which adds up every link in the database (the stress case). It also streams the whole year as
CSV at both sizes and prints the time and the peak Python memory (tracemalloc, which slows
Python down, so the time is measured in a separate run): flat memory means the two peaks are
alike.

Targets (issue 5): under 300 ms at 100 000 links on SQLite and on PostgreSQL, with no more
queries than at 1 000. It runs in a throwaway database (a temporary SQLite file, or PostgreSQL's
`test_<name>`), never the developer's.
"""

import argparse
import datetime as dt
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django
from django.conf import settings

# A throwaway database: setup_databases() makes it, teardown_databases() removes it.
_scratch = tempfile.TemporaryDirectory(prefix="paylinks-bench-")
if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    settings.DATABASES["default"]["TEST"] = {"NAME": str(Path(_scratch.name) / "bench.sqlite3")}
settings.DEBUG = False

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_databases,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

from clinics.models import Department, Membership, Practice  # noqa: E402
from paylinks.models import (  # noqa: E402
    DeliveryMethod,
    DeliveryStatus,
    Invoice,
    LinkEvent,
    PaymentLink,
    PaymentStatus,
)
from reports.figures import local_today  # noqa: E402

BATCH = 5_000
DAYS = 365


class Seeder:
    """Links as a busy clinic group makes them: most paid within hours, some expired or waiting."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.made = 0
        self.now = timezone.now()
        self.practice = Practice.objects.create(
            name="Bench Veterinary Group", domain="bench.example", provet_id=1
        )
        self.departments = [
            Department.objects.create(
                practice=self.practice, provet_id=n, name=name, allow_nhp_processing=True
            )
            for n, name in enumerate(["Helsinki", "Espoo", "Tampere", "Turku"], 1)
        ]
        users = get_user_model().objects
        self.staff = [users.create_user(f"staff{n}", first_name=f"Staff {n}") for n in range(8)]
        for person in self.staff:
            Membership.objects.create(user=person, practice=self.practice)
        self.manager = users.create_user("manager")
        Membership.objects.create(
            user=self.manager, practice=self.practice, role=Membership.Role.MANAGER
        )

    def add(self, count: int) -> None:
        # created_at is "now" on save; the bench writes the past itself.
        fields = [
            PaymentLink._meta.get_field("created_at"),
            LinkEvent._meta.get_field("created_at"),
        ]
        for f in fields:
            f.auto_now_add = False  # type: ignore[attr-defined]
        try:
            while count > 0:
                size = min(BATCH, count)
                self._batch(size)
                count -= size
        finally:
            for f in fields:
                f.auto_now_add = True  # type: ignore[attr-defined]

    def _batch(self, size: int) -> None:
        rnd = self.random
        invoices, links, events = [], [], []
        for _ in range(size):
            self.made += 1
            n = self.made
            amount = Decimal(rnd.randrange(1_000, 60_000)) / 100
            created = self.now - dt.timedelta(seconds=rnd.uniform(60, DAYS * 86_400))
            invoices.append(
                Invoice(
                    practice=self.practice,
                    provet_id=n,
                    number=f"BV-{n}",
                    status=3,
                    due_sum=amount,
                    total_with_vat=amount,
                    fetched_at=created,
                )
            )
            link = PaymentLink(
                code=uuid.uuid4(),
                practice=self.practice,
                department=rnd.choice(self.departments),
                client_name=f"Client {n}",
                amount=amount,
                currency="EUR",
                delivery_method=rnd.choice(list(DeliveryMethod)),
                duration_minutes=2 * 24 * 60,
                created_by=rnd.choice(self.staff) if rnd.random() > 0.02 else None,
                created_at=created,
                idempotency_key=f"bench-{n}",
                expires_at=created + dt.timedelta(days=2),
                state=PaymentLink.State.ACTIVE,
                payment_status=PaymentStatus.PENDING,
                delivery_status=DeliveryStatus.SENT,
                postransaction_id=n,
            )
            fate = rnd.random()
            if fate < 0.02:
                link.state, link.payment_status, link.postransaction_id = "failed", None, None
            elif fate < 0.64:
                delay = min(rnd.lognormvariate(7.5, 1.6), 47 * 3600)  # median ~30 min
                link.paid_at = created + dt.timedelta(seconds=delay)
                if link.paid_at < self.now:
                    link.state, link.payment_status = "closed", PaymentStatus.ACCEPTED
                else:
                    link.paid_at = None
            elif link.expires_at and link.expires_at < self.now:
                link.state, link.payment_status = "closed", PaymentStatus.EXPIRED
            if fate > 0.97:
                link.delivery_status = DeliveryStatus.FAILED
            links.append(link)
        # Both databases hand back the new primary keys (INSERT ... RETURNING).
        Invoice.objects.bulk_create(invoices)
        for link, invoice in zip(links, invoices, strict=True):
            link.invoice = invoice
        PaymentLink.objects.bulk_create(links)
        for link in links:
            events.append(
                LinkEvent(link=link, kind="created", source="user", created_at=link.created_at)
            )
            if link.payment_status in (PaymentStatus.ACCEPTED, PaymentStatus.EXPIRED):
                events.append(
                    LinkEvent(
                        link=link,
                        kind="payment",
                        source="poller",
                        old_value="Waiting for payment",
                        new_value=PaymentStatus(link.payment_status).label,
                        created_at=link.paid_at or link.created_at + dt.timedelta(days=2),
                    )
                )
        LinkEvent.objects.bulk_create(events)


def settle() -> None:
    """What PostgreSQL's autovacuum does to a table in use: statistics, visibility map."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("paylinks_paymentlink", "paylinks_invoice", "paylinks_linkevent"):
                cursor.execute(f"VACUUM ANALYZE {table}")


def dashboard_times(client: Client, query: dict, renders: int) -> tuple[float, int]:
    client.get("/dashboard/", query)  # warm-up: templates, connections, caches
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        response = client.get("/dashboard/", query)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        assert b"Links sent" in response.content, "the filters were refused"
    with CaptureQueriesContext(connection) as queries:
        client.get("/dashboard/", query)
    return statistics.median(times), len(queries.captured_queries)


def export(client: Client, query: dict) -> tuple[float, float, int]:
    """Milliseconds, peak MiB of Python memory while streaming, rows."""

    def download() -> int:
        response = client.get("/dashboard/export.csv", query)
        assert response.status_code == 200, response.status_code
        return sum(chunk.count(b"\r\n") for chunk in response.streaming_content) - 1

    started = time.perf_counter()
    rows = download()
    elapsed = (time.perf_counter() - started) * 1000
    tracemalloc.start()
    download()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--renders", type=int, default=7, help="timed renders per period")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--large", type=int, default=100_000, help="links at the second size")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    # Not setup_test_environment(): its template instrumentation would be timed too.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    database = connection.vendor
    try:
        started = time.perf_counter()
        seeder = Seeder(args.seed)
        client = Client()
        client.force_login(seeder.manager)
        today = local_today(seeder.practice)
        year = {
            "period": "custom",
            "start": (today - dt.timedelta(days=DAYS)).isoformat(),
            "end": today.isoformat(),
        }
        periods = [
            ("last 7 days", {"period": "7d"}),
            ("last 30 days", {"period": "30d"}),
            ("whole year *", year),
        ]
        results: dict[tuple[int, str], tuple[float, int]] = {}
        exports = []
        for size in (1_000, args.large):
            seeding = time.perf_counter()
            seeder.add(size - seeder.made)
            settle()
            seeded = time.perf_counter() - seeding
            print(f"{database}: {size:,} links seeded with their events in {seeded:.1f} s")
            for label, query in periods:
                results[size, label] = dashboard_times(client, query, args.renders)
            exports.append((size, "whole year", *export(client, year)))
            if size == args.large:
                exports.insert(-1, (size, "last 30 days", *export(client, periods[1][1])))

        print(f"\nDashboard on {database}, median of {args.renders} renders (ms / queries):")
        sizes = (1_000, args.large)
        print(f"{'period':>14} " + " ".join(f"{f'{size:,} links':>18}" for size in sizes))
        for label, _ in periods:
            cells = [results[size, label] for size in sizes]
            print(f"{label:>14} " + " ".join(f"{ms:>10.1f} ms {n:>4} q" for ms, n in cells))
        print("  * a custom range over the whole year: adds up every link in the database")
        print(f"\nCSV export on {database} (peak = Python memory while streaming):")
        print(f"{'links':>9} {'period':>14} {'rows':>9} {'ms':>9} {'peak MiB':>9}")
        for size, label, ms, peak, rows in exports:
            print(f"{size:>9,} {label:>14} {rows:>9,} {ms:>9.0f} {peak:>9.2f}")

        everyday = [results[args.large, label] for label, _ in periods[:2]]
        slowest = max(ms for ms, _ in everyday)
        more_queries = any(
            results[args.large, label][1] > results[1_000, label][1] for label, _ in periods
        )
        stress = results[args.large, periods[-1][0]][0]
        print(
            f"\nAt {args.large:,} links: last 7 and 30 days under 300 ms -> {slowest:.0f} ms "
            f"({'met' if slowest < 300 else 'MISSED'}); every link at once -> {stress:.0f} ms "
            f"({'under' if stress < 300 else 'over'} 300 ms); no more queries than at 1,000 -> "
            f"{'met' if not more_queries else 'MISSED'}; export peak "
            + ", ".join(f"{peak:.2f} MiB for {rows:,} rows" for *_, peak, rows in exports)
            + f". Total {time.perf_counter() - started:.0f} s."
        )
    finally:
        teardown_databases(old, verbosity=0)
        _scratch.cleanup()


if __name__ == "__main__":
    main()
