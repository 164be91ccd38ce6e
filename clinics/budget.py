"""One budget of Provet requests per practice, shared by every process and machine.

Provet limits each installation per endpoint over a rolling minute and answers 429 past it.
PayLinks stays under that by sending at most `Practice.rate_budget_per_minute` requests per
rolling minute to an installation, whoever sends them: the poller, webhook checks, *Check
now*, the reconciler, the drift check and the reception pages. The count is a `RequestBudget`
row changed by single conditional UPDATEs, so gunicorn workers, qclusters and machines draw on
one count, and two of them can't both take the last request.

Page reads (a person is waiting) may spend all of it; background work stops at
BACKGROUND_SHARE, so a page always has room. Whose work it is comes from the context: web
requests are pages (`PagePriorityMiddleware`), everything else is background unless it says
otherwise (`with priority(Priority.PAGE)`). A 429 from Provet, on any request, pauses the
practice's background work everywhere until Retry-After (`Practice.paused_until`); a page read
may still try.

The rolling minute is estimated the usual way (a sliding window counter): this minute's count,
plus the previous minute's weighted by the part of it still inside the last 60 seconds.
"""

import contextvars
import datetime as dt
import enum
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.db.models.functions import Coalesce
from django.db.models.lookups import LessThan
from django.utils import timezone

from clinics.models import Practice, RequestBudget
from clinics.provet import ProvetBudgetSpent

logger = logging.getLogger(__name__)

BACKGROUND_SHARE = 0.8


class Priority(enum.Enum):
    PAGE = "page"
    BACKGROUND = "background"


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "provet_priority", default=Priority.BACKGROUND
)


@contextmanager
def priority(level: Priority) -> Iterator[None]:
    """Requests made inside are spent at this priority."""
    token = _priority.set(level)
    try:
        yield
    finally:
        _priority.reset(token)


class PagePriorityMiddleware:
    """A web request is a person waiting: its Provet reads come first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with priority(Priority.PAGE):
            return self.get_response(request)


class Budget:
    """What one ProvetClient spends on: its practice's shared count, at the context's priority."""

    def __init__(self, practice: Practice):
        self.practice = practice
        self.limit = practice.rate_budget_per_minute
        self.priority = _priority.get()

    @property
    def background(self) -> bool:
        return self.priority is Priority.BACKGROUND

    def spend(self) -> None:
        """Take one request from the budget, or raise ProvetBudgetSpent (nothing is sent)."""
        now = timezone.now()
        minute, seconds = divmod(now.timestamp(), 60)
        minute = int(minute)
        cap = (
            self.limit if not self.background else max(1, math.floor(self.limit * BACKGROUND_SHARE))
        )
        # Per mille of the previous minute's count still inside the rolling minute. A row another
        # machine (its clock a little ahead) has moved on to the next minute counts whole.
        weight = Case(When(minute=minute, then=Value(round((60 - seconds) / 60 * 1000))))
        used = F("spent_before") * Coalesce(weight, Value(1000)) + F("spent") * 1000
        fits: LessThan[int] = LessThan(used, cap * 1000)
        row = RequestBudget.objects.filter(pk=self.practice.pk)
        for _ in range(3):
            # Only this row's own columns in the UPDATE's condition: PostgreSQL checks them again
            # on the locked row, so two processes can't both take the last request. (A filter
            # through the practice would make Django select the row in a subquery first.)
            takes = row.filter(fits, minute__gte=minute)
            if self.background:
                unpaused = Practice.objects.unpaused(now).filter(pk=OuterRef("practice_id"))
                takes = takes.filter(Exists(unpaused))
            if takes.update(spent=F("spent") + 1):
                return
            moved_on = row.filter(minute__lt=minute).update(
                spent_before=Case(When(minute=minute - 1, then=F("spent")), default=Value(0)),
                spent=0,
                minute=minute,
            )
            if not moved_on:
                if row.exists():
                    break
                RequestBudget.objects.bulk_create(
                    [RequestBudget(practice_id=self.practice.pk, minute=minute)],
                    ignore_conflicts=True,
                )
        raise self._refusal(now, seconds)

    def _refusal(self, now: dt.datetime, seconds: float) -> ProvetBudgetSpent:
        paused_until = self.practice.pause_ends_at(now)
        if self.background and paused_until is not None:
            return ProvetBudgetSpent(
                f"Provet Cloud asked PayLinks to wait until "
                f"{timezone.localtime(paused_until):%H:%M:%S}",
                retry_after=(paused_until - now).total_seconds(),
            )
        return ProvetBudgetSpent(
            f"PayLinks has sent this practice's {self.limit} requests a minute to Provet Cloud",
            retry_after=max(1.0, 60 - seconds),
        )

    def rate_limited(self, retry_after: float) -> None:
        """Provet answered 429: background work waits until Retry-After, in every process."""
        until = timezone.now() + dt.timedelta(seconds=retry_after)
        if self.practice.pause(until):
            logger.warning(
                "provet rate limited practice %s: paused until %s", self.practice.pk, until
            )
