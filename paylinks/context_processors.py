from django.db.models import Exists, OuterRef
from django.http import HttpRequest

from clinics.models import Practice
from paylinks.access import SESSION_KEY, practices_for


def practices(request: HttpRequest) -> dict:
    """The practices a person may switch between, for the header, and whether they manage one
    (the Dashboard link), in the one query.

    `practice` is the one they work in (as paylinks.access.current_practice chooses it), for
    pages whose view doesn't say, such as the 403 and 404 pages; a view's own wins."""
    user = request.user
    if not user.is_authenticated:
        return {}
    managed = Practice.objects.managed_by(user).filter(pk=OuterRef("pk"))
    practices = list(practices_for(user).annotate(managed=Exists(managed)))
    manages = any(p.managed for p in practices)
    chosen = request.session.get(SESSION_KEY)
    working_in = next((p for p in practices if str(p.code) == chosen), None)
    return {
        "user_practices": practices,
        "manages_a_practice": manages,
        "practice": working_in or (practices[0] if practices else None),
    }
