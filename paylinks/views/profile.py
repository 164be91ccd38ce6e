"""A person's own settings: the language of their pages (also the top bar's switcher) and the
weekly summary e-mail."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from clinics.languages import remember
from clinics.models import Profile
from paylinks.views.going_back import page_to_go_back_to

BROWSER = ("", gettext_lazy("The browser's language"))


class ProfileForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = ["language", "weekly_summary"]
        widgets = {"language": forms.Select(choices=[BROWSER, *settings.LANGUAGES])}


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=[BROWSER, *settings.LANGUAGES], required=False)


def _switch_to(request: HttpRequest, language: str) -> None:
    remember(request, language)
    translation.activate(language or translation.get_language_from_request(request))


@login_required
def profile_page(request: HttpRequest) -> HttpResponse:
    profile, _created = Profile.objects.get_or_create(user=request.user)
    form = ProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        _switch_to(request, profile.language)
        messages.success(request, _("Your settings are saved."))
        return redirect("profile")
    return render(request, "profile.html", {"form": form, "sends_email": settings.SENDS_EMAIL})


@login_required
@require_POST
def set_language(request: HttpRequest) -> HttpResponseRedirect:
    """The top bar's switcher: the chosen language, kept on the person's profile."""
    form = LanguageForm(request.POST)
    if form.is_valid():
        language = form.cleaned_data["language"]
        Profile.objects.update_or_create(user=request.user, defaults={"language": language})
        _switch_to(request, language)
    return HttpResponseRedirect(page_to_go_back_to(request) or "/")
