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

Money in
--------
Two figures follow the money rather than the cohort, by **payment date** (`paid_at`, in the
practice's time zone), whenever the link was made: *collected*, what was paid in the period,
beside what was paid in the period of the same length just before it; and *recovered*, what was
paid on links the automatic follow-up sent again (`PaymentLink.sent_automatically`). A link sent
the day before the period and paid in it is collected in the period (`money_in`).

Amounts are summed as they are, in the practice's currency (links are made in it). The daily chart
uses the same cohort: for each day, the links sent that day and how many of those are paid, so
the days add up to the tiles. Each figure links to the links list filtered to exactly the links
behind it (`link_list_url`).
"""

import dataclasses
import datetime as dt
import itertools
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, partial
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DecimalField,
    F,
    Func,
    Q,
    Sum,
    TextField,
    When,
)
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from clinics import formats
from clinics.models import Department, Practice, midnight
from paylinks.link_filters import NOBODY
from paylinks.models import LINK_FIGURES, DeliveryMethod, PaymentLink, PaymentLinkQuerySet
from reports.chart import Chart, draw

# The longest custom range: a year and a day, so a leap year's whole year fits.
MAX_PERIOD_DAYS = 366

PERIODS = {
    "today": gettext_lazy("Today"),
    "7d": gettext_lazy("Last 7 days"),
    "30d": gettext_lazy("Last 30 days"),
    "month": gettext_lazy("This month"),
    "custom": gettext_lazy("Custom range"),
}
DEFAULT_PERIOD = "7d"


CHANNEL_NAMES = {
    DeliveryMethod.DONT_SEND: gettext_lazy("Handed over at the desk"),
    DeliveryMethod.SMS_AND_EMAIL: gettext_lazy("SMS and email"),
    DeliveryMethod.EMAIL: gettext_lazy("Email"),
    DeliveryMethod.SMS: gettext_lazy("SMS"),
}


def _money() -> DecimalField:
    """Sums of amounts: room for a large practice's year."""
    return DecimalField(max_digits=16, decimal_places=2)


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
    def length(self) -> int:
        """How many days."""
        return (self.last - self.first).days + 1

    def before(self) -> "Period":
        """The period of the same length that ends the day before this one starts."""
        last = self.first - dt.timedelta(days=1)
        return Period("custom", last - dt.timedelta(days=self.length - 1), last, self.zone)

    @property
    def label(self) -> str:
        """28 Nov 2026, or 23 Nov – 29 Nov 2026 (a year on both ends when they differ), in the
        active language."""
        if self.first == self.last:
            return formats.day(self.first)
        same_year = self.first.year == self.last.year
        return _("%(first)s – %(last)s") % {
            "first": formats.day_month(self.first) if same_year else formats.day(self.first),
            "last": formats.day(self.last),
        }


class SecondsToPay(Func):
    """`paid_at - created_at` in seconds, as text that reads back exactly.

    The number is the database's own arithmetic (PostgreSQL's exact interval in microseconds,
    SQLite's julianday difference), written so that Python's `float()` reads back the very double
    the database would have ranked: PostgreSQL's numeric is exact decimal text, and SQLite prints
    its double with 17 significant digits. Django's own subtraction of datetimes would call a
    Python function per row on SQLite."""

    arity = 2
    output_field = TextField()

    def _parts(self, compiler, connection):
        start, end = self.get_source_expressions()
        start_sql, start_params = compiler.compile(start)
        end_sql, end_params = compiler.compile(end)
        return start_sql, end_sql, (*end_params, *start_params)

    def as_sql(self, compiler, connection, **extra_context):
        start, end, params = self._parts(compiler, connection)
        return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS text)", params

    def as_sqlite(self, compiler, connection, **extra_context):
        start, end, params = self._parts(compiler, connection)
        seconds = f"(julianday({end}) - julianday({start})) * 86400.0"
        return f"printf(%s, {seconds})", ("%!.17g", *params)


