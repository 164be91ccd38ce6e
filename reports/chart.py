"""The geometry of the dashboard's daily chart, drawn as inline SVG by the template
(templates/reports/_dashboard_chart.html): no JavaScript, no chart library."""

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext as _

from clinics import formats


class ChartDay(Protocol):
    """A day's bar, or a week's (labelled by its first day)."""

    day: dt.date
    sent: int
    paid: int

    @property
    def label(self) -> str: ...


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


def _nice_step(top: int) -> int:
    """A round step that divides 0..top into about four bands."""
    rough = max(top / 4, 1)
    magnitude = 10 ** math.floor(math.log10(rough))
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= rough:
            return int(multiple * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def draw(days: Sequence[ChartDay]) -> Chart:
    """The bars, ticks and labels of the days' (or weeks') sent and paid links."""
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
                title=_("%(day)s: %(sent)s sent, %(paid)s paid")
                % {"day": day.label, "sent": day.sent, "paid": day.paid},
            )
        )
    ticks = [(round(bottom - value * scale, 2), value) for value in range(0, ceiling + 1, step)]
    # Label about seven days evenly, always the first and the last.
    every = max(1, math.ceil(len(days) / 7))
    shown = sorted({*range(0, len(days), every), len(days) - 1})
    if len(shown) > 1 and shown[-1] - shown[-2] < every / 2:
        shown.pop(-2)
    labels = [(round(left + slot * (i + 0.5), 2), formats.day_month(days[i].day)) for i in shown]
    return Chart(width, height, left, bottom, right, bars, ticks, labels)
