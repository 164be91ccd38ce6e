"""The manager dashboard's figures, computed in the database.

Which links count
-----------------
A period is a run of whole days in the practice's time zone: from midnight at the start of its
first day to midnight at the end of its last. The dashboard counts the links **created** in the
period that were **sent**, that is, that exist in Provet (state active or closed). An attempt
still being created, one whose outcome is unknown, and one Provet never made appear in no figure:
no client could have paid them.

Every figure describes that cohort as it stands now:

- *sent*: all of them, whatever happened next (paid, expired, cancelled, still waiting);
- *paid*: payment status Accepted, whenever the money came. A link sent on the period's last day
  and paid the next morning counts as paid in the period it was sent; a link sent the day before
  the period and paid in it belongs to its own period, not this one;
- *conversion*: paid / sent;
- *time to pay*: `paid_at - created_at` of the paid links, their median and 90th percentile
  (interpolated between the two nearest ranks, as PostgreSQL's `percentile_cont` does);
- *outstanding*: active and waiting for payment (not expired, cancelled or replaced);
- *expired unpaid*: payment status Expired (a link paid in time is never Expired);
- *failed deliveries*: Provet could not deliver the SMS or email (delivery status Failed).

Amounts are summed as they are, in the practice's currency (links are made in it). The daily chart
uses the same cohort: for each day, the links sent that day and how many of those are paid, so
the days add up to the tiles. Each figure links to the links list filtered to exactly the links
behind it (`link_list_url`).
"""

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    DecimalField,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Window,
)
from django.db.models.functions import RowNumber
from django.urls import reverse

from clinics.models import Department, Practice, midnight
from paylinks.access import MANAGING_ROLES
from paylinks.models import LINK_FIGURES, DeliveryMethod, PaymentLink
from paylinks.views.lists import NOBODY

# The longest custom range: a year and a day, so a leap year's whole year fits.
MAX_PERIOD_DAYS = 366

PERIODS = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "custom": "Custom range",
}
DEFAULT_PERIOD = "7d"


CHANNEL_NAMES = {
    DeliveryMethod.DONT_SEND: "Handed over at the desk",
    DeliveryMethod.SMS_AND_EMAIL: "SMS and email",
    DeliveryMethod.EMAIL: "Email",
    DeliveryMethod.SMS: "SMS",
}


def _money() -> DecimalField:
    """Sums of amounts: room for a large practice's year."""
    return DecimalField(max_digits=16, decimal_places=2)


def managed_practices(user) -> QuerySet[Practice]:
    """The active practices where the person is a manager or an admin (all, for a superuser)."""
    practices = Practice.objects.filter(is_active=True)
    if not user.is_authenticated:
        return practices.none()
    if user.is_superuser:
        return practices
    # One filter() call, so the manager membership must be this person's own.
    return practices.filter(memberships__user=user, memberships__role__in=MANAGING_ROLES).distinct()


def local_today(practice: Practice, now: dt.datetime | None = None) -> dt.date:
    return practice.today(now)


@dataclass(frozen=True)
class Period:
    """Whole days in a practice's time zone, `first` to `last` inclusive."""

    key: str
    first: dt.date
    last: dt.date
    zone: ZoneInfo

    @classmethod
    def named(cls, key: str, today: dt.date, zone: ZoneInfo) -> "Period":
        if key == "today":
            return cls(key, today, today, zone)
        if key == "7d":
            return cls(key, today - dt.timedelta(days=6), today, zone)
        if key == "30d":
            return cls(key, today - dt.timedelta(days=29), today, zone)
        if key == "month":
            return cls(key, today.replace(day=1), today, zone)
        raise ValueError(f"unknown period {key!r}")

    @property
    def start(self) -> dt.datetime:
        return midnight(self.first, self.zone)

    @property
    def end(self) -> dt.datetime:
        """The first moment after the period (exclusive)."""
        return midnight(self.last + dt.timedelta(days=1), self.zone)

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def label(self) -> str:
        if self.first == self.last:
            return f"{self.first:%-d %b %Y}"
        if self.first.year == self.last.year:
            return f"{self.first:%-d %b} – {self.last:%-d %b %Y}"
        return f"{self.first:%-d %b %Y} – {self.last:%-d %b %Y}"


