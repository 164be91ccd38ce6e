"""Which language a person's pages are in: their own choice (Profile.language), else their
browser's (Django's LocaleMiddleware, which runs first).

The choice is copied into the session at login and whenever it changes, so that no page pays a
query to read it."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import translation

from clinics.models import Profile

SESSION_KEY = "paylinks_language"


def remember(request: HttpRequest, language: str) -> None:
    """Use `language` for this session from the next page on ('' for the browser's)."""
    request.session[SESSION_KEY] = language


@receiver(user_logged_in)
def _copy_choice_into_session(sender, request, user, **kwargs) -> None:
    if request is None:  # a test client's force_login
        return
    language = Profile.objects.filter(user=user).values_list("language", flat=True).first()
    remember(request, language or "")


class ProfileLanguageMiddleware:
    """After authentication: the person's own language over the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        language = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if language and translation.check_for_language(language):
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