class Joined(Aggregate):
    """The group's texts joined with commas (NULL for none): `string_agg`, SQLite's
    `group_concat`. Order unspecified."""

    function = "STRING_AGG"
    template = "%(function)s(%(expressions)s, ',')"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="GROUP_CONCAT", **extra_context)


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
        # Every paid link's time to pay, for the percentiles (`TimesToPay`).
        "seconds_to_pay": Joined(
            SecondsToPay("created_at", "paid_at"),
            filter=LINK_FIGURES["paid"] & Q(paid_at__isnull=False),
        ),
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
    """'45 s', '12 min', '3 h 20 min', '2 d 4 h': as precise as a manager needs, the units in
    the active language."""
    if seconds is None:
        return "–"
    seconds = max(seconds, 0)
    if seconds < 60:
        return _("%(seconds)s s") % {"seconds": round(seconds)}
    minutes = round(seconds / 60)
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        if minutes:
            return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
        return _("%(hours)s h") % {"hours": hours}
    days, hours = divmod(hours, 24)
    if hours:
        return _("%(days)s d %(hours)s h") % {"days": days, "hours": hours}
    return _("%(days)s d") % {"days": days}


@dataclass
class MoneyIn:
    """What was paid in a period by payment date, the period before, and what the automatic
    follow-up recovered (module docstring, "Money in")."""

    period: Period
    previous: Period
    collected: int = 0
    collected_amount: Decimal = Decimal("0.00")
    previous_collected: int = 0
    previous_amount: Decimal = Decimal("0.00")
    recovered: int = 0
    recovered_amount: Decimal = Decimal("0.00")

    @property
    def change_percent(self) -> Decimal | None:
        """Collected against the period before, in percent; None when nothing came in then."""
        if not self.previous_amount:
            return None
        change = (self.collected_amount - self.previous_amount) / self.previous_amount * 100
        return change.quantize(Decimal("1"), rounding=ROUND_HALF_UP)

    @property
    def change_text(self) -> str:
        """ "+12 % on the previous 7 days", as a manager reads it beside the amount."""
        days = self.previous.length
        change = self.change_percent
        if change is None:
            return ngettext(
                "nothing the day before",
                "nothing in the previous %(days)s days",
                days,
            ) % {"days": days}
        sign = "+" if change > 0 else "−" if change < 0 else "±"
        return ngettext(
            "%(change)s on the day before",
            "%(change)s on the previous %(days)s days",
            days,
        ) % {"change": f"{sign}{abs(change)} %", "days": days}


def money_in(practice: Practice, period: Period, department: Department | None = None) -> MoneyIn:
    """Money in by payment date, for the period and the one before: one query, through the
    practice's paid links by payment time (index link_practice_paid_idx)."""
    previous = period.before()
    links = _sent_links(practice, department).filter(
        LINK_FIGURES["paid"], paid_at__gte=previous.start, paid_at__lt=period.end
    )
    now, before = Q(paid_at__gte=period.start), Q(paid_at__lt=period.start)
    recovered = now & Q(sent_automatically=True)
    sums = links.aggregate(
        collected=Count("pk", filter=now),
        collected_amount=Sum("amount", filter=now, output_field=_money()),
        previous_collected=Count("pk", filter=before),
        previous_amount=Sum("amount", filter=before, output_field=_money()),
        recovered=Count("pk", filter=recovered),
        recovered_amount=Sum("amount", filter=recovered, output_field=_money()),
    )
    return MoneyIn(
        period=period,
        previous=previous,
        **{name: value for name, value in sums.items() if value is not None},
    )


@dataclass
class Row:
    """One line of a breakdown table: a department, a staff member or a channel."""

    label: str
    figures: Figures


@dataclass
class Day:
    """The links sent on a day, or in a week of days (`last` its last day), and those paid."""

    day: dt.date
    sent: int
    paid: int
    paid_amount: Decimal
    sent_url: str
    paid_url: str
    last: dt.date | None = None  # a week's last day; None for a single day

    @property
    def label(self) -> str:
        """Sat 28 Nov, or a week's Mon 23 Nov – Sun 29 Nov, in the active language."""
        if self.last is None:
            return formats.short_day(self.day)
        return _("%(first)s – %(last)s") % {
            "first": formats.short_day(self.day),
            "last": formats.short_day(self.last),
        }


# Beyond this many days the chart and its table show weeks: a year of 366 hairline bars and a
# 366-row table are unreadable (and slow to draw). The API still gives every day.
MOST_DAYS_SHOWN = 62


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
    shown: list[Day]  # what the chart and its table show: the days, or their weeks
    chart: Chart
    money_in: MoneyIn

    @property
    def weekly(self) -> bool:
        return self.shown is not self.days


def counted_links(
    practice: Practice, period: Period, department: Department | None = None
) -> PaymentLinkQuerySet:
    """The links the dashboard counts: sent, and created in the period (module docstring)."""
    return _sent_links(practice, department).filter(
        created_at__gte=period.start, created_at__lt=period.end
    )


