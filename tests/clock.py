"""Run the suite at a chosen instant: `pytest --clock=2026-03-29T02:59:30+03:00[Europe/Helsinki]`.

The clock starts at that instant and ticks on from there (time-machine), in every test and
xdist worker, for `timezone.now()`, `datetime.now()`, `date.today()` and `time.time()` alike.
The zone in brackets becomes the process's local zone too, so naive "local" times are read in
a zone far from UTC. CI runs the suite at the instants in `.ci/clocks`: midnight and the year's
end in Helsinki, both nights the clocks change, and a Monday just after midnight on a host in
Auckland.

A test that can't run at a moved clock (it starts a process of its own, whose clock is the
machine's) is marked `real_clock`, says why in its docstring, and is skipped here.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine


def pytest_addoption(parser):
    parser.addoption(
        "--clock",
        metavar="INSTANT",
        help="start the clock at INSTANT: an ISO 8601 time with its offset, then [Area/City]",
    )


def instant(text: str) -> dt.datetime:
    """`2026-12-31T23:59:59+02:00[Europe/Helsinki]` -> that moment, in that zone."""
    moment, _, zone = text.partition("[")
    parsed = dt.datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        raise pytest.UsageError(f"--clock {text!r} needs its UTC offset")
    return parsed.astimezone(ZoneInfo(zone.rstrip("]") or "UTC"))


def pytest_configure(config):
    text = config.getoption("--clock")
    if text:
        traveller = time_machine.travel(instant(text), tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


def pytest_report_header(config):
    text = config.getoption("--clock")
    if text:
        return f"clock: started at {instant(text).isoformat()} ({instant(text).tzinfo})"
    return None


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--clock"):
        return
    skip = pytest.mark.skip(reason="needs the machine's own clock (see its docstring)")
    for item in items:
        if item.get_closest_marker("real_clock"):
            item.add_marker(skip)
