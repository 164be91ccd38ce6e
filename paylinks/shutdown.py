"""Stopping a django-q2 cluster cleanly, whether one process or its whole group gets SIGTERM.

systemd's default, and Ctrl-C or stopping `make run`, signal every process of the group at
once. django-q2 1.11 doesn't survive that: its sentinel dies on the spot, and the main process
then waits forever on an event the dead sentinel still counts as waiting. So in a cluster
started by our `qcluster` command (paylinks/management/commands/qcluster.py):

- the main process takes SIGTERM and SIGINT, raises the shared stop flag, and stops the
  cluster the way django-q2 does on a lone SIGTERM;
- the sentinel and its helpers ignore SIGTERM: the main process stops them in order;
- a worker that gets SIGTERM finishes its task when the flag is up (the group was signalled),
  and exits at once when it isn't (django-q2's guard ending a task past its timeout);
- long tasks look at the flag between steps (`stop_requested`, `wait_or_stop`), so a poll pass
  stops at its next link and the poll task between its ticks.

The flag is shared memory made when this module is imported, before the cluster forks, so every
process of the cluster sees the same one.
"""

import multiprocessing
import os
import signal
import time

_stopping = multiprocessing.RawValue("b", 0)  # lock-free: read inside signal handlers too

# How long a worker that got SIGTERM waits to learn whether the whole group was signalled.
GROUP_SIGNAL_WAIT = 1.0


def stop_requested() -> bool:
    return bool(_stopping.value)


def request_stop() -> None:
    _stopping.value = 1


def wait_or_stop(seconds: float) -> bool:
    """Sleep up to `seconds`; answer True (at once) when the cluster is stopping."""
    deadline = time.monotonic() + seconds
    while not stop_requested():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, 0.2))
    return True


def take_over_main(cluster) -> None:
    """In the cluster's main process, after django-q2 has installed its own handlers."""

    def stop(signum, frame):
        request_stop()
        cluster.sig_handler(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def shield_sentinel() -> None:
    """In the sentinel, before it starts the pusher, the monitor and the workers (they inherit
    it): SIGTERM is ignored, the main process stops them in order."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def guard_worker() -> None:
    """In each worker as it starts (django-q2's `post_spawn`)."""
    signal.signal(signal.SIGTERM, _worker_sigterm)


def _worker_sigterm(signum, frame) -> None:
    deadline = time.monotonic() + GROUP_SIGNAL_WAIT
    while time.monotonic() < deadline:
        if stop_requested():
            return  # the whole cluster is stopping: finish the task, it stops at its next step
        time.sleep(0.05)
    os._exit(1)  # sent to this worker alone: the guard ends a task past its timeout