class ElapsedSeconds(Func):
    """Seconds from one timestamp to another, in the database's own arithmetic.

    Django's own subtraction of datetimes calls a Python function per row on SQLite; ordering
    every paid link by it would be as slow as a Python loop."""

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


FIGURE_NAMES = (
    "sent",
    "paid",
    "paid_amount",
    "outstanding",
    "outstanding_amount",
    "expired",
    "expired_amount",
    "delivery_failed",
)


def _figure_aggregates() -> dict[str, Any]:
    def count(name: str) -> Count:
        return Count("pk", filter=LINK_FIGURES[name])

    def amount(name: str) -> Sum:
        return Sum("amount", filter=LINK_FIGURES[name], output_field=_money())

    return {
        "sent": Count("pk"),
        "paid": count("paid"),
        "paid_amount": amount("paid"),
        "outstanding": count("outstanding"),
        "outstanding_amount": amount("outstanding"),
        "expired": count("expired"),
        "expired_amount": amount("expired"),
        "delivery_failed": count("delivery_failed"),
    }


@dataclass
class Figures:
    """The figures of the tiles, and of each line of the tables."""

    sent: int = 0
    paid: int = 0
    paid_amount: Decimal = Decimal("0.00")
    outstanding: int = 0
    outstanding_amount: Decimal = Decimal("0.00")
    expired: int = 0
    expired_amount: Decimal = Decimal("0.00")
    delivery_failed: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None
    # The links list behind each figure, by figure name (see LINK_FIGURES).
    links: dict[str, str] = field(default_factory=dict)

    @property
    def conversion(self) -> float | None:
        """Paid / sent, as a fraction; None when nothing was sent."""
        return self.paid / self.sent if self.sent else None

    @property
    def conversion_percent(self) -> str:
        if self.conversion is None:
            return "–"
        return f"{self.conversion * 100:.0f} %"

    @property
    def median_text(self) -> str:
        return humane_duration(self.median_seconds)

    @property
    def p90_text(self) -> str:
        return humane_duration(self.p90_seconds)


def humane_duration(seconds: float | None) -> str:
    """'45 s', '12 min', '3 h 20 min', '2 d 4 h': as precise as a manager needs."""
    if seconds is None:
        return "–"
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass
class Row:
    """One line of a breakdown table: a department, a staff member or a channel."""

    label: str
    figures: Figures


@dataclass
class Day:
    day: dt.date
    sent: int
    paid: int
    paid_amount: Decimal
    sent_url: str
    paid_url: str


@dataclass
class Bar:
    x: float
    width: float
    sent_y: float
    sent_height: float
    paid_y: float
    paid_height: float
    title: str


@dataclass
class Chart:
    """Geometry of the daily chart, drawn as inline SVG by the template."""

    width: int
    height: int
    plot_left: int
    plot_bottom: int
    plot_right: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # y, value
    labels: list[tuple[float, str]]  # x, date


@dataclass
class Dashboard:
    practice: Practice
    period: Period
    department: Department | None
    totals: Figures
    by_department: list[Row]
    by_staff: list[Row]
    by_channel: list[Row]
    days: list[Day]
    chart: Chart


def counted_links(
    practice: Practice, period: Period, department: Department | None = None
) -> QuerySet[PaymentLink]:
    """The links the dashboard counts: sent, and created in the period (module docstring)."""
    links = PaymentLink.objects.filter(
        LINK_FIGURES["sent"],
        practice=practice,
        created_at__gte=period.start,
        created_at__lt=period.end,
    )
    if department is not None:
        links = links.filter(department=department)
    return links


