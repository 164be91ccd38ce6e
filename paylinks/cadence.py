"""How often a link is looked at: the poller's intervals (DESIGN.md, step 3).

Kept apart from paylinks/polling.py so that `PaymentLink.adopt()` can give every link it makes
active its first check, in the same transaction, without importing the poller.
"""

import datetime as dt

# (age of the link up to, check every), then the oldest links' interval. A prepayment link's
# payment is found only by its own checks, and most clients pay within minutes of the message.
INTERVALS = [
    (dt.timedelta(minutes=10), dt.timedelta(seconds=30)),
    (dt.timedelta(hours=1), dt.timedelta(minutes=1)),
    (dt.timedelta(hours=6), dt.timedelta(minutes=5)),
    (dt.timedelta(days=1), dt.timedelta(minutes=15)),
]
OLDEST_INTERVAL = dt.timedelta(hours=1)
# An invoice link's payment shows in Provet's invoice feed, which every poll pass reads
# (paylinks/polling.py), so its own checks are for its delivery status while it is young and,
# after that, a safety net for a change the feed missed.
INVOICE_INTERVALS = [
    (dt.timedelta(minutes=10), dt.timedelta(minutes=3)),
    (dt.timedelta(days=1), dt.timedelta(hours=3)),
]
OLDEST_INVOICE_INTERVAL = dt.timedelta(hours=6)
# Provet marks a link expired a moment after its expiration time: look once just after.
AFTER_EXPIRY = dt.timedelta(seconds=30)


def interval_for(age: dt.timedelta, on_invoice: bool) -> dt.timedelta:
    if on_invoice:
        return next(
            (every for upto, every in INVOICE_INTERVALS if age < upto), OLDEST_INVOICE_INTERVAL
        )
    return next((every for upto, every in INTERVALS if age < upto), OLDEST_INTERVAL)


def next_check_at(link, now: dt.datetime) -> dt.datetime | None:
    """When the poller should next look at this link, or None when it never needs to."""
    if link.state != "active" or link.cancelled_at:
        return None
    due = now + interval_for(now - link.created_at, link.invoice_id is not None)
    if link.expires_at is not None:
        last_look = link.expires_at + AFTER_EXPIRY
        if now >= last_look:
            # The last look has been taken and Provet still says pending: ask once an hour
            # rather than never, in case Provet's expiry lags.
            return now + OLDEST_INTERVAL
        due = min(due, last_look)
    return due
