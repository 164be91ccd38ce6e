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
queries than at 1 000. Issue 12 sets the same target for the whole year, the stress case: it took
1.2–1.9 s, because the database sorted the paid links once per table for the percentiles of time
to pay. Since then one query hands over every cell's times to pay and Python sorts them once
(reports/figures.py, `TimesToPay`), and the days are a table joined to the links (`_days`).

"Before" is the code before issue 12 (`before_build`, kept here only for this), timed in the same
run beside today's, so that both meet the same machine and the same load; at each size and period
the bench also checks that both give the very same figures. At the larger size it checks the
whole year's figures against plain Python over every counted link (`check_figures`).

It runs in a throwaway database (a temporary SQLite file, or PostgreSQL's `test_<name>`), never
the developer's.
"""

import argparse
import contextlib
import datetime as dt
import logging
import math
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

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
from django.db.models import (  # noqa: E402
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    Sum,
    Window,
)
from django.db.models.functions import RowNumber  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_databases,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

from clinics.models import Department, Membership, Practice, midnight  # noqa: E402
from paylinks.link_filters import NOBODY  # noqa: E402
from paylinks.models import (  # noqa: E402
    LINK_FIGURES,
    DeliveryMethod,
    DeliveryStatus,
    Invoice,
    LinkEvent,
    PaymentLink,
    PaymentStatus,
)
from reports import figures  # noqa: E402
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


# reports/figures.py before issue 12: the database ranked the paid links by time to pay once per
# table (four window queries), and worked out each link's day with a tree of comparisons.


class ElapsedSeconds(Func):
    arity = 2
    output_field = FloatField()

    def _parts(self, compiler, connection):
        start, end = self.get_source_expressions()
        start_sql, start_params = compiler.compile(start)
        end_sql, end_params = compiler.compile(end)
        return start_sql, end_sql, (*end_params, *start_params)

    def as_sql(self, compiler, connection, **extra_context):
        start, end, params = self._parts(compiler, connection)
        return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS double precision)", params

    def as_sqlite(self, compiler, connection, **extra_context):
        start, end, params = self._parts(compiler, connection)
        return f"((julianday({end}) - julianday({start})) * 86400.0)", params


def before_time_to_pay(links, key: str | None) -> dict:
    seconds = ElapsedSeconds("created_at", "paid_at")
    partition = [F(key)] if key else None
    ranked = (
        links.filter(LINK_FIGURES["paid"], paid_at__isnull=False)
        .annotate(
            seconds=seconds,
            rank=Window(RowNumber(), partition_by=partition, order_by=seconds.asc()),
            size=Window(Count("pk"), partition_by=partition),
        )
        .annotate(rank100=F("rank") * 100)
    )
    near = Q()
    for q in figures.PERCENTILES:
        position = F("size") * q - q
        near |= Q(rank100__gt=position, rank100__lt=position + 200)
    columns = [key] if key else []
    rows = ranked.filter(near).values_list(*columns, "rank", "size", "seconds").order_by()
    found: dict = defaultdict(dict)
    sizes: dict = {}
    for row in rows:
        group = row[0] if key else None
        rank, size, value = row[-3:]
        found[group][rank - 1] = value
        sizes[group] = size

    def percentile(group, q: int) -> float:
        position = q * (sizes[group] - 1) / 100
        low, high = math.floor(position), math.ceil(position)
        values = found[group]
        return values[low] + (values[high] - values[low]) * (position - low)

    return {group: tuple(percentile(group, q) for q in figures.PERCENTILES) for group in sizes}


class DayIndex(Func):
    output_field = IntegerField()

    def __init__(self, expression, boundaries: list[dt.datetime]) -> None:
        super().__init__(expression)
        self.boundaries = tuple(boundaries)

    def as_sql(self, compiler, connection, **extra_context):
        column, column_params = compiler.compile(self.get_source_expressions()[0])
        params = []

        def pick(low, high):
            if high - low == 1:
                return str(low)
            middle = (low + high) // 2
            params.extend(column_params)
            params.append(connection.ops.adapt_datetimefield_value(self.boundaries[middle]))
            return f"CASE WHEN {column} < %s THEN {pick(low, middle)} ELSE {pick(middle, high)} END"

        return pick(0, len(self.boundaries) - 1), params


def before_days(links, practice: Practice, period, within: dict) -> list:
    today = local_today(practice)
    days = [day for day in period.days if day <= today] or [period.first]
    boundaries = [midnight(day, period.zone) for day in days]
    boundaries.append(midnight(days[-1] + dt.timedelta(days=1), period.zone))
    rows = {
        row["day"]: row
        for row in links.annotate(day=DayIndex("created_at", boundaries))
        .values("day")
        .annotate(
            sent=Count("pk"),
            paid=Count("pk", filter=LINK_FIGURES["paid"]),
            paid_amount=Sum("amount", filter=LINK_FIGURES["paid"], output_field=figures._money()),
        )
        .order_by()
    }
    result = []
    for index, day in enumerate(days):
        row = rows.get(index, {})
        one_day = figures.Period("custom", day, day, period.zone)
        result.append(
            figures.Day(
                day=day,
                sent=row.get("sent", 0),
                paid=row.get("paid", 0),
                paid_amount=row.get("paid_amount") or Decimal("0.00"),
                sent_url=figures.link_list_url(practice, one_day, **within, status="sent"),
                paid_url=figures.link_list_url(practice, one_day, **within, status="paid"),
            )
        )
    return result


def before_build(practice: Practice, period, department=None):
    """reports.figures.build() before issue 12."""
    links = figures.counted_links(practice, period, department)
    within = {"department": department.provet_id} if department else {}

    def urls(**filters) -> dict[str, str]:
        return {
            name: figures.link_list_url(practice, period, **(within | filters), status=name)
            for name in LINK_FIGURES
        }

    def tally(cells: list[dict]) -> figures.Figures:
        result = figures.Figures()
        for cell in cells:
            for name in figures.FIGURE_NAMES:
                setattr(result, name, getattr(result, name) + (cell[name] or 0))
        return result

    aggregates = figures._figure_aggregates()
    del aggregates["seconds_to_pay"]
    cells = list(links.values(*figures.CELL).annotate(**aggregates).order_by())
    times = {key: before_time_to_pay(links, key) for key in (None, *figures.CELL)}
    totals = tally(cells)
    totals.median_seconds, totals.p90_seconds = times[None].get(None, (None, None))
    totals.links = urls()

    def rows(key: str, label, filters, order) -> list:
        members: dict = defaultdict(list)
        for cell in cells:
            members[cell[key]].append(cell)
        result = []
        for value in sorted(members, key=lambda value: order(value, label(value))):
            line = tally(members[value])
            line.median_seconds, line.p90_seconds = times[key].get(value, (None, None))
            line.links = urls(**filters(value))
            result.append(figures.Row(label(value), line))
        return result

    departments = Department.objects.in_bulk({cell["department_id"] for cell in cells})
    by_department = rows(
        "department_id",
        label=lambda pk: departments[pk].name,
        filters=lambda pk: {"department": departments[pk].provet_id},
        order=lambda pk, name: name.casefold(),
    )
    people = get_user_model().objects.in_bulk({cell["created_by_id"] for cell in cells} - {None})
    by_staff = rows(
        "created_by_id",
        label=lambda pk: figures.person_name(people.get(pk)),
        filters=lambda pk: {"created_by": people[pk].get_username() if pk in people else NOBODY},
        order=lambda pk, name: (pk not in people, name.casefold()),
    )
    channels = list(figures.CHANNEL_NAMES)
    by_channel = rows(
        "delivery_method",
        label=lambda value: figures.CHANNEL_NAMES[DeliveryMethod(value)],
        filters=lambda value: {"channel": value},
        order=lambda value, name: channels.index(value),
    )
    days = before_days(links, practice, period, within)
    # What the chart shows is today's, so that both sides draw the same page.
    shown = (
        figures._weeks(practice, period, days, within)
        if len(days) > figures.MOST_DAYS_SHOWN
        else days
    )
    return figures.Dashboard(
        practice=practice,
        period=period,
        department=department,
        totals=totals,
        by_department=by_department,
        by_staff=by_staff,
        by_channel=by_channel,
        days=days,
        shown=shown,
        chart=figures.draw(shown),
        money_in=figures.money_in(practice, period, department),
    )


@contextlib.contextmanager
def dashboard_of(build):
    """The dashboard page with this build()."""
    now = figures.build
    figures.build = build
    try:
        yield
    finally:
        figures.build = now


def chosen_period(practice: Practice, query: dict):
    zone = ZoneInfo(practice.timezone)
    if query["period"] == "custom":
        first, last = (dt.date.fromisoformat(query[key]) for key in ("start", "end"))
        return figures.Period("custom", first, last, zone)
    return figures.Period.named(query["period"], local_today(practice), zone)


def check_figures(practice: Practice, query: dict) -> str:
    """The dashboard's figures against plain Python over every counted link: counts, amounts and
    days exactly, times to pay to the millisecond (SQLite keeps no finer time)."""
    period = chosen_period(practice, query)
    board = figures.build(practice, period)
    links = figures.counted_links(practice, period).values_list(
        *figures.CELL, "payment_status", "amount", "created_at", "paid_at"
    )
    sent: dict[str, int] = defaultdict(int)
    paid_amount: dict[str, Decimal] = defaultdict(Decimal)
    times: dict[str, list[float]] = defaultdict(list)
    departments = {d.pk: d.name for d in Department.objects.filter(practice=practice)}
    people = {u.pk: figures.person_name(u) for u in get_user_model().objects.all()}
    for department, person, channel, status, amount, created, paid_at in links.iterator(5_000):
        lines = (
            "all",
            departments[department],
            people.get(person, figures.person_name(None)),
            figures.CHANNEL_NAMES[DeliveryMethod(channel)],
        )
        for line in lines:
            sent[line] += 1
            if status == PaymentStatus.ACCEPTED:
                paid_amount[line] += amount
                if paid_at is not None:
                    times[line].append((paid_at - created).total_seconds())

    def cont(values: list[float], q: int) -> float:  # percentile_cont
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    lines = [("all", board.totals)] + [
        (row.label, row.figures) for row in board.by_department + board.by_staff + board.by_channel
    ]
    worst = 0.0
    for line, f in lines:
        assert (f.sent, round(f.paid_amount, 2)) == (sent[line], paid_amount[line]), line
        assert f.median_seconds is not None and f.p90_seconds is not None, line
        for got, q in ((f.median_seconds, 50), (f.p90_seconds, 90)):
            worst = max(worst, abs(got - cont(times[line], q)))
    assert worst <= 0.001 + 1e-6, worst  # each moment to the millisecond on SQLite
    assert sum(day.sent for day in board.days) == board.totals.sent
    assert round(sum(day.paid_amount for day in board.days), 2) == round(
        board.totals.paid_amount, 2
    )
    return (
        f"{len(lines)} lines and {len(board.days)} days checked against every link; times to pay "
        f"off by at most {worst * 1000:.3f} ms"
    )


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
        results: dict[tuple[str, int, str], tuple[float, int]] = {}
        differ = []
        exports = []
        checked = ""
        for size in (1_000, args.large):
            seeding = time.perf_counter()
            seeder.add(size - seeder.made)
            settle()
            seeded = time.perf_counter() - seeding
            print(f"{database}: {size:,} links seeded with their events in {seeded:.1f} s")
            for label, query in periods:
                results["after", size, label] = dashboard_times(client, query, args.renders)
                with dashboard_of(before_build):
                    results["before", size, label] = dashboard_times(client, query, args.renders)
                period = chosen_period(seeder.practice, query)
                if figures.build(seeder.practice, period) != before_build(seeder.practice, period):
                    differ.append(f"{label} at {size:,} links")
            exports.append((size, "whole year", *export(client, year)))
            if size == args.large:
                exports.insert(-1, (size, "last 30 days", *export(client, periods[1][1])))
                checked = check_figures(seeder.practice, year)

        print(
            f"\nDashboard on {database}, median of {args.renders} renders (ms / queries), "
            "before and after issue 12:"
        )
        sizes = (1_000, args.large)
        print(f"{'':>14} " + " ".join(f"{f'{size:,} links':^35}" for size in sizes))
        print(f"{'period':>14} " + " ".join(f"{'before':>17} {'after':>17}" for _ in sizes))

        def cell(figure: tuple[float, int]) -> str:
            return f"{figure[0]:>9.1f} ms {figure[1]:>3} q"

        for label, _ in periods:
            print(
                f"{label:>14} "
                + " ".join(
                    f"{cell(results['before', size, label])} {cell(results['after', size, label])}"
                    for size in sizes
                )
            )
        print("  * a custom range over the whole year: adds up every link in the database")
        print(
            "  the same figures before and after: "
            + (f"NO, they differ for {', '.join(differ)}" if differ else "yes, at every size")
        )
        print(f"  figures at {args.large:,} links: {checked}")
        print(f"\nCSV export on {database} (peak = Python memory while streaming):")
        print(f"{'links':>9} {'period':>14} {'rows':>9} {'ms':>9} {'peak MiB':>9}")
        for size, label, ms, peak, rows in exports:
            print(f"{size:>9,} {label:>14} {rows:>9,} {ms:>9.0f} {peak:>9.2f}")

        everyday = [results["after", args.large, label] for label, _ in periods[:2]]
        slowest = max(ms for ms, _ in everyday)
        more_queries = any(
            results["after", args.large, label][1] != results["after", 1_000, label][1]
            for label, _ in periods
        )
        stress = results["after", args.large, periods[-1][0]][0]
        print(
            f"\nAt {args.large:,} links: last 7 and 30 days under 300 ms -> {slowest:.0f} ms "
            f"({'met' if slowest < 300 else 'MISSED'}); the whole year under 300 ms (issue 12) "
            f"-> {stress:.0f} ms ({'met' if stress < 300 else 'MISSED'}); the same queries as at "
            f"1,000 -> {'met' if not more_queries else 'MISSED'}; export peak "
            + ", ".join(f"{peak:.2f} MiB for {rows:,} rows" for *_, peak, rows in exports)
            + f". Total {time.perf_counter() - started:.0f} s."
        )
    finally:
        teardown_databases(old, verbosity=0)
        _scratch.cleanup()


if __name__ == "__main__":
    main()
