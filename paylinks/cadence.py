"""How often a link is looked at: the poller's intervals (DESIGN.md, step 3).

Kept apart from paylinks/polling.py so that `PaymentLink.adopt()` can give every link it makes
active its first check, in the same transaction, without importing the poller.
"""

import datetime as dt

# (age of the link up to, check every): most clients pay within minutes of the message.
INTERVALS = [
    (dt.timedelta(minutes=10), dt.timedelta(seconds=30)),
    (dt.timedelta(hours=1), dt.timedelta(minutes=1)),
    (dt.timedelta(hours=6), dt.timedelta(minutes=5)),
    (dt.timedelta(days=1), dt.timedelta(minutes=15)),
]
OLDEST_INTERVAL = dt.timedelta(hours=1)
# Provet marks a link expired a moment after its expiration time: look once just after.
AFTER_EXPIRY = dt.timedelta(seconds=30)


def interval_for(age: dt.timedelta) -> dt.timedelta:
    return next((every for upto, every in INTERVALS if age < upto), OLDEST_INTERVAL)


def next_check_at(link, now: dt.datetime) -> dt.datetime | None:
    """When the poller should next look at this link, or None when it never needs to."""
    if link.state != "active" or link.cancelled_at:
        return None
    due = now + interval_for(now - link.created_at)
    if link.expires_at is not None:
        last_look = link.expires_at + AFTER_EXPIRY
        if now >= last_look:
            # The last look has been taken and Provet still says pending: ask once an hour
            # rather than never, in case Provet's expiry lags.
            return now + OLDEST_INTERVAL
        due = min(due, last_look)
    return due
