from django.http import HttpRequest

from paylinks.access import practices_for


def practices(request: HttpRequest) -> dict:
    """The practices a person may switch between, for the header."""
    if not request.user.is_authenticated:
        return {}
    return {"user_practices": list(practices_for(request.user))}