def _sent_links(practice: Practice, department: Department | None) -> PaymentLinkQuerySet:
    links = PaymentLink.objects.filter(LINK_FIGURES["sent"], practice=practice)
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
    channels, never over the links. Time to pay needs the paid links in order: the same query
    hands over each cell's times to pay, each cell's are sorted once, and every percentile is
    picked from those sorted lists (`TimesToPay`). The days are one more query (`_days`)."""
    links = counted_links(practice, period, department)
    within = {"department": department.provet_id} if department else {}

    def urls(**filters: Any) -> dict[str, str]:
        return {
            name: link_list_url(practice, period, **(within | filters), status=name)
            for name in LINK_FIGURES
        }

    cells = list(links.values(*CELL).annotate(**_figure_aggregates()).order_by())
    times = TimesToPay(cells)

    totals = _tally(cells, times)
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
            figures = _tally(members[value], times)
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
        label=lambda pk: person_name(people.get(pk)),
        filters=lambda pk: {"created_by": people[pk].get_username() if pk in people else NOBODY},
        # Links nobody in PayLinks made come last.
        order=lambda pk, name: (pk not in people, name.casefold()),
    )

    channels = list(CHANNEL_NAMES)
    by_channel = rows(
        "delivery_method",
        label=lambda value: str(CHANNEL_NAMES[DeliveryMethod(value)]),
        filters=lambda value: {"channel": value},
        order=lambda value, name: channels.index(value),
    )

    days = _days(practice, department, period, within)
    shown = _weeks(practice, period, days, within) if len(days) > MOST_DAYS_SHOWN else days
    return Dashboard(
        practice=practice,
        period=period,
        department=department,
        totals=totals,
        by_department=by_department,
        by_staff=by_staff,
        by_channel=by_channel,
        days=days,
        shown=shown,
        chart=draw(shown),
        money_in=money_in(practice, period, department),
    )


# The finest grain the tables need: one department, one staff member, one channel.
CELL = ("department_id", "created_by_id", "delivery_method")


def _tally(cells: list[dict[str, Any]], times: "TimesToPay") -> Figures:
    """The cells added up: their counts and amounts, and the percentiles of their times to pay."""
    figures = Figures()
    for cell in cells:
        for name in FIGURE_NAMES:
            setattr(figures, name, getattr(figures, name) + (cell[name] or 0))
    figures.median_seconds, figures.p90_seconds = times.percentiles(cells)
    return figures


def person_name(user) -> str:
    """Who made a link, as the dashboard and the CSV export name them."""
    if user is None:
        return _("Nobody in PayLinks (made in Provet)")
    return formats.person(user)


PERCENTILES = (50, 90)


class TimesToPay:
    """The paid links' times to pay, cell by cell, and their percentiles for any set of cells.

    Each cell's times come from the database as one text (`SecondsToPay`, `Joined`), which is
    replaced by the times sorted, once; `everything` is all of them, merged once (a sort that
    finds its runs already in order). A set of cells' percentiles are those of its links, never a
    mix of its cells' percentiles: `percentile_cont`'s, the value at position q/100 × (n - 1),
    interpolated between the two nearest ranks. A rank among several cells is found by bisection
    (`_nth`), so no line needs a sorted list of its own."""

    def __init__(self, cells: list[dict[str, Any]]) -> None:
        for cell in cells:
            joined = cell["seconds_to_pay"]
            cell["seconds_to_pay"] = sorted(map(float, joined.split(","))) if joined else []
        runs = [cell["seconds_to_pay"] for cell in cells if cell["seconds_to_pay"]]
        self.everything: list[float] = (
            runs[0] if len(runs) == 1 else sorted(itertools.chain.from_iterable(runs))
        )

    def percentiles(self, cells: list[dict[str, Any]]) -> tuple[float | None, float | None]:
        """Median and 90th percentile of the cells' times to pay together (None for none)."""
        runs = [cell["seconds_to_pay"] for cell in cells if cell["seconds_to_pay"]]
        size = sum(map(len, runs))
        if not size:
            return None, None
        nth: Callable[[int], float]
        if len(runs) == 1:
            nth = runs[0].__getitem__
        elif size == len(self.everything):  # every cell's
            nth = self.everything.__getitem__
        else:
            nth = partial(self._nth, runs)

        def percentile(q: int) -> float:
            position = q * (size - 1) / 100
            low, high = math.floor(position), math.ceil(position)
            below = nth(low)
            above = nth(high) if high != low else below
            return below + (above - below) * (position - low)

        return percentile(PERCENTILES[0]), percentile(PERCENTILES[1])

    def _nth(self, runs: list[list[float]], rank: int) -> float:
        """The value at `rank` (from 0) of the sorted runs together: the first of `everything`
        that at least rank + 1 of the runs' values do not exceed."""
        low, high = 0, len(self.everything) - 1
        while low < high:
            middle = (low + high) // 2
            value = self.everything[middle]
            if sum(bisect_right(run, value) for run in runs) > rank:
                high = middle
            else:
                low = middle + 1
        return self.everything[low]


