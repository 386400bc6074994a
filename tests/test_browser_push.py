"""The Web Push snippet in Chromium: a newsroom page on one origin with the snippet of Gazette on another, as the
docs tell a newsroom to set it up (the service worker copied to the newsroom's site).

What a headless Chromium can show: the button and the sections drawn from Gazette's configuration; a click asking
for the permission (refused by default in headless mode: the page says so; granted through the context's permissions
API: the service worker registered, `navigator.serviceWorker.ready` with the site's scope); and the browser's own CORS
preflight and POST of a subscription from the newsroom's origin, taken by Gazette. Headless Chromium has no push
service (no FCM), so `pushManager.subscribe` itself cannot succeed here: the push path is tested against the loopback
push service in tests/test_web_push.py. Screenshots go to docs/screenshots/push-*.png.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from newsletter.settings import load_settings
from tests.conftest import ServerThread, migrated_sqlite_url, wait_until, write_config
from tests.console.browser import (
    SCREENSHOTS,
    launched_chromium,
    needs_browser,
)
from tests.push_service import PushService
from tests.test_web_push import SUBJECT, push_config

pytestmark = needs_browser


class Later:
    """An ASGI app set after its server's port is known (Gazette's base_url must name that port)."""

    app = None

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await self.app(scope, receive, send)  # type: ignore[misc]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(the newsroom's URL, Gazette's URL, Gazette's components)."""
    import service

    tmp_path = tmp_path_factory.mktemp("push")
    files: dict[str, bytes] = {}
    newsroom = ServerThread(Starlette(routes=[
        Route("/", lambda request: HTMLResponse(files["page"].decode())),
        Route("/gazette-sw.js", lambda request: Response(files["sw"], media_type="text/javascript")),
    ]))
    later = Later()
    gazette = ServerThread(later)
    section, _ = push_config(tmp_path, insecure=False, extra=f'origins = ["{newsroom.url}"]')
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), extra=section)
    services = service.Components(load_settings(config, {"GAZETTE_SITE_BASE_URL": gazette.url}))
    services.prepare_database(migrate=True)
    later.app = service.create_app(services)
    with gazette:
        files["sw"] = httpx.get(f"{gazette.url}/push/sw.js").content  # "copy it to the newsroom site"
        files["page"] = f"""<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>한빛일보</title>
<style>body {{ font-family: sans-serif; margin: 2rem; }} fieldset {{ margin-bottom: 1rem; }}</style></head>
<body><h1>한빛일보</h1>
<div id="gazette-push" data-lang="ko" data-sw="/gazette-sw.js"></div>
<script src="{gazette.url}/push/subscribe.js" defer></script></body></html>""".encode()
        with newsroom:
            yield newsroom.url, gazette.url, services
    services.close()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with launched_chromium() as browser:
        yield browser


def test_the_button_asks_for_permission_only_on_click_and_says_when_it_is_refused(sites, browser) -> None:  # type: ignore[no-untyped-def]
    newsroom, _, services = sites
    context = browser.new_context(viewport={"width": 480, "height": 640}, locale="ko-KR")
    page = context.new_page()
    page.goto(f"{newsroom}/")
    button = page.get_by_role("button", name="속보 알림 받기")
    button.wait_for()
    assert page.get_by_label("정치").is_visible() and page.get_by_label("경제").is_visible()
    assert page.evaluate("Notification.permission") == "default"  # nothing asked on load
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    page.screenshot(path=str(SCREENSHOTS / "push-button.png"), full_page=True)
    button.click()
    page.get_by_text("브라우저에서 알림이 차단되어 있습니다").wait_for()  # headless answers the prompt "no"
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    assert services.push_store.count() == 0
    context.close()


def test_with_permission_the_service_worker_is_registered_on_the_sites_scope(sites, browser) -> None:  # type: ignore[no-untyped-def]
    newsroom, _, services = sites
    context = browser.new_context(viewport={"width": 480, "height": 640}, locale="ko-KR")
    context.grant_permissions(["notifications"], origin=newsroom)
    page = context.new_page()
    page.goto(f"{newsroom}/")
    page.get_by_label("정치").check()
    page.get_by_role("button", name="속보 알림 받기").click()
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{newsroom}/"
    assert page.evaluate("Notification.permission") == "granted"
    assert page.evaluate("navigator.serviceWorker.controller === null || "
                         "navigator.serviceWorker.controller.scriptURL") in (True, f"{newsroom}/gazette-sw.js")
    # Then pushManager.subscribe: headless Chromium has no push service to register with, so it fails and the page
    # says so; where it succeeds (a headed browser with a push service), the subscription reaches Gazette.
    wait_until(lambda: page.locator("#gazette-push [role=status]").inner_text(), timeout=30)
    status = page.locator("#gazette-push [role=status]").inner_text()
    if status == "이 브라우저로 속보 알림을 보내 드립니다.":
        assert services.push_store.count() == 1
    else:
        assert status == "알림 신청을 마치지 못했습니다. 잠시 후 다시 시도해 주세요."
        assert page.locator("#gazette-push").get_attribute("data-error")
    page.screenshot(path=str(SCREENSHOTS / "push-after-click.png"), full_page=True)
    context.close()


def test_the_browser_posts_a_subscription_across_origins_with_its_preflight(sites, browser) -> None:  # type: ignore[no-untyped-def]
    """What the snippet posts after `pushManager.subscribe`, sent by Chromium itself from the newsroom's page: the
    CORS preflight passes for this origin, and Gazette keeps the subscription. From a page of another origin the
    browser refuses to send it."""
    newsroom, gazette, services = sites
    before = services.push_store.count()
    made = PushService("unused", SUBJECT)
    made.url = "https://fcm.googleapis.com/fcm/send"
    subscription = made.browser("chromium").subscription()
    script = """async ([url, subscription]) => {
        const r = await fetch(url + "/push/subscriptions", {method: "POST", mode: "cors", credentials: "omit",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({subscription, categories: ["politics"], lang: "ko", zone: "Asia/Seoul"})});
        return [r.status, await r.json()];
    }"""
    page = browser.new_page()
    page.goto(f"{newsroom}/")
    status, answer = page.evaluate(script, [gazette, subscription])
    assert status == 201 and answer == {"subscribed": True, "categories": ["politics"]}
    assert services.push_store.count() == before + 1
    page.close()

    elsewhere = ServerThread(Starlette(routes=[Route("/", lambda request: HTMLResponse("<p>another site</p>"))]))
    with elsewhere:
        page = browser.new_page()
        page.goto(f"{elsewhere.url}/")
        refused = page.evaluate(f"""async ([url, subscription]) => {{
            try {{ await ({script})([url, subscription]); return "sent"; }} catch (e) {{ return "blocked"; }}
        }}""", [gazette, {**subscription, "endpoint": subscription["endpoint"] + "-2"}])
        assert refused == "blocked"
        page.close()
    assert services.push_store.count() == before + 1
