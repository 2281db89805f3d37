"""Playwright fixtures shared by the browser tests: Debian's Chromium, a serial live server,
a page signed in as a given user, and screenshots under var/test-artifacts/screenshots/.

tests/web/conftest.py makes the fixtures (`browser`, `page_for`, ...) available to every test
under tests/web; a browser test module sets ``pytestmark = BROWSER_MARKS`` and imports `shot`,
`PASSWORD` or `ARTIFACTS` when it needs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.servers.basehttp import WSGIServer
from django.test.testcases import LiveServerThread

from tests.conftest import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the tests are
    # still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


class SerialWSGIServer(WSGIServer):
    """One request at a time: with SQLite in memory every thread shares one connection."""

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def serial_live_server():
    original = LiveServerThread.server_class
    LiveServerThread.server_class = SerialWSGIServer
    yield
    LiveServerThread.server_class = original


@pytest.fixture
def roles(transactional_roles):
    """transactional_db flushes the tables between tests, the role groups with them."""


@pytest.fixture
def page_for(browser, live_server, roles):
    contexts = []
    # What Chromium refuses under the Content-Security-Policy it reports on the console.
    csp_violations: list[str] = []

    def open_as(user, *, language: str = "zh-hans"):
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale=language)
        context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text and csp_violations.append(message.text)
            ),
        )
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/login/")
        if not (ARTIFACTS / "00-login.png").exists():
            shot(page, "00-login")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit] >> nth=-1")
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert csp_violations == []


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
