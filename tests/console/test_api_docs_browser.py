"""`/api/docs` in Chromium with every request off loopback refused: the reference draws every operation from this
server alone and obeys its own Content-Security-Policy (no violation with a request body, a list's page and the
schemas open); "Try it out" works with the admin token pasted into Authorize, and, for an editor logged in to the
console, with the session alone, its CSRF token added by docs.js. Screenshots: docs/screenshots/api-docs-<width>.png.

It lives with the console's browser tests to share their one Chromium (`chromium`, session-wide: Playwright's sync
API allows one at a time in a process) and the demo they serve (`console_site`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.console.browser import SCREENSHOTS, WIDTHS, needs_browser

pytestmark = needs_browser

DEMO_TOKEN = "demo-admin-token-change-me"  # examples/demo.toml
WATCH_POLICY = ("window.__violations = [];"
                "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
                "e.violatedDirective + ' ' + e.blockedURI));")


class Offline:
    """A page whose every request off loopback is refused (and noted), with its policy violations and errors."""

    def __init__(self, context: Any) -> None:
        self.refused: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._only_loopback)
        context.add_init_script(WATCH_POLICY)
        self.page = context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _only_loopback(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def operation(self, method: str, path: str) -> Any:
        summary = self.page.locator(".opblock-summary-path", has_text=path)
        return self.page.locator(f".opblock-{method}", has=summary).first

    def execute(self, block: Any, path: str) -> Any:
        """Try it out on an open operation; the answer to it."""
        block.get_by_role("button", name="Try it out").click()
        with self.page.expect_response(lambda r: urlsplit(r.url).path == path) as answered:
            block.get_by_role("button", name="Execute").click()
        return answered.value

    def assert_clean(self) -> None:
        assert self.page.evaluate("window.__violations") == []
        assert self.refused == [] and self.errors == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_reference_works_offline_with_the_admin_token(console_site: Any, chromium: Any, width: int) -> None:
    import httpx

    operations = sum(len(ops) for ops in httpx.get(console_site.url + "/api/openapi.json").json()["paths"].values())
    context = chromium.new_context(viewport={"width": width, "height": 900})
    offline = Offline(context)
    page = offline.page
    page.goto(console_site.url + "/docs")
    assert urlsplit(page.url).path == "/api/docs"
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= operations  # /api/popular shows under two tags

    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input").first.fill(DEMO_TOKEN)
    page.locator(".modal-ux .auth-btn-wrapper button.authorize").first.click()
    page.locator(".modal-ux button.btn-done").first.click()
    sources = offline.operation("get", "/api/sources")
    sources.locator(".opblock-summary-control").click()
    answer = offline.execute(sources, "/api/sources")
    assert answer.status == 200 and answer.json()["items"]
    sources.locator(".live-responses-table").wait_for()

    # A body, a page of a list and the schemas open: whatever Swagger UI draws stays within the page's policy.
    for method, path in [("post", "/api/partners"), ("get", "/api/editions/{edition_id}/deliveries")]:
        block = offline.operation(method, path)
        block.locator(".opblock-summary-control").click()
        block.locator(".responses-table").first.wait_for()
    schema = page.locator(".models article.json-schema-2020-12", has_text="SubscriberPage").first
    schema.get_by_role("button", name="Expand all").click()
    schema.locator(".json-schema-2020-12-property", has_text="next_cursor").first.wait_for()
    offline.assert_clean()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"api-docs-{width}.png"))
    context.close()


def test_a_console_editor_tries_a_change_with_the_session_alone(console_browser: Any) -> None:
    page = console_browser.page("editor")  # logged in through the console's form
    offline = Offline(page.context)
    page = offline.page
    page.goto(console_browser.url + "/api/docs")
    page.wait_for_selector(".opblock")
    preview = offline.operation("post", "/api/alerts/preview")  # records and sends nothing
    preview.locator(".opblock-summary-control").click()
    preview.get_by_role("button", name="Try it out").click()
    preview.locator("textarea.body-param__text").fill(
        '{"subject": "속보 시험", "text": "미리 보기만", "to": "reader.kim@example.com"}')  # a demo reader
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/alerts/preview") as answered:
        preview.get_by_role("button", name="Execute").click()
    answer = answered.value
    assert answer.status == 200, answer.text()
    sent = answer.request.headers
    assert sent["x-csrf-token"] and "gazette_session=" in sent["cookie"]  # the session, and docs.js added its token
    assert "authorization" not in sent and "속보 시험" in answer.json()["subject"]
    offline.assert_clean()
    page.context.close()
