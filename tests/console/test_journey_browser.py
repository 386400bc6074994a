"""The issue's "done when", as a newcomer would do it: `make run`'s demo, the README's account, and without the
command line: log in, add a source and see its articles, preview and send a breaking alert, read an edition's
report, rotate the partner's key. In Korean and in English.

The demo is `examples/demo.toml` as `make run` loads it (its files, its subscribers, its partner), served on
loopback with its scheduler running (sources re-read every second); the new source's feed is served by the test at
127.0.0.2 under the name feeds.example.test, which the app's fetcher counts as public (tests/console/test_sources.py).
"""

from __future__ import annotations

import email as email_message
import mailbox
import re
from datetime import datetime, timedelta, timezone
from email import policy
from typing import Any, Iterator

import httpx
import pytest

from newsletter.settings import load_settings
from tests.conftest import ROOT, ServerThread, demo_config, wait_until
from tests.console.browser import check_page, needs_browser
from tests.console.conftest import cheap_accounts
from tests.console.test_sources import PublicLoopback
from tests.test_fetch import Site, respond

pytestmark = needs_browser

W = {
    "ko": {"email": "이메일", "password": "비밀번호", "login": "로그인", "add": "소스 추가", "test": "저장하지 않고 테스트",
           "stored": "저장될 모습 미리 보기", "save": "저장", "new_alert": "새 속보", "preview": "미리 보기",
           "confirm": r"지금 \d+명에게 보낸다는 것을 확인합니다", "send": "지금 보내기", "done": "완료",
           "counts": "상태별 발송", "rotate": "교체", "key": "키", "revoked": "키를 폐기했습니다."},
    "en": {"email": "Email", "password": "Password", "login": "Log in", "add": "Add a source",
           "test": "Test without saving", "stored": "As it would be stored", "save": "Save", "new_alert": "New alert",
           "preview": "Preview", "confirm": r"I confirm: send it now to \d+ readers?", "send": "Send now",
           "done": "Done", "counts": "Deliveries by state", "rotate": "Rotate", "key": "Key",
           "revoked": "The key is revoked."},
}
TITLES = {"ko": "한빛시, 새 시내버스 노선 개통", "en": "도심 하천 정비 사업 착공"}


def readme_account() -> tuple[str, str]:
    """The demo account exactly as the README prints it."""
    found = re.search(r"log in as \*\*`([^`]+)`\*\* with the\s+password \*\*`([^`]+)`\*\*",
                      (ROOT / "README.md").read_text(encoding="utf-8"))
    assert found, "the README no longer prints the demo account"
    return found.group(1), found.group(2)


