"""The console in Chromium: the demo site served on loopback with one account per role, pages logged in through the
login form, an accessibility check with axe-core, and screenshots for docs/screenshots/.

Fixtures (`console_site`, `chromium`, `console_browser`) are in tests/console/conftest.py; a browser test module
marks itself with `pytestmark = needs_browser`, which skips with the reason where Chromium, a Korean font or
Playwright is missing. The accessibility check needs axe-core (tests/js, installed by `make test` with npm); without
it `check_page` skips and says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (375, 1280)


def browser_skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Chromium is not installed (apt-get install chromium; make test does it as root)"
    fonts = subprocess.run(["fc-list", ":lang=ko"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    if not fonts.strip():
        return "no Korean font: every Korean glyph would be a box (apt-get install fonts-nanum)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


needs_browser = pytest.mark.skipif(browser_skip_reason() is not None, reason=browser_skip_reason() or "")


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Headless Chromium for one test module (each module's `browser`/`chromium` fixture): Playwright's sync API
    keeps an event loop in this thread while it runs, which later tests' `asyncio.run` would meet."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@dataclass
class ConsoleBrowser:
    """Opens console pages in Chromium as a given role, language and width."""

    browser: Any
    url: str
    accounts: dict[str, str]
    password: str
    sessions: dict[str, Any]  # role -> the cookies of a login made earlier (the site's, shared by the tests)

    def page(self, role: str = "admin", *, width: int = 1280, lang: str = "ko", fresh: bool = False) -> Any:
        """A page logged in as `role` at /admin. One login per role is made through the form and kept for the next
        tests (the login form allows ten attempts per client address in five minutes, and every test comes from
        127.0.0.1); `fresh` logs in anew and keeps nothing, for a test that ends its session."""
        options = {"viewport": {"width": width, "height": 900}, "locale": "ko-KR" if lang == "ko" else "en-US"}
        if not fresh and role in self.sessions:
            page = self.browser.new_context(storage_state=self.sessions[role], **options).new_page()
            page.goto(f"{self.url}/admin?lang={lang}")
            if page.url.startswith(f"{self.url}/admin?"):
                return page
            page.context.close()  # that session ended (idle, or logged out): log in again
        page = self.browser.new_context(**options).new_page()
        page.goto(f"{self.url}/admin/login?lang={lang}")
        page.get_by_label("이메일" if lang == "ko" else "Email").fill(self.accounts[role])
        page.get_by_label("비밀번호" if lang == "ko" else "Password").fill(self.password)
        page.get_by_role("button", name="로그인" if lang == "ko" else "Log in").click()
        page.wait_for_url(f"{self.url}/admin")
        if not fresh:
            self.sessions[role] = page.context.storage_state()
        return page


def check_page(page: Any, name: str | None = None) -> None:
    """What every console page must be: nothing overflowing sideways, no serious or critical axe-core violation;
    and, given a `name`, a full-page screenshot `docs/screenshots/console-<name>-<width>.png`."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page overflows sideways"
    if name is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"console-{name}-{width}.png"), full_page=True)
    if not AXE.exists():
        pytest.skip(reason="axe-core is not installed (npm ci --prefix tests/js; make test does it where npm exists)")
    # Evaluated through the DevTools protocol, which the page's Content-Security-Policy (no scripts) does not govern.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    serious = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                "nodes": [n["html"][:200] for n in v["nodes"][:3]]}
               for v in found if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, ensure_ascii=False, indent=1)