def _weeks(
    practice: Practice, period: Period, days: list[Day], within: dict[str, Any]
) -> list[Day]:
    """The days added up by week (Monday to Sunday), the first and last weeks cut to the days."""
    weeks: list[Day] = []
    for day in days:
        if weeks and day.day.weekday() != 0:
            week = weeks[-1]
            week.sent += day.sent
            week.paid += day.paid
            week.paid_amount += day.paid_amount
            week.last = day.day
        else:
            weeks.append(dataclasses.replace(day, last=day.day))
    for week in weeks:
        assert week.last is not None
        days_of_week = Period("custom", week.day, week.last, period.zone)
        week.sent_url, week.paid_url = (
            link_list_url(practice, days_of_week, **within, status=status)
            for status in ("sent", "paid")
        )
    return weeks


def _days(
    practice: Practice, department: Department | None, period: Period, within: dict[str, Any]
) -> list[Day]:
    """The links sent each day, and how many of them are paid for how much: one query.

    The days are a table of their first and end moments (the practice's midnights, worked out
    here), joined to the links created between them. The database finds each day's links in its
    index of links by creation time, in order, instead of working out every link's day."""
    # Days yet to come (the rest of "this month", a custom range into the future) are left out.
    today = local_today(practice)
    days = [day for day in period.days if day <= today] or [period.first]
    starts = [midnight(day, period.zone) for day in [*days, days[-1] + dt.timedelta(days=1)]]
    # Not counted_links(): the days bound the links. With the period's bounds in too, SQLite
    # would look for each day's links between those, i.e. through the whole period.
    links = (
        _sent_links(practice, department)
        .annotate(moment=F("created_at"), paid_amount=Case(When(LINK_FIGURES["paid"], "amount")))
        .values("moment", "paid_amount")
        .order_by()
    )
    links_sql, links_params = links.query.sql_with_params()
    connection = connections[links.db]
    adapt = connection.ops.adapt_datetimefield_value
    table = ", ".join(f"({index}, %s, %s)" for index in range(len(days)))
    table_params = [adapt(moment) for pair in itertools.pairwise(starts) for moment in pair]
    # CROSS JOIN keeps the days outside: SQLite takes it as the order to join in. The sum comes
    # as text, the same on both databases: a decimal to read as it is. Only numbers and the
    # ORM's own SQL are written in; every value is a parameter.
    sql = (
        f"WITH day (number, first_moment, end_moment) AS (VALUES {table}) "  # noqa: S608
        "SELECT day.number, COUNT(*), COUNT(link.paid_amount), CAST(SUM(link.paid_amount) AS TEXT)"
        f" FROM day CROSS JOIN ({links_sql}) link"
        " WHERE link.moment >= day.first_moment AND link.moment < day.end_moment"
        " GROUP BY day.number"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*table_params, *links_params))
        rows = {number: (sent, paid, amount) for number, sent, paid, amount in cursor.fetchall()}
    # link_list_url() of each day, without encoding the practice and the filters for every day
    # again: a date needs no quoting.
    head = f"{_list_path()}?{urlencode({'practice': str(practice.code)})}"
    sent_tail, paid_tail = (urlencode(within | {"status": status}) for status in ("sent", "paid"))
    result = []
    for index, day in enumerate(days):
        sent, paid, amount = rows.get(index, (0, 0, None))
        dates = f"created_from={day.isoformat()}&created_to={day.isoformat()}"
        result.append(
            Day(
                day=day,
                sent=sent,
                paid=paid,
                paid_amount=Decimal(amount) if amount is not None else Decimal("0.00"),
                sent_url=f"{head}&{dates}&{sent_tail}",
                paid_url=f"{head}&{dates}&{paid_tail}",
            )
        )
    return result
