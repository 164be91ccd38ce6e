"""Requests that really race: threads released together from a start line, then held at a
meeting point just before they write, until the others have caught up.

Without the guard (a control), every racer waits at the meeting point until all of them are
there, so they all write on what they read before anyone wrote. With the guard, the first racer
to arrive waits until every other one is accounted for: finished, or, on PostgreSQL, seen
waiting on a lock (the guard's, which the first one holds).

On SQLite the guard is the one write lock every transaction takes when it begins. A guarded
racer outside a transaction waits until the others have finished; one inside the door (the
function whose transaction takes the lock) waits until the others are queued at the door too,
but at most `SQLITE_PATIENCE` seconds: a racer held on the write lock before the door can only
come when this one lets go, and nothing can tell it apart from a late one.

Elsewhere nothing is decided by a timeout: on a loaded machine a late thread makes the others
wait for it, and one that never comes fails the test after `DEADLINE` seconds. So neither a
guarded test nor a control passes without the race having happened. `most_met` and
`queued_behind_first` say how it went, for the tests to assert.
"""

import functools
import threading
import time
from collections.abc import Callable

from django.db import connection

DEADLINE = 120  # seconds for any racer to come: only a broken test waits this long
SQLITE_PATIENCE = 3  # seconds

RUNNING, QUEUED, MEETING, PAST, DONE = "running", "queued", "meeting", "past", "done"


class Race:
    def __init__(self, parties: int, *, guarded: bool):
        self.parties = parties
        self.guarded = guarded
        self.states: dict[int, str] = {}
        self.changed = threading.Condition()
        self.most_met = 0  # the most racers at the meeting point at one time
        self.queued_behind_first: int | None = None  # racers queued when the first went on
        self.inside = threading.local()

    def run(self, requests: list[Callable]) -> list:
        """Run each request in its own thread, released together; what each returned."""
        assert len(requests) == self.parties, (len(requests), self.parties)
        start = threading.Barrier(self.parties, timeout=DEADLINE)
        results: list = [None] * self.parties
        errors: list[BaseException] = []

        def run(index: int, request: Callable) -> None:
            self._set(RUNNING)
            try:
                start.wait()
                results[index] = request()
            except BaseException as error:
                errors.append(error)
            finally:
                self._set(DONE)
                connection.close()

        threads = [threading.Thread(target=run, args=pair) for pair in enumerate(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE)
        assert not any(thread.is_alive() for thread in threads), "a racer never finished"
        assert not errors, errors
        return results

    def door(self, function: Callable) -> Callable:
        """`function`, whose racers count as queued from the moment they call it."""

        @functools.wraps(function)
        def entered(*args, **kwargs):
            self._set(QUEUED)
            self.inside.door = True
            try:
                return function(*args, **kwargs)
            finally:
                self.inside.door = False
                self._set(PAST)

        return entered

    def meet(self) -> None:
        """Wait here until the others have caught up (see the module's docstring)."""
        if threading.get_ident() not in self.states:
            return  # not a racer: a test's own set-up
        holding_sqlite = connection.vendor == "sqlite" and getattr(self.inside, "door", False)
        self._set(MEETING)
        deadline = time.monotonic() + (SQLITE_PATIENCE if holding_sqlite else DEADLINE)
        with self.changed:
            while True:
                self.most_met = max(self.most_met, self._count(MEETING))
                on_the_way = self._count(RUNNING) + self._count(QUEUED)
                if not self.guarded:
                    caught_up = self._count(MEETING) + self._count(PAST) == self.parties
                elif connection.vendor == "postgresql":
                    waiting = _lock_waiters() if on_the_way else 0
                    caught_up = on_the_way <= waiting
                else:
                    caught_up = on_the_way == 0
                if caught_up or (holding_sqlite and self._count(RUNNING) == 0):
                    break
                if time.monotonic() > deadline:
                    if holding_sqlite:
                        break
                    raise AssertionError(f"a racer never caught up: {self.states}")
                self.changed.wait(timeout=0.05)
            if self.queued_behind_first is None:
                self.queued_behind_first = on_the_way
        self._set(PAST)

    def assert_others_queued(self) -> None:
        """When the first racer wrote, others were waiting on its lock: the race happened
        (PostgreSQL's figure: on SQLite they wait on the write lock, which nothing here sees)."""
        if connection.vendor != "sqlite":
            assert self.queued_behind_first, "nobody waited on the lock: no race happened"

    def _set(self, state: str) -> None:
        with self.changed:
            if threading.get_ident() in self.states or state == RUNNING:
                self.states[threading.get_ident()] = state
            self.changed.notify_all()

    def _count(self, state: str) -> int:
        return sum(1 for each in self.states.values() if each == state)


def _lock_waiters() -> int:
    """Connections to this database waiting on a lock in PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh figures inside a transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]
