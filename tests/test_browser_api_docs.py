"""`/api/docs` in Chromium with every request off loopback refused: the reference draws every operation from this
server alone, obeys its own Content-Security-Policy (no violation with a request body, a list's page and the schemas
open), and "Try it out" with the admin token answers. Screenshots: docs/screenshots/api-docs-<width>.png.
"""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from newsletter.settings import load_settings
from tests.conftest import Clock, ServerThread, write_config
from tests.security.conftest import EXTRA, stored_article
from tests.test_browser import CHROMIUM, SCREENSHOTS, _skip_reason

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

TOKEN = "admin-token-0123456789"
WATCH_POLICY = ("window.__violations = [];"
                "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
                "e.violatedDirective + ' ' + e.blockedURI));")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import service

    from tests.conftest import NOW

    folder = tmp_path_factory.mktemp("api-docs")
    settings = load_settings(write_config(folder / "gazette.toml", database_url=f"sqlite:///{folder / 'g.db'}",
                                          mail_url=f"maildir://{folder / 'outbox'}", extra=EXTRA), {})
    services = service.Components(settings, clock=Clock())
    services.prepare_database(migrate=True)
    services.store.upsert_articles([stored_article(n) for n in (1, 2, 3)], source_id=None, now=NOW)
    with ServerThread(service.create_app(services)) as running:
        yield running
    services.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.mark.parametrize("width", [375, 1280])
def test_the_reference_works_offline(server: Any, browser: Any, width: int) -> None:
    import httpx

    operations = sum(len(ops) for ops in httpx.get(server.url + "/api/openapi.json").json()["paths"].values())
    context = browser.new_context(viewport={"width": width, "height": 900})
    refused: list[str] = []
    errors: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    context.add_init_script(WATCH_POLICY)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(server.url + "/docs")
    assert urlsplit(page.url).path == "/api/docs"
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= operations  # /api/popular shows under two tags
    assert page.locator(".opblock-summary-path", has_text="/api/subscribers").count() >= 1

    # Try it out with the admin token.
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input").first.fill(TOKEN)
    page.locator(".modal-ux .auth-btn-wrapper button.authorize").first.click()
    page.locator(".modal-ux button.btn-done").first.click()
    sources = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/sources"))
    sources.first.locator(".opblock-summary-control").click()
    sources.first.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/sources") as answered:
        sources.first.get_by_role("button", name="Execute").click()
    assert answered.value.status == 200 and answered.value.json()["next_cursor"] is None
    sources.first.locator(".live-responses-table").wait_for()

    # A body, a page of a list and the schemas open: whatever Swagger UI draws stays within the page's policy.
    for method, path in [("post", "/api/partners"), ("get", "/api/editions/{edition_id}/deliveries")]:
        block = page.locator(f".opblock-{method}", has=page.locator(".opblock-summary-path", has_text=path))
        block.first.locator(".opblock-summary-control").click()
        block.first.locator(".responses-table").wait_for()
    schema = page.locator(".models article.json-schema-2020-12", has_text="SubscriberPage").first
    schema.get_by_role("button", name="Expand all").click()
    schema.locator(".json-schema-2020-12-property", has_text="next_cursor").first.wait_for()
    assert page.evaluate("window.__violations") == []
    assert refused == [] and errors == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"api-docs-{width}.png"))
    context.close()