def link_list_url(practice: Practice, period: Period, **filters: Any) -> str:
    """The links list, showing exactly the links behind a figure (filters as the list names them:
    status, department by Provet id, created_by by username, channel)."""
    query = {
        "practice": str(practice.code),
        "created_from": period.first.isoformat(),
        "created_to": period.last.isoformat(),
    }
    query.update({name: str(value) for name, value in filters.items() if value is not None})
    return f"{_list_path()}?{urlencode(query)}"


@cache
def _list_path() -> str:
    return reverse("paylinks:links")


def build(practice: Practice, period: Period, department: Department | None = None) -> Dashboard:
    """Every figure of the dashboard, in a fixed number of queries however many links.

    One grouped query counts the links per cell (department, staff member, channel); the tiles
    and the three tables add the cells up, so Python loops over at most departments × staff ×
    channels, never over the links. Time to pay needs the links' order, so the database ranks
    them (`_time_to_pay`); the days are one more grouped query."""
    links = counted_links(practice, period, department)
    within = {"department": department.provet_id} if department else {}

    def urls(**filters: Any) -> dict[str, str]:
        return {
            name: link_list_url(practice, period, **(within | filters), status=name)
            for name in LINK_FIGURES
        }

    cells = list(links.values(*CELL).annotate(**_figure_aggregates()).order_by())
    times = {key: _time_to_pay(links, key) for key in (None, *CELL)}

    totals = _tally(cells)
    totals.median_seconds, totals.p90_seconds = times[None].get(None, (None, None))
    totals.links = urls()

    def rows(
        key: str,
        label: Callable[[Any], str],
        filters: Callable[[Any], dict],
        order: Callable[[Any, str], Any],
    ) -> list[Row]:
        members: dict[Any, list[dict]] = defaultdict(list)
        for cell in cells:
            members[cell[key]].append(cell)
        result = []
        for value in sorted(members, key=lambda value: order(value, label(value))):
            figures = _tally(members[value])
            figures.median_seconds, figures.p90_seconds = times[key].get(value, (None, None))
            figures.links = urls(**filters(value))
            result.append(Row(label(value), figures))
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
        label=lambda pk: _person(people.get(pk)),
        filters=lambda pk: {"created_by": people[pk].get_username() if pk in people else NOBODY},
        # Links nobody in PayLinks made come last.
        order=lambda pk, name: (pk not in people, name.casefold()),
    )

    channels = list(CHANNEL_NAMES)
    by_channel = rows(
        "delivery_method",
        label=lambda value: CHANNEL_NAMES[DeliveryMethod(value)],
        filters=lambda value: {"channel": value},
        order=lambda value, name: channels.index(value),
    )

    days = _days(links, practice, period, within)
    return Dashboard(
        practice=practice,
        period=period,
        department=department,
        totals=totals,
        by_department=by_department,
        by_staff=by_staff,
        by_channel=by_channel,
        days=days,
        chart=_chart(days),
    )


# The finest grain the tables need: one department, one staff member, one channel.
CELL = ("department_id", "created_by_id", "delivery_method")


def _tally(cells: list[dict[str, Any]]) -> Figures:
    figures = Figures()
    for cell in cells:
        for name in FIGURE_NAMES:
            setattr(figures, name, getattr(figures, name) + (cell[name] or 0))
    return figures


def _person(user) -> str:
    if user is None:
        return "Nobody in PayLinks (made in Provet)"
    return user.get_full_name() or user.get_username()


PERCENTILES = (50, 90)


