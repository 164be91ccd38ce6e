"""Browser tests: Debian's Chromium driven by Playwright against `live_server`.

The app reaches the Provet sandbox over a real socket (the practice's base URL is the live
server), so every Provet call in these tests is an HTTP request, as in production.
"""

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from clinics.models import Membership, Practice
from clinics.sync import sync_departments
from tests.conftest import make_practice, make_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser(live_server) -> Browser:
    """One Chromium for the session, closed before the live server stops serving it."""
    # No skip when Chromium is missing: a suite that quietly drops its browser tests passes
    # while proving nothing. `make browser` installs it.
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make browser`"
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop in this thread while the browser is open,
        # and Django refuses ORM calls while one runs. The browser tests only use the ORM
        # between browser calls, never from inside the loop; the rest of the suite runs with
        # Django's guard on.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, transactional_db) -> Page:
    """A fresh browser profile; closed (its polling stopped) before the database is emptied."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    expect.set_options(timeout=10_000)
    yield page
    context.close()


@pytest.fixture
def live_practice(transactional_db, seeded, live_server) -> Practice:
    """The first sandbox installation, reached over HTTP at the live server."""
    practice = make_practice(seeded[0], live_server.url)
    sync_departments(practice)
    return practice


@pytest.fixture
def live_receptionist(live_practice):
    return make_user("riikka", live_practice, Membership.Role.RECEPTION)


@pytest.fixture
def live_outsider(transactional_db, seeded, live_server):
    """A receptionist of the second sandbox installation."""
    return make_user("hannah", make_practice(seeded[1], live_server.url), Membership.Role.RECEPTION)
