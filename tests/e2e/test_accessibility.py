"""axe-core in Chromium on every staff page, in every language: no serious or critical
violations (issue 13). axe.min.js comes from npm (`make axe`)."""

from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Browser, Page

from clinics.models import Membership, Profile
from tests.conftest import make_user
from tests.e2e.test_reception import log_in, textable_invoice
from tests.test_dashboard import make_link

pytestmark = pytest.mark.e2e

AXE = Path(settings.BASE_DIR) / ".venv" / "axe-core" / "axe.min.js"
LANGUAGES = [code for code, _name in settings.LANGUAGES]
SERIOUS = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`);
}"""


@pytest.fixture
def axe_page(browser: Browser, transactional_db) -> Page:
    """A browser profile that may run axe despite the pages' Content-Security-Policy."""
    assert AXE.exists(), f"{AXE} is missing: run `make axe`"
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def serious_violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(SERIOUS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_staff_page_has_a_serious_accessibility_violation(
    axe_page, live_server, live_practice, language
):
    manager = make_user("mikko", live_practice, Membership.Role.ADMIN)
    manager.is_staff = manager.is_superuser = True
    manager.save()
    department = live_practice.departments.filter(allow_nhp_processing=True).first()
    now = timezone.now()
    paid = make_link(live_practice, department, manager, created=now, paid=now)
    membership = Membership.objects.get(user=manager)
    invoice = textable_invoice(live_practice)
    log_in(axe_page, live_server, manager)
    # The top bar's switcher, as a person would use it: the page comes back in that language.
    axe_page.locator("#language-switch").select_option(language)
    axe_page.wait_for_function(f"document.documentElement.lang === {language!r}")
    assert Profile.objects.get(user=manager).language == language
    pages = [
        "/",
        "/links/",
        "/links/follow-up/",
        f"/invoices/{invoice.pk}/",
        "/prepayments/new/",
        f"/links/{paid.code}/",
        "/dashboard/",
        "/profile/",
        f"/admin/clinics/practice/{live_practice.pk}/change/",
        f"/admin/clinics/membership/{membership.pk}/change/",
        "/admin/clinics/membership/add/",
        "/links/no-such-page/",  # the 404 page
    ]
    found = {}
    for path in pages:
        axe_page.goto(f"{live_server.url}{path}")
        assert axe_page.locator("html").get_attribute("lang") == language, path
        if violations := serious_violations(axe_page):
            found[path] = violations
    assert found == {}
