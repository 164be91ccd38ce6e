"""Amounts, dates and times as the person reading them writes them: in the language of the page
(Babel's CLDR data). Phone numbers are clinics/phones.py's.

    money(Decimal("192.81"), "EUR")  -> "192,81 €" in Finnish and Swedish, "€192.81" in English

Amounts keep their Decimal; the spaces Babel puts inside an amount are non-breaking, so an
amount never wraps in the middle."""

import datetime as dt
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from django.utils import translation
from django.utils.translation import to_locale


def current_locale() -> Locale:
    """The Babel locale of the active language (en-gb -> en_GB, fi -> fi, sv -> sv)."""
    try:
        return Locale.parse(to_locale(translation.get_language() or "en-gb"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en_GB")


def person(user) -> str:
    """A person as pages and e-mails name them: their full name, else their username; ""
    for nobody."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return ""
    return babel_numbers.format_currency(amount, currency, locale=current_locale())


def number(amount: Decimal | int | None) -> str:
    """A number, or an amount without its currency (a table whose header names it)."""
    if amount is None:
        return ""
    if isinstance(amount, Decimal):
        return babel_numbers.format_decimal(amount, format="#,##0.00", locale=current_locale())
    return babel_numbers.format_decimal(amount, locale=current_locale())


def decimal_separator() -> str:
    return babel_numbers.get_decimal_symbol(current_locale())


def day(value: dt.date | dt.datetime | None) -> str:
    """28 Nov 2026 / 28.11.2026 / 28 nov. 2026"""
    if value is None:
        return ""
    return babel_dates.format_date(value, "medium", locale=current_locale())


def day_month(value: dt.date | dt.datetime | None) -> str:
    """28 Nov / 28.11. / 28 nov."""
    if value is None:
        return ""
    return babel_dates.format_skeleton("MMMd", value, locale=current_locale())


def short_day(value: dt.date | dt.datetime | None) -> str:
    """Sat 28 Nov / la 28.11. / lör 28 nov."""
    if value is None:
        return ""
    return babel_dates.format_skeleton("MMMEd", value, locale=current_locale())


def time(value: dt.datetime | dt.time | None) -> str:
    """10:41 / 10.41"""
    if value is None:
        return ""
    return babel_dates.format_time(value, "short", locale=current_locale())


def moment(value: dt.datetime | None) -> str:
    """A day and a time: 28 Nov, 10:41 / 28.11. klo 10.41 (the year when it isn't this one's)."""
    if value is None:
        return ""
    locale = current_locale()
    # "This year" where the value is read (its own zone), not the server's: on 31 December
    # at 23:30 UTC it is already next year in Helsinki.
    this_year = dt.datetime.now(value.tzinfo).year
    skeleton = "MMMd" if value.year == this_year else "yMMMd"
    date = babel_dates.format_skeleton(skeleton, value, locale=locale)
    # The locale's way of joining a date and a time ("{1}, {0}", Finnish "{1} 'klo' {0}").
    joined = str(locale.datetime_formats["short"]).replace("'", "")
    return joined.format(time(value), date)
