"""Production hardening a person would notice: login throttling, what the browser is allowed to
run and keep, and password reset only where email can reach them."""

import importlib
import threading
from collections.abc import Callable
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import clear_url_caches
from playwright.sync_api import Page, sync_playwright

from paylinks.create import create_link
from tests.conftest import PASSWORD, draft_for, make_user
from tests.test_dashboard import WEEK

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def log_in(client: Client, username: str, password: str, url: str = LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def riikka(db):
    return make_user("riikka")


# Login throttling


def test_five_wrong_passwords_pause_logging_in_even_with_the_right_one(client, riikka):
    for _ in range(4):
        response = log_in(client, "riikka", "wrong")
        assert response.status_code == 200
        assert "don't match" in response.content.decode()

    locked = log_in(client, "riikka", "wrong")

    assert locked.status_code == 429
    assert "Logging in is paused" in locked.content.decode()
    assert "for 15 minutes" in locked.content.decode()
    right = log_in(client, "riikka", PASSWORD)
    assert right.status_code == 429
    assert not is_logged_in(client)


def test_the_pause_ends_after_the_cool_off(client, riikka):
    for _ in range(5):
        log_in(client, "riikka", "wrong")
    assert log_in(client, "riikka", PASSWORD).status_code == 429
    # 16 minutes pass (trying again while locked did not restart the wait).
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )

    response = log_in(client, "riikka", PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_the_pause_is_for_one_username_at_one_address(client, riikka):
    make_user("mikko")
    for _ in range(5):
        log_in(client, "riikka", "wrong")

    assert log_in(Client(), "mikko", PASSWORD).status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.0.0.8")
    assert log_in(elsewhere, "riikka", PASSWORD).status_code == 302
    assert log_in(client, "riikka", PASSWORD).status_code == 429


def test_a_successful_login_forgets_the_wrong_passwords_before_it(client, riikka):
    for _ in range(4):
        log_in(client, "riikka", "wrong")
    assert log_in(client, "riikka", PASSWORD).status_code == 302
    client.post("/accounts/logout/")

    for _ in range(4):
        assert log_in(client, "riikka", "wrong").status_code == 200
    assert log_in(client, "riikka", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(client, db):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    for _ in range(5):
        response = log_in(client, "root", "wrong", url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert "Logging in is paused" in response.content.decode()
    assert log_in(client, "root", PASSWORD, url=ADMIN_LOGIN).status_code == 429
    assert not is_logged_in(client)


def test_the_limit_and_the_pause_follow_the_settings(client, riikka, settings):
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_FAILURE_LIMIT = 2
    settings.LOGIN_LOCKOUT_MINUTES = 60
    settings.AXES_COOLOFF_TIME = timedelta(minutes=60)

    assert log_in(client, "riikka", "wrong").status_code == 200
    locked = log_in(client, "riikka", "wrong")

    assert locked.status_code == 429
    assert "After 2 wrong passwords" in locked.content.decode()
    assert "for 60 minutes" in locked.content.decode()


def test_behind_a_proxy_each_caller_is_counted_by_their_own_address(riikka, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    attacker = Client(**proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    # Whatever the attacker writes in X-Forwarded-For, the proxy appends the real address.
    for forged in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"]:
        log_in(attacker, "riikka", "wrong", HTTP_X_FORWARDED_FOR=f"{forged}, 198.51.100.7")
    assert log_in(attacker, "riikka", PASSWORD).status_code == 429

    at_the_desk = Client(**proxy, HTTP_X_FORWARDED_FOR="203.0.113.20")

    assert log_in(at_the_desk, "riikka", PASSWORD).status_code == 302


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client, riikka):
    for number in range(5):
        log_in(client, "riikka", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")

    assert log_in(client, "riikka", PASSWORD).status_code == 429


# Sessions


def test_a_login_ends_with_the_browser_and_after_twelve_hours(client, riikka):
    from django.contrib.sessions.models import Session
    from django.db.models import F

    log_in(client, "riikka", PASSWORD)
    cookie = client.cookies["sessionid"]

    assert (cookie["expires"], cookie["max-age"]) == ("", ""), "a cookie for this browser session"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    signed_in_only = "/accounts/password_change/"
    assert client.get(signed_in_only).status_code == 200
    # Twelve hours pass with the browser open.
    Session.objects.update(expire_date=F("expire_date") - timedelta(hours=12))
    response = client.get(signed_in_only)
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


# Headers


@pytest.fixture
def manager_client(client, manager, synced_practice):
    client.force_login(manager)
    return client


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_pages_may_run_and_style_only_what_paylinks_serves(client, db):
    response = client.get(LOGIN)

    assert directives(response) == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_sandbox_s_inline_stylesheet_gets_through_by_a_fresh_nonce_per_page(client, seeded):
    response = client.get("/sandbox/")

    nonce = directives(response)["style-src"].removeprefix("'self' 'nonce-").removesuffix("'")
    assert len(nonce) >= 16
    assert f'<style nonce="{nonce}">' in response.content.decode()
    assert client.get("/sandbox/")["Content-Security-Policy"] != response["Content-Security-Policy"]


@pytest.mark.parametrize("path", [LOGIN, "/", "/no-such-page/"])
def test_every_response_refuses_camera_microphone_and_the_like(manager_client, path):
    for person in [Client(), manager_client]:
        policy = person.get(path)["Permissions-Policy"]
        for feature in ["camera", "microphone", "geolocation", "payment", "usb"]:
            assert f"{feature}=()" in policy


@pytest.mark.parametrize("path", ["/", "/links/", "/links/follow-up/", "/dashboard/"])
def test_no_page_a_signed_in_person_sees_is_kept_in_a_cache(manager_client, path):
    response = manager_client.get(path)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_csv_export_is_not_kept_in_a_cache(manager_client):
    response = manager_client.get("/dashboard/export.csv", WEEK)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_static_files_stay_cacheable_for_signed_in_people(settings, manager, db):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    client = Client()  # its middleware is loaded on the first request, with these settings
    client.force_login(manager)

    response = client.get("/static/css/app.css")
    response.close()

    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    assert "camera=()" in response["Permissions-Policy"]


class InlineCode(HTMLParser):
    """Collects what a strict Content-Security-Policy would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style" and "nonce" not in names:
            self.found.append("<style> without nonce")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in {"href", "src", "action"} and (value or "").startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def inline_code(response) -> list[str]:
    parser = InlineCode()
    parser.feed(response.content.decode())
    return parser.found


@pytest.fixture
def staff_client(manager, client):
    manager.is_staff = manager.is_superuser = True
    manager.save()
    client.force_login(manager)
    return client


def test_no_page_needs_inline_script_or_style(staff_client, invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist))
    practice = link.practice
    pages = [
        "/",
        f"/?q={invoice.number}",
        f"/invoices/{invoice.provet_id}/",
        "/prepayments/new/",
        f"/links/{link.code}/",
        "/links/",
        "/links/follow-up/",
        "/dashboard/",
        "/admin/",
        "/admin/clinics/practice/",
        f"/admin/clinics/practice/{practice.pk}/change/",
        f"/admin/paylinks/paymentlink/{link.pk}/change/",
        f"/admin/auth/user/{receptionist.pk}/change/",
        "/admin/auth/user/add/",
        "/admin/axes/accessattempt/",
        "/accounts/password_change/",
        "/sandbox/",
        f"/sandbox/{practice.provet_id}/outbox/",
        urlsplit(link.payer_url).path,
    ]
    assert 'class="segno"' in staff_client.get(f"/links/{link.code}/").content.decode()
    for path in pages:
        response = staff_client.get(path)
        assert response.status_code == 200, path
        assert inline_code(response) == [], path
    staff_client.logout()
    assert inline_code(staff_client.get(LOGIN)) == []
    assert inline_code(staff_client.get(ADMIN_LOGIN)) == []


# Password reset


@pytest.fixture
def email(settings):
    """PayLinks' URLs as it starts with EMAIL_URL set (`email(True)`) or not (`email(False)`)."""
    before = settings.PASSWORD_RESET

    def configured(on: bool) -> None:
        settings.PASSWORD_RESET = on
        importlib.reload(importlib.import_module(settings.ROOT_URLCONF))
        clear_url_caches()

    yield configured
    configured(before)


@pytest.fixture
def password_reset(email):
    email(True)


def test_without_email_there_is_no_password_reset(client, db, email):
    email(False)

    assert client.get("/accounts/password_reset/").status_code == 404
    assert "Forgot your password?" not in client.get(LOGIN).content.decode()


def test_with_email_a_forgotten_password_is_reset_from_the_link_in_the_email(
    client, riikka, password_reset
):
    login_page = client.get(LOGIN).content.decode()
    assert '<a href="/accounts/password_reset/">Forgot your password?</a>' in login_page

    response = client.post(
        "/accounts/password_reset/", {"email": "riikka@example.com"}, follow=True
    )

    assert "Check your email" in response.content.decode()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Reset your PayLinks password"
    link = next(line for line in mail.outbox[0].body.splitlines() if "/reset/" in line)
    form = client.get(urlsplit(link).path, follow=True)
    assert "Choose a new password" in form.content.decode()
    new = "a brand new desk password"
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}, follow=True
    )
    assert "Password changed" in done.content.decode()
    assert log_in(client, "riikka", new).status_code == 302


def test_a_reset_for_an_unknown_email_says_the_same_and_sends_nothing(
    client, riikka, password_reset
):
    response = client.post(
        "/accounts/password_reset/", {"email": "nobody@example.com"}, follow=True
    )

    assert "Check your email" in response.content.decode()
    assert mail.outbox == []


# In a real browser


def in_chromium(visit: Callable[[Page], None]) -> list[str]:
    """Run `visit` in Chromium and return what it logged about the Content-Security-Policy.

    Playwright runs in a thread of its own: the browser tests' session keeps its event loop in
    this one, and a second sync Playwright refuses to start beside it.
    """
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    messages: list[str] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                page = browser.new_page()
                page.set_default_timeout(10_000)
                page.on("console", lambda message: messages.append(message.text))
                try:
                    visit(page)
                finally:
                    browser.close()
        except BaseException as error:  # re-raised in the test's thread
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return [message for message in messages if "Content Security Policy" in message]


@pytest.mark.e2e
def test_pages_admin_and_sandbox_work_in_a_browser_under_the_policy(
    live_server, transactional_db, seeded
):
    from clinics.models import Membership
    from clinics.sync import sync_departments
    from paylinks.invoices import refresh_invoice
    from tests.conftest import make_practice, sandbox_invoice

    practice = make_practice(seeded[0], live_server.url)
    sync_departments(practice)
    manager = make_user("mikko", practice, Membership.Role.MANAGER)
    manager.is_staff = manager.is_superuser = True
    manager.save()
    invoice = refresh_invoice(practice, sandbox_invoice(practice).id)
    link = create_link(draft_for(invoice, manager))
    seen: dict[str, str] = {}

    def visit(page: Page) -> None:
        page.goto(f"{live_server.url}{LOGIN}")
        page.get_by_label("Username").fill("mikko")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("button", name="Log out").wait_for()
        seen["htmx"] = page.evaluate("typeof htmx")
        page.get_by_label("Invoice number or client name").fill(invoice.number)
        page.keyboard.press("Enter")
        page.locator("#invoice-results table").wait_for()
        for path in [
            f"/links/{link.code}/",
            "/links/",
            "/dashboard/",
            "/admin/",
            "/admin/auth/user/add/",
            f"/admin/paylinks/paymentlink/{link.pk}/change/",
            f"/sandbox/{practice.provet_id}/outbox/",
        ]:
            page.goto(f"{live_server.url}{path}")
        page.goto(f"{live_server.url}/admin/clinics/practice/{practice.pk}/change/")
        page.get_by_role("button", name="Save", exact=True).click()
        seen["admin"] = page.locator(".messagelist").inner_text()
        page.goto(link.payer_url)
        seen["sandbox card"] = page.locator(".card").first.evaluate(
            "card => getComputedStyle(card).backgroundColor"
        )

    violations = in_chromium(visit)

    assert violations == []
    assert seen["htmx"] == "object"
    assert "was changed successfully" in seen["admin"]
    assert seen["sandbox card"] == "rgb(255, 255, 255)"