def _time_to_pay(
    links: QuerySet[PaymentLink], key: str | None
) -> dict[Any, tuple[float | None, float | None]]:
    """Median and 90th percentile of seconds to pay, per value of `key` (or overall for None).

    One query, whatever the number of links: the database ranks the paid links by time to pay
    within each group and returns only the (at most four) ranks the percentiles fall between."""
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
    # The percentile q lies at 0-based position q/100 * (size - 1); keep the ranks either side:
    # |100 * (rank - 1) - q * (size - 1)| < 100, in integers so the database needs no functions.
    near = Q()
    for q in PERCENTILES:
        position = F("size") * q - q
        near |= Q(rank100__gt=position, rank100__lt=position + 200)
    columns = [key] if key else []
    rows = ranked.filter(near).values_list(*columns, "rank", "size", "seconds").order_by()

    found: dict[Any, dict[int, float]] = defaultdict(dict)
    sizes: dict[Any, int] = {}
    for row in rows:
        group = row[0] if key else None
        rank, size, value = row[-3:]
        found[group][rank - 1] = value
        sizes[group] = size

    def percentile(group: Any, q: int) -> float:
        position = q * (sizes[group] - 1) / 100
        low, high = math.floor(position), math.ceil(position)
        values = found[group]
        return values[low] + (values[high] - values[low]) * (position - low)

    return {
        group: (percentile(group, PERCENTILES[0]), percentile(group, PERCENTILES[1]))
        for group in sizes
    }


class DayIndex(Func):
    """The index i of the day a timestamp falls on: boundaries[i] <= it < boundaries[i + 1].

    A balanced tree of comparisons, so each row costs about log2(days) of them and no time-zone
    function: the days are the practice's, worked out here once. Written as SQL directly, since
    a year of nested Case() expressions takes Django longer to compile than the query takes."""

    output_field = IntegerField()

    def __init__(self, expression: Any, boundaries: list[dt.datetime]) -> None:
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


def _days(links, practice: Practice, period: Period, within: dict[str, Any]) -> list[Day]:
    # Days yet to come (the rest of "this month", a custom range into the future) are left out.
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
            paid_amount=Sum("amount", filter=LINK_FIGURES["paid"], output_field=_money()),
        )
        .order_by()
    }
    result = []
    for index, day in enumerate(days):
        row = rows.get(index, {})
        one_day = Period("custom", day, day, period.zone)
        result.append(
            Day(
                day=day,
                sent=row.get("sent", 0),
                paid=row.get("paid", 0),
                paid_amount=row.get("paid_amount") or Decimal("0.00"),
                sent_url=link_list_url(practice, one_day, **within, status="sent"),
                paid_url=link_list_url(practice, one_day, **within, status="paid"),
            )
        )
    return result


def _nice_step(top: int) -> int:
    """A round step that divides 0..top into about four bands."""
    rough = max(top / 4, 1)
    magnitude = 10 ** math.floor(math.log10(rough))
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= rough:
            return int(multiple * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def _chart(days: list[Day]) -> Chart:
    width, height = 720, 240
    left, right, top, bottom = 40, 710, 10, 205
    step = _nice_step(max((day.sent for day in days), default=0))
    ceiling = step * max(1, math.ceil(max((day.sent for day in days), default=0) / step))
    scale = (bottom - top) / ceiling
    slot = (right - left) / len(days)
    bar = max(min(slot * 0.7, 28), 1.0)
    bars = []
    for index, day in enumerate(days):
        x = left + slot * index + (slot - bar) / 2
        sent_height = day.sent * scale
        paid_height = day.paid * scale
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(bar, 2),
                sent_y=round(bottom - sent_height, 2),
                sent_height=round(sent_height, 2),
                paid_y=round(bottom - paid_height, 2),
                paid_height=round(paid_height, 2),
                title=f"{day.day:%-d %b}: {day.sent} sent, {day.paid} paid",
            )
        )
    ticks = [(round(bottom - value * scale, 2), value) for value in range(0, ceiling + 1, step)]
    # Label about seven days evenly, always the first and the last.
    every = max(1, math.ceil(len(days) / 7))
    shown = sorted({*range(0, len(days), every), len(days) - 1})
    if len(shown) > 1 and shown[-1] - shown[-2] < every / 2:
        shown.pop(-2)
    labels = [(round(left + slot * (i + 0.5), 2), f"{days[i].day:%-d %b}") for i in shown]
    return Chart(width, height, left, bottom, right, bars, ticks, labels)
