"""The weekly summary e-mail: what happens on Monday morning for a manager who asked for it.

Every hour (paylinks/schedules.py) `send_weekly_summaries` looks for people who ticked
`Profile.weekly_summary`. When it is Monday between 07:00 and 10:00 in the time zone of a
practice they manage, they get one e-mail with the week just ended (Monday to Sunday) of every
practice they manage, and nothing of the others: per practice the links sent, paid (count and
amount), collected by payment date, outstanding, expired unpaid and recovered by follow-ups, the
very figures of the dashboard for that week (reports/figures.py), with an absolute link to it.

One e-mail per person per week, however many workers run the hour at once: the e-mail is sent
inside a transaction that first claims the week with a conditional UPDATE of
`Profile.weekly_summary_sent_for` ("the week starting `monday`, unless already claimed"). A rival
worker's UPDATE waits for that transaction and then finds the week taken; if sending fails, the
claim is rolled back with it and the next hour tries again. The mail goes out through Django's
EMAIL_BACKEND (EMAIL_URL in config/settings.py).
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from clinics import formats
from clinics.models import Practice, Profile
from paylinks.access import managed_practices
from reports import figures

logger = logging.getLogger(__name__)

# Monday morning in the practice's time zone: the hours in which the e-mail may go.
SEND_FROM = dt.time(7)
SEND_UNTIL = dt.time(10)


def site_url() -> str:
    """settings.PAYLINKS_SITE_URL, without a trailing slash."""
    url = settings.PAYLINKS_SITE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(
            f"PAYLINKS_SITE_URL must be an http(s) address such as https://paylinks.example, "
            f"not {url!r}"
        )
    return url.rstrip("/")


def week_to_send(practice: Practice, now: dt.datetime) -> dt.date | None:
    """The Monday that starts the week just ended, when it is Monday morning at the practice;
    None at any other time."""
    local = now.astimezone(practice.zone)
    if local.weekday() != 0 or not (SEND_FROM <= local.time() < SEND_UNTIL):
        return None
    return local.date() - dt.timedelta(days=7)


def claim_week(profile: Profile, monday: dt.date) -> bool:
    """Mark the week as summarised to this person, unless it already is (by a rival worker
    too): True when this call claimed it. Inside the sending transaction."""
    not_yet = Q(weekly_summary_sent_for__isnull=True) | Q(weekly_summary_sent_for__lt=monday)
    claimed = Profile.objects.filter(not_yet, pk=profile.pk, weekly_summary=True).update(
        weekly_summary_sent_for=monday
    )
    return claimed == 1


def send_weekly_summaries(now: dt.datetime | None = None) -> int:
    """The hourly task: send the week's summary to everyone it is due to; answer how many."""
    if not settings.SENDS_EMAIL:
        return 0  # production without EMAIL_URL: nobody can be sent anything
    now = now or timezone.now()
    profiles = (
        Profile.objects.filter(weekly_summary=True, user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
        .order_by("pk")
    )
    sent = 0
    for profile in profiles:
        try:
            sent += send_weekly_summary(profile, now)
        except Exception:
            # Not claimed (rolled back): the next hour tries again. The others still get theirs.
            logger.exception("weekly summary to user %s failed", profile.user_id)
    return sent


def send_weekly_summary(
    profile: Profile,
    now: dt.datetime,
    claim: Callable[[Profile, dt.date], bool] = claim_week,
) -> bool:
    """Send this person the week's summary if it is due and not yet sent; True if sent."""
    practices = list(managed_practices(profile.user).order_by("name", "pk"))
    weeks = {week_to_send(practice, now) for practice in practices} - {None}
    if not weeks:
        return False
    monday = max(week for week in weeks if week is not None)
    if profile.weekly_summary_sent_for == monday:
        return False
    # Built before the claim's transaction: on SQLite that transaction holds the write lock,
    # so only the claim and the send (which undoes the claim if it fails) are inside it.
    message = summary_message(profile, practices, monday)
    with transaction.atomic():
        if not claim(profile, monday):
            return False
        message.send()
    logger.info("weekly summary of %s sent to user %s", monday, profile.user_id)
    return True


@dataclass
class PracticeWeek:
    """One practice's part of the e-mail."""

    practice: Practice
    board: figures.Dashboard
    url: str


def summary_message(
    profile: Profile, practices: list[Practice], monday: dt.date
) -> EmailMultiAlternatives:
    """The e-mail, plain text and HTML, in the person's language."""
    user = profile.user
    sunday = monday + dt.timedelta(days=6)
    language = profile.language or settings.LANGUAGE_CODE
    with translation.override(language):
        weeks = [_practice_week(practice, monday, sunday) for practice in practices]
        week = _("%(first)s – %(last)s") % {
            "first": formats.day_month(monday),
            "last": formats.day(sunday),
        }
        context = {
            "name": formats.person(user),
            "week": week,
            "weeks": weeks,
            "site_url": site_url() + "/",
            "language": language,
        }
        subject = _("PayLinks: your week %(week)s") % {"week": week}
        text = render_to_string("reports/email/weekly_summary.txt", context)
        html = render_to_string("reports/email/weekly_summary.html", context)
    message = EmailMultiAlternatives(subject, text, to=[user.email])
    message.attach_alternative(html, "text/html")
    return message


def _practice_week(practice: Practice, monday: dt.date, sunday: dt.date) -> PracticeWeek:
    period = figures.Period("custom", monday, sunday, practice.zone)
    query = {
        "practice": str(practice.code),
        "period": "custom",
        "start": monday.isoformat(),
        "end": sunday.isoformat(),
    }
    url = f"{site_url()}{reverse('reports:dashboard')}?{urlencode(query)}"
    return PracticeWeek(practice=practice, board=figures.build(practice, period), url=url)
