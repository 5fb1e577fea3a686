"""What the browser tests share (loaded as a pytest plugin by conftest.py): the system Chromium driven by
Playwright against the live test server (every request to another host and every console error recorded),
screenshots as artefacts, signing in."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("WEB_SCREENSHOTS_DIR") or ROOT / "frontend" / "screenshots")
DIST = ROOT / "frontend" / "dist" / "index.html"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's

needs_browser = [
    pytest.mark.skipif(CHROMIUM is None, reason="the system Chromium is missing (scripts/lib.sh installs it)"),
    pytest.mark.skipif(not DIST.exists(), reason="the web app is not built (scripts/lib.sh frontend_build)"),
    pytest.mark.timeout(240),
]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for visible state, never a sleep; 5 s (Playwright's default) is short on a busy 2-core host.
    expect.set_options(timeout=20_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.outside, page.problems = [], []
        ours = (live_server.url, "data:", "blob:")
        page.on("request", lambda r: r.url.startswith(ours) or page.outside.append(r.url))
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        context.close()
        browser.close()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def sign_in(page, url, username, password=PASSWORD):
    from playwright.sync_api import expect

    page.goto(f"{url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Knowledge bases")).to_be_visible()


def assert_clean(page):
    """Nothing was fetched from another host and the Content-Security-Policy blocked nothing."""
    assert page.outside == [], f"requests to other hosts: {page.outside}"
    assert not [p for p in page.problems if "Content Security Policy" in p], page.problems
