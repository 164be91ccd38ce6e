"""The --practice option the commands share."""

from django.core.management.base import CommandError

from clinics.models import Practice


def practice_named(value: str) -> Practice:
    """The practice called `value`, or with `value` as its Provet id."""
    matches = Practice.objects.filter(name=value)
    if value.isdecimal():
        matches = matches | Practice.objects.filter(provet_id=int(value))
    practice = matches.first()
    if practice is None:
        raise CommandError(f"No practice is called {value!r}")
    return practice
