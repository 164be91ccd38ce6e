"""Everything django-q2 runs on a schedule, in one place: what runs every minute is read here.

The list is synced after every `migrate` (paylinks/apps.py): each schedule is made, or brought
up to date, by its name, and a `paylinks.` schedule no longer listed is deleted. Running it again
changes nothing, so any number of machines may migrate.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone


@dataclass(frozen=True)
class Scheduled:
    name: str
    func: str
    every_minutes: int | None = None  # or:
    daily_at_utc: dt.time | None = None


SCHEDULES = [
    # Queues one poll pass per practice every 10 s through its minute (polling.py).
    Scheduled("Poll links that are due", "paylinks.tasks.poll", every_minutes=1),
    # Decides links whose creation answer was lost, or left in `creating` (reconcile.py).
    Scheduled("Reconcile links with a lost answer", "paylinks.tasks.reconcile", every_minutes=1),
    # Queues the outgoing events' retries that are due (event_sending.py).
    Scheduled(
        "Send outgoing events that are due", "paylinks.tasks.send_due_events", every_minutes=1
    ),
    # Queues one pass per practice with automatic follow-up on and open now (followups.py).
    Scheduled(
        "Send expired links again automatically",
        "paylinks.tasks.follow_up_everywhere",
        every_minutes=5,
    ),
    # Monday morning's summary e-mail to each manager who asked for it, in each practice's
    # time zone: hourly, and the hours outside it send nothing (reports/weekly.py).
    Scheduled("Weekly summary e-mails", "reports.weekly.send_weekly_summaries", every_minutes=60),
    # Queues one drift check per practice: what disagrees with Provet (drift.py).
    Scheduled(
        "Nightly drift check", "paylinks.tasks.find_drift_everywhere", daily_at_utc=dt.time(2, 30)
    ),
]


def sync_schedules(**kwargs) -> None:
    """Make the schedules match SCHEDULES (a `post_migrate` receiver)."""
    from django_q.models import Schedule  # the app registry is ready by now

    for scheduled in SCHEDULES:
        if scheduled.every_minutes is not None:
            fields = {"schedule_type": Schedule.MINUTES, "minutes": scheduled.every_minutes}
        else:
            fields = {"schedule_type": Schedule.DAILY, "minutes": None}
        fields.update(func=scheduled.func, repeats=-1)
        schedule, created = Schedule.objects.update_or_create(name=scheduled.name, defaults=fields)
        if scheduled.daily_at_utc is not None and (
            created or _at(schedule) != scheduled.daily_at_utc
        ):
            schedule.next_run = _next(scheduled.daily_at_utc)
            schedule.save(update_fields=["next_run"])
    listed = [scheduled.name for scheduled in SCHEDULES]
    Schedule.objects.filter(ours()).exclude(name__in=listed).delete()


def ours() -> Q:
    """The schedules this module keeps: those of PayLinks' own apps (never another app's)."""
    return Q(func__startswith="paylinks.") | Q(func__startswith="reports.")


def _at(schedule) -> dt.time | None:
    if schedule.next_run is None:
        return None
    return schedule.next_run.astimezone(dt.UTC).time().replace(second=0, microsecond=0)


def _next(at: dt.time) -> dt.datetime:
    now = timezone.now()
    run = dt.datetime.combine(now.astimezone(dt.UTC).date(), at, tzinfo=dt.UTC)
    return run if run > now else run + dt.timedelta(days=1)