def rss(title: str) -> bytes:
    when = (datetime.now(timezone.utc) - timedelta(minutes=5)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>시정 소식</title>'
            f"<link>http://feeds.example.test/</link><description>시정</description><item><title>{title}</title>"
            f"<link>http://feeds.example.test/news/{abs(hash(title))}</link><pubDate>{when}</pubDate>"
            f"<description>{title}. 시가 밝혔다.</description></item></channel></rss>").encode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import service
    from feeds.fetch import HostLimiter, HttpFetcher

    folder = tmp_path_factory.mktemp("journey")
    demo_config(folder)
    services = service.Components(load_settings(folder / "gazette.toml", {"GAZETTE_SCHEDULER_RELOAD": "1s"}))
    services.accounts = cheap_accounts(services)
    services.__dict__["fetcher"] = HttpFetcher(timeout=5, deadline=10, limiter=HostLimiter(4, 0),
                                               resolver=PublicLoopback.resolve, rule=PublicLoopback.rule)
    services.prepare_database(migrate=True)
    services.subscribers.import_csv((ROOT / "examples" / "subscribers.csv").read_text(encoding="utf-8"),
                                    known_categories=[c.slug for c in services.settings.categories],
                                    now=services.clock(), confirmed=True)
    services.subscribers.add("alerts.reader@example.com", categories=["society"], editions=["alerts"],
                             now=services.clock(), confirmed=True, method="admin", consent_text="given elsewhere")
    email, password = readme_account()
    services.accounts.add(email, "admin", password)  # as `make demo` does with `gazette users add`
    feed = Site("127.0.0.2")
    for lang, title in TITLES.items():
        feed.routes[f"/{lang}.xml"] = respond(200, rss(title), Content_Type="application/rss+xml; charset=utf-8")
    with ServerThread(service.create_app(services, services.scheduler_runner())) as server:
        services.send("daily", services.clock().replace(microsecond=0), everyone=True)  # a run to report on
        yield server, services, feed, folder
    feed.close()
    services.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_newcomer_does_the_days_work_in_the_console(demo: Any, chromium: Any, lang: str) -> None:
    server, services, feed, folder = demo
    w, title = W[lang], TITLES[lang]
    page = chromium.new_context(viewport={"width": 1280, "height": 900},
                                locale="ko-KR" if lang == "ko" else "en-US").new_page()

    # Log in with the README's account.
    email, password = readme_account()
    page.goto(f"{server.url}/admin?lang={lang}")
    page.get_by_label(w["email"]).fill(email)
    page.get_by_label(w["password"]).fill(password)
    page.get_by_role("button", name=w["login"]).click()
    page.wait_for_url(re.compile(r".*/admin(\?lang=\w+)?$"))  # back where the login was asked for

    # Add a source, test it, save it, and see its article arrive.
    page.goto(f"{server.url}/admin/sources")
    page.get_by_role("link", name=w["add"]).click()
    page.locator("input[name=name]").fill(f"시정 소식 {lang}")
    page.locator("select[name=kind]").select_option("feed")
    page.locator("input[name=url]").fill(f"http://feeds.example.test:{feed.port}/{lang}.xml")
    page.locator("input[name=interval]").fill("5m")
    page.locator("select[name=category]").select_option("society")
    page.get_by_role("button", name=w["test"]).click()
    assert page.get_by_role("heading", name=w["stored"]).is_visible()
    assert page.get_by_role("heading", name=title).is_visible()
    page.get_by_role("button", name=w["save"], exact=True).click()
    page.wait_for_url("**/admin/sources?flash=*")
    wait_until(lambda: any(a.title == title for a in services.store.articles(limit=200)), 30,
               message="the running scheduler did not fetch the new source")
    page.goto(f"{server.url}/admin/articles")
    assert page.get_by_role("link", name=title).first.is_visible()

    # Preview and send a breaking alert about it; read its report; the reader who asked for alerts has it.
    page.goto(f"{server.url}/admin/alerts")
    assert page.get_by_role("heading", name=w["new_alert"]).is_visible()
    page.get_by_label(title).check()
    page.get_by_role("button", name=w["preview"], exact=True).click()
    page.frame_locator("iframe.preview").get_by_role("heading", name=title).wait_for()  # the framed mail loaded
    page.get_by_label(re.compile(w["confirm"])).check()
    page.get_by_role("button", name=w["send"]).click()
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+.*"))

    def done() -> bool:
        page.reload()
        return page.locator("#status").inner_text().strip() == w["done"]

    wait_until(done, 30, interval=0.3, message="the alert was not sent")
    box = mailbox.Maildir(str(folder / "outbox"), create=False)
    subjects = [str(email_message.message_from_bytes(box.get_bytes(key), policy=policy.default)["Subject"])
                for key in box.keys()]
    assert f"[속보] {title}" in subjects

    # An edition's report.
    page.goto(f"{server.url}/admin/editions")
    page.locator("a[href^='/admin/editions/']").filter(has_text=re.compile(r"#\d+$")).first.click()
    assert page.get_by_role("heading", name=w["counts"]).is_visible()

    # Rotate the partner's key: a new key shown once, the old one revoked.
    page.goto(f"{server.url}/admin/partners/portal")
    page.get_by_role("button", name=w["rotate"]).first.click()
    new_key = page.get_by_label(w["key"], exact=True).input_value()
    page.get_by_role("button", name=re.compile(r"^(키 #\d+ 폐기|Revoke key #\d+)$")).click()
    page.get_by_text(w["revoked"]).wait_for()
    partner_feed = f"{server.url}/partners/portal/feeds/politics.json"
    assert httpx.get(partner_feed, headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    check_page(page)
    page.context.close()
