"""A person's pages are in their own language, else their browser's (clinics/languages.py),
and amounts, dates and phones are written as that language writes them (clinics/formats.py)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import translation

from clinics import formats, phones
from clinics.models import Profile


def page_language(response) -> str:
    return response.content.decode().split('<html lang="', 1)[1].split('"', 1)[0]


def test_the_browser_s_language_is_used_until_the_person_chooses_one(client, receptionist):
    client.force_login(receptionist)
    response = client.get("/links/", HTTP_ACCEPT_LANGUAGE="fi,en;q=0.5")
    assert page_language(response) == "fi"
    assert response["Content-Language"] == "fi"
    assert page_language(client.get("/links/", HTTP_ACCEPT_LANGUAGE="de")) == "en-gb"


def test_the_switcher_keeps_the_choice_on_the_profile_over_the_browser_s(client, receptionist):
    client.force_login(receptionist)
    response = client.post("/profile/language/", {"language": "sv", "next": "/links/?q=1"})
    assert response.status_code == 302 and response["Location"] == "/links/?q=1"
    assert Profile.objects.get(user=receptionist).language == "sv"
    assert page_language(client.get("/links/", HTTP_ACCEPT_LANGUAGE="fi")) == "sv"
    # A new session (another browser) starts in it too, from the profile, at login.
    client.logout()
    receptionist.set_password("a long enough password")
    receptionist.save()
    client.post(
        "/accounts/login/",
        {"username": receptionist.username, "password": "a long enough password"},
        HTTP_ACCEPT_LANGUAGE="fi",
    )
    assert page_language(client.get("/links/", HTTP_ACCEPT_LANGUAGE="fi")) == "sv"
    # Back to the browser's.
    client.post("/profile/language/", {"language": "", "next": "/links/"})
    assert page_language(client.get("/links/", HTTP_ACCEPT_LANGUAGE="fi")) == "fi"


def test_the_switcher_goes_back_only_to_this_site_and_refuses_unknown_languages(
    client, receptionist
):
    client.force_login(receptionist)
    response = client.post("/profile/language/", {"language": "fi", "next": "https://evil.test/"})
    assert response["Location"] == "/"
    client.post("/profile/language/", {"language": "xx", "next": "/"})
    assert Profile.objects.get(user=receptionist).language == "fi"


def test_the_settings_page_saves_the_weekly_summary_for_a_manager(client, manager, receptionist):
    client.force_login(manager)
    page = client.get("/profile/").content.decode()
    assert 'name="weekly_summary"' in page
    response = client.post("/profile/", {"language": "fi", "weekly_summary": "on"}, follow=True)
    assert response.status_code == 200
    profile = Profile.objects.get(user=manager)
    assert (profile.language, profile.weekly_summary) == ("fi", True)
    client.force_login(receptionist)
    assert 'name="weekly_summary"' not in client.get("/profile/").content.decode()


def test_the_settings_page_wants_a_login(client):
    assert client.get("/profile/")["Location"].startswith("/accounts/login/")


AT = dt.datetime(2025, 3, 14, 10, 41)


@pytest.mark.parametrize(
    ("language", "eur", "gbp", "when", "day"),
    [
        ("en-gb", "€192.81", "£345.58", "14 Mar 2025, 10:41", "14 Mar 2025"),
        ("fi", "192,81\xa0€", "345,58\xa0£", "14.3.2025 10.41", "14.3.2025"),
        ("sv", "192,81\xa0€", "345,58\xa0GBP", "14 mars 2025 10:41", "14 mars 2025"),
    ],
)
def test_amounts_and_dates_are_written_as_the_page_s_language_writes_them(
    language, eur, gbp, when, day
):
    with translation.override(language):
        assert formats.money(Decimal("192.81"), "EUR") == eur
        assert formats.money(Decimal("345.58"), "GBP") == gbp
        assert formats.moment(AT) == when
        assert formats.day(AT) == day


@pytest.mark.parametrize(
    ("number", "country", "shown"),
    [
        ("+358406716444", "FI", "040 671 6444"),
        ("040 6716444", "FI", "040 671 6444"),
        ("+447700900168", "GB", "07700 900168"),
        ("+447700900168", "FI", "+44 7700 900168"),  # a foreign number stays international
        ("not a number", "FI", "not a number"),
        ("", "FI", ""),
    ],
)
def test_phones_are_shown_in_the_practice_country_s_national_format(number, country, shown):
    assert phones.national(number, country) == shown
