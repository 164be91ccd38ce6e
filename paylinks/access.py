"""Who sees what: every page, query and action is scoped by the person's memberships."""

from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from clinics.models import Practice
from config.logs import PRACTICE_SESSION_KEY as SESSION_KEY
from config.logs import bind
from paylinks.models import PaymentLink, PaymentLinkQuerySet


def practices_for(user) -> QuerySet[Practice]:
    return Practice.objects.for_user(user).filter(is_active=True)


def managed_practices(user) -> QuerySet[Practice]:
    """The active practices the person manages (PracticeQuerySet.managed_by)."""
    return Practice.objects.filter(is_active=True).managed_by(user)


def current_practice(request: HttpRequest) -> Practice:
    """The practice the person is working in: the one they chose, else their first."""
    practices = practices_for(request.user)
    chosen = request.session.get(SESSION_KEY)
    practice = (chosen and practices.filter(code=chosen).first()) or practices.first()
    if practice is None:
        raise Http404("You are not a member of any practice yet. Ask an admin to add you.")
    bind(practice=str(practice.code))  # on the request's log lines
    return practice


def links_for(user) -> PaymentLinkQuerySet:
    return PaymentLink.objects.with_replaced().filter(practice__in=practices_for(user))
