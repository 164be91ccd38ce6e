"""The sandbox clock: real time plus an offset kept in the database, so tests can skip ahead."""

from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from sandbox.models import ClockOffset


def offset() -> float:
    row = ClockOffset.objects.filter(pk=1).values_list("seconds", flat=True).first()
    return row or 0.0


def now() -> datetime:
    return timezone.now() + timedelta(seconds=offset())


def advance(seconds: float) -> datetime:
    """Move the sandbox clock forward by `seconds` and answer the new time."""
    ClockOffset.objects.get_or_create(pk=1)
    ClockOffset.objects.filter(pk=1).update(seconds=F("seconds") + float(seconds))
    return now()


def reset() -> None:
    ClockOffset.objects.filter(pk=1).delete()
