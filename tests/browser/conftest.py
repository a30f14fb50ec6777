"""Staff flows in a real browser: Debian's headless Chromium driven by Selenium (chromedriver from
the same package; nothing is downloaded at run time), against pytest-django's live server on
the real PostgreSQL and Redis test databases.

Every page a test visits is screenshotted to ``artifacts/browser/`` and checked for console
errors and Content-Security-Policy violations (the browser log, plus a
``securitypolicyviolation`` listener installed before any page script runs).
"""

import base64
import importlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connections

from tests.factories.accounts import PASSWORD, UserFactory

# Debian's packages (`make browser` installs them); CI runners may point at their own Chrome.
CHROMIUM = Path(os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
)
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(
    e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber
  );
});
"""
staff_groups = importlib.import_module("apps.accounts.migrations.0004_staff_groups")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session (a fresh profile); pages share nothing but it."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is not installed: run `make browser` (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CSP_VIOLATIONS})
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # the folder shows the pages of this run only
    ARTIFACTS.mkdir(parents=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _replaced(element) -> bool:
    """Selenium's ``staleness_of``, also for a node Chrome reports as belonging to a document that
    is no longer the page's ("Node with given id does not belong to the document")."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


class StaffBrowser:
    """A staff member at the admin: visits pages as a person would and keeps the evidence."""

    def __init__(self, driver, base_url: str, name: str):
        self.driver = driver
        self.base_url = base_url
        self.name = name
        self.shots = 0
        self.visited: list[str] = []

    # --- navigation ---------------------------------------------------------------------

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.arrived()

    def click(self, text: str) -> None:
        """Click the link or button showing ``text`` and wait for the next page."""
        from selenium.webdriver.common.by import By

        xpath = (
            f"//a[normalize-space()='{text}'] | //input[@type='submit' and @value='{text}'] "
            f"| //button[normalize-space()='{text}']"
        )
        self._then_arrive(lambda: self.driver.find_element(By.XPATH, xpath).click())

    def press(self, css: str) -> None:
        """Click the element ``css`` selects (a button among several with the same text)."""
        self._then_arrive(lambda: self.driver.find_element("css selector", css).click())

    def fill(self, fields: dict[str, str]) -> None:
        from selenium.webdriver.common.by import By

        def fill_all() -> None:
            for name, value in fields.items():
                field = self.driver.find_element(By.NAME, name)
                field.clear()
                field.send_keys(value)

        self._on_the_page(fill_all)

    def _on_the_page(self, operation):
        """Run ``operation`` (find elements, then act on them or read them). If the document was
        replaced between the find and the act, Chrome refuses the element ("Node with given id
        does not belong to the document", or a stale element): the act did not happen, so wait
        for the page to finish loading and run it again on that page, twice at most."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

        for attempt in range(3):
            try:
                return operation()
            except WebDriverException as exc:
                replaced = isinstance(exc, StaleElementReferenceException) or "does not belong to the document" in str(
                    exc
                )
                if not replaced or attempt == 2:
                    raise
                self._loaded()

    def submit(self, button: str) -> None:
        self.click(button)

    def search(self, term: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        def type_and_enter() -> None:
            box = self.driver.find_element(By.ID, "searchbar")
            box.clear()
            box.send_keys(term + Keys.ENTER)

        self._then_arrive(type_and_enter)

    def choose(self, name: str, option: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.driver.find_element("name", name)).select_by_visible_text(option)

    def check(self, value: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, f"input[type=checkbox][value='{value}']").click()

    def _then_arrive(self, action) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        def act():
            page = self.driver.find_element("tag name", "html")
            action()
            return page

        old = self._on_the_page(act)
        WebDriverWait(self.driver, 30).until(lambda _driver: _replaced(old))
        self.arrived()

    def _loaded(self) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def arrived(self) -> None:
        """Every page: fully loaded, screenshotted, no console error, no CSP violation."""
        self._loaded()
        path = self.driver.current_url.removeprefix(self.base_url)
        self.visited.append(path)
        self.shots += 1
        slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:80] or "home"
        self._screenshot(ARTIFACTS / f"{self.name}-{self.shots:02d}-{slug}.png")
        errors = [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        violations = self.driver.execute_script("return window.__cspViolations || []")
        assert not errors, f"console errors on {path}: {errors}"
        assert not violations, f"CSP violations on {path}: {violations}"

    def _screenshot(self, path: Path) -> None:
        """The whole page, not only the window (the order page is long)."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    # --- reading the page -----------------------------------------------------------------

    @property
    def page_source(self) -> str:
        return self.driver.page_source

    @property
    def text(self) -> str:
        return self._on_the_page(lambda: self.driver.find_element("tag name", "body").text)

    def text_of(self, css: str) -> str:
        return self._on_the_page(lambda: self.driver.find_element("css selector", css).text)

    def rows(self, table_css: str) -> list[str]:
        return self._on_the_page(
            lambda: [row.text for row in self.driver.find_elements("css selector", f"{table_css} tbody tr")]
        )

    def has(self, css: str) -> bool:
        return bool(self.driver.find_elements("css selector", css))

    def messages(self) -> list[str]:
        return self._on_the_page(
            lambda: [element.text for element in self.driver.find_elements("css selector", "ul.messagelist li")]
        )

    def action_links(self) -> list[str]:
        links = self.driver.find_elements("css selector", "a.staff-action")
        return [link.get_attribute("textContent").strip() for link in links]  # as written, not as styled

    # --- signing in and out -------------------------------------------------------------

    def sign_in(self, email: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/admin/login/?next=/admin/")
        self.fill({"username": email, "password": PASSWORD})
        self.submit("Log in")
        assert "Site administration" in self.text or "Shop" in self.driver.title, self.text[:300]


@pytest.fixture(autouse=True)
def _events_wait_for_drain(settings):
    """Events wait in the outbox until the test delivers them (``drain``) instead of going to a
    broker no worker listens to here; the delivery itself is the real inbox and handlers."""
    settings.EVENTS_FAST_PATH = False


@pytest.fixture
def staff_browser(chromium, live_server, request):
    """The browser at the live server, named after the test (screenshot file names)."""
    chromium.delete_all_cookies()
    chromium.get_log("browser")  # start each test with an empty log
    return StaffBrowser(chromium, live_server.url, request.node.name.removeprefix("test_")[:60])


@pytest.fixture
def staff_member():
    """A staff user in one of the real staff groups (the data migration's own definitions)."""

    class _Editor:
        connection = connections["accounts"]

    staff_groups.create_groups(django_apps, _Editor())  # a transactional test's flush removed them

    def make(group: str):
        user = UserFactory(staff=True, perms=[], email=f"{group}@shop.example")
        user.groups.add(Group.objects.using("accounts").get(name=group))
        return user

    return make
