"""Breaking alerts by Web Push, against a push service on loopback (tests/push_service.py) that verifies the VAPID JWT
and decrypts every push (RFC 8291) with the keys of browsers made in the test, and a real SMTP server for the mail.

Browsers subscribe through the public route (`POST /push/subscriptions`, in-process); alerts go out through the
`AlertDesk` the console and the API call. What is proved: an alert reaches each following browser once and each mail
reader who asked for alerts once, however often the send runs, and after a run cut short; 404/410 remove a
subscription; 429 is retried by the `push:due` job; the night rule holds an alert with advertising; the rate holds;
the key, the subject and the CLI.
"""

from __future__ import annotations

import stat
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from feeds.core.errors import ConfigError
from newsletter.alerts import AlertDraft
from newsletter.push_keys import new_vapid_key, pem_of, public_key_of, write_vapid_key
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    Clock,
    InProcessClient,
    migrated_sqlite_url,
    run_gazette,
    wait_until,
    write_config,
)
from tests.push_service import Browser, LoopbackPushService, PushService
from tests.test_alerts import ADMIN, add

SUBJECT = "mailto:newsroom@example.com"
ORIGIN = {"Origin": "https://news.example.com"}


def push_config(tmp_path: Path, *, rate: float = 1000, extra: str = "", insecure: bool = True,
                admin: bool = True) -> tuple[str, str]:
    """A [push] section with a fresh key (and [admin], unless the caller has one); (the sections, the public key)."""
    key = new_vapid_key()
    write_vapid_key(tmp_path / "vapid.pem", key)
    section = ('\n[admin]\ntoken = "admin-token-0123456789"\n' if admin else "") + f"""
[push]
vapid_private_key_file = "{tmp_path / 'vapid.pem'}"
vapid_subject = "{SUBJECT}"
rate_per_second = {rate}
retry_delay = "1m"
allow_insecure_endpoints = {"true" if insecure else "false"}
{extra}
"""
    return section, public_key_of(key)


def make_site(tmp_path: Path, clock: Clock, mail_url: str, *, rate: float = 1000, extra: str = "",  # type: ignore[no-untyped-def]
              insecure: bool = True):
    """Components with [push] (a fresh key; `insecure`: a push service on loopback may be reached) and the public
    key; `extra` goes into the [push] section (and may open sections of its own after it)."""
    import service

    section, public = push_config(tmp_path, rate=rate, extra=extra, insecure=insecure)
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), mail_url=mail_url,
                          extra=section)
    services = service.Components(load_settings(config, {}), clock=clock,
                                  sleep=lambda seconds: setattr(clock, "now", clock.now + timedelta(seconds=seconds)))
    services.prepare_database(migrate=True)
    return services, public


@pytest.fixture
def site(tmp_path, clock, smtp_server):  # type: ignore[no-untyped-def]
    """(components, the push service, the SMTP recorder, a client of the app)."""
    import service

    recorder, url = smtp_server
    services, public = make_site(tmp_path, clock, url)
    with LoopbackPushService(public, SUBJECT) as push_service, \
            InProcessClient(service.create_app(services)) as client:
        yield services, push_service, recorder, client
    services.close()


def subscribe(client: InProcessClient, browser: Browser, **choices: object) -> None:
    answer = client.post("/push/subscriptions", json={"subscription": browser.subscription(), **choices},
                         headers=ORIGIN)
    assert answer.status_code == 201, answer.text


def subscribed(client: InProcessClient, push_service: PushService, names: list[str],
               **choices: object) -> list[Browser]:
    browsers = [push_service.browser(name) for name in names]
    for browser in browsers:
        subscribe(client, browser, **choices)
    return browsers


def run_due(services) -> str:  # type: ignore[no-untyped-def]
    [job] = [spec for spec in services.task_specs() if spec.key == "push:due"]
    return job.run(services.clock())


# --- once each ------------------------------------------------------------------------------------------------

def test_an_alert_reaches_the_push_endpoint_and_the_mail_readers_once_each(site) -> None:  # type: ignore[no-untyped-def]
    services, push_service, recorder, client = site
    add(services, "alerts@example.com", ["politics"], ["alerts"])
    add(services, "digest-only@example.com", ["politics"], ["daily"])
    subscribed(client, push_service, ["phone"], categories=["politics"], lang="ko", zone="Asia/Seoul")
    subscribed(client, push_service, ["laptop"], categories=["economy"], lang="en")  # another section
    desk = services.alerts
    alert = desk.create(AlertDraft(subject="국회, 예산안 통과", text="방금 본회의에서 가결됐습니다.",
                                   link="https://news.example.com/a/1", categories=("politics",)), created_by=None)
    desk.send(alert.id)
    desk.send(alert.id)  # a rerun: nobody gets it twice
    services.alerts.send_at(alert.created_at)  # the resume job's way in, too

    assert push_service.refusals == []
    [message] = push_service.messages("phone")
    assert message == {"title": "[속보] 국회, 예산안 통과", "body": "방금 본회의에서 가결됐습니다.",
                       "url": "https://news.example.com/a/1", "tag": f"gazette-alert-{alert.id}", "lang": "ko"}
    assert push_service.messages("laptop") == []
    [received] = push_service.received["phone"]
    assert received.headers["ttl"] == "86400" and received.headers["topic"] == f"gazette-alert-{alert.id}"
    assert received.claims["aud"] == push_service.url and received.claims["sub"] == SUBJECT
    assert len(recorder.to("alerts@example.com")) == 1 and recorder.to("digest-only@example.com") == []

    report = desk.report(alert.id)
    assert report.push_counts == {"sent": 1} and report.counts == {"sent": 1}
    assert client.get(f"/api/alerts/{alert.id}", headers=ADMIN).json()["push"] == {"sent": 1}


def test_a_story_alert_links_through_the_tracked_redirect(site) -> None:  # type: ignore[no-untyped-def]
    from tests.test_store import make_article

    services, push_service, _, client = site
    services.store.upsert_articles([make_article(1, title="속보 기사")], source_id=None, now=services.clock())
    [article] = services.store.articles(limit=1)
    subscribed(client, push_service, ["phone"])
    alert = services.alerts.create(AlertDraft(article_id=article.id), created_by=None)
    services.alerts.send(alert.id)
    [message] = push_service.messages("phone")
    assert str(message["url"]).startswith("https://news.example.com/r/")
    target = services.redirects.target(str(message["url"]).rsplit("/", 1)[1])
    assert target is not None and target.article_id == article.id and target.channel == "push"


def test_a_run_cut_short_is_finished_by_the_due_job_and_sends_nobody_twice(site) -> None:  # type: ignore[no-untyped-def]
    services, push_service, _, client = site
    subscribed(client, push_service, ["a", "b", "c"])
    alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)

    class Dies:
        """The process dies when the second push's turn comes (its row already written `queued`)."""

        def __init__(self) -> None:
            self.turns = 0
            self.lock = threading.Lock()

        def wait(self) -> None:
            with self.lock:
                self.turns += 1
                turn = self.turns
            if turn == 2:
                raise KeyboardInterrupt

    dying = replace(services.push, gate=Dies())
    with pytest.raises(KeyboardInterrupt):
        dying.deliver(services.alerts.get(alert.id))
    # The pushes run side by side: the one whose turn killed the process stays `queued`, the others went.
    assert sorted(len(push_service.messages(n)) for n in "abc") == [0, 1, 1]
    assert services.push_store.counts(alert.id) == {"sent": 2, "queued": 1}

    assert "1 alert(s)" in run_due(services)
    assert [len(push_service.messages(n)) for n in "abc"] == [1, 1, 1]
    assert services.push_store.counts(alert.id) == {"sent": 3}
    assert "0 alert(s)" in run_due(services)
    services.alerts.send(alert.id)
    assert [len(push_service.messages(n)) for n in "abc"] == [1, 1, 1]


# --- the push service's answers -------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_removed(site, status: int) -> None:  # type: ignore[no-untyped-def]
    services, push_service, _, client = site
    subscribed(client, push_service, ["gone", "here"])
    push_service.status["gone"] = status
    alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)
    services.alerts.send(alert.id)
    assert services.push_store.count() == 1
    assert services.push_store.counts(alert.id) == {"removed": 1, "sent": 1}
    assert len(push_service.messages("here")) == 1
    assert "0 alert(s)" in run_due(services)  # nothing left to do for the removed one


def test_a_busy_push_service_is_tried_again_by_the_due_job(site, clock) -> None:  # type: ignore[no-untyped-def]
    services, push_service, _, client = site
    subscribed(client, push_service, ["busy"])
    push_service.status["busy"] = 429
    alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)
    services.alerts.send(alert.id)
    assert services.push_store.counts(alert.id) == {"retry": 1}
    assert "0 alert(s)" in run_due(services)  # its time has not come
    push_service.status["busy"] = 201
    clock.now += timedelta(minutes=1)
    assert "1 alert(s)" in run_due(services)
    assert len(push_service.messages("busy")) == 1 and services.push_store.counts(alert.id) == {"sent": 1}


def test_a_push_service_that_keeps_failing_is_given_up_after_the_retries(site, clock) -> None:  # type: ignore[no-untyped-def]
    services, push_service, _, client = site
    subscribed(client, push_service, ["down"])
    push_service.status["down"] = 500
    alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)
    services.alerts.send(alert.id)
    for _ in range(services.settings.push.retries):
        clock.now += timedelta(hours=1)
        run_due(services)
    assert services.push_store.counts(alert.id) == {"failed": 1}
    assert services.push_store.count() == 1  # a failing service is not a browser that left


# --- §50: advertising at night --------------------------------------------------------------------------------

def test_an_alert_with_advertising_is_held_for_browsers_in_their_night(site, clock) -> None:  # type: ignore[no-untyped-def]
    services, push_service, _, client = site
    clock.now = NOW + timedelta(hours=13)  # 22:00 in Seoul, 13:00 in London
    subscribed(client, push_service, ["seoul"], zone="Asia/Seoul", ads=True)
    subscribed(client, push_service, ["london"], zone="Europe/London", ads=True)
    subscribed(client, push_service, ["no-consent"], zone="Europe/London")
    alert = services.alerts.create(AlertDraft(subject="특가 속보", text="오늘만", has_ads=True), created_by=None)
    services.alerts.send(alert.id)
    assert push_service.messages("seoul") == [] and push_service.messages("no-consent") == []
    [london] = push_service.messages("london")
    assert str(london["title"]).startswith("(광고)")
    assert services.push_store.counts(alert.id) == {"held": 1, "sent": 1}
    clock.now = NOW + timedelta(hours=22, minutes=59)  # 07:59 in Seoul: still night
    run_due(services)
    assert push_service.messages("seoul") == []
    clock.now = NOW + timedelta(hours=23)  # 08:00
    assert "1 alert(s)" in run_due(services)
    assert len(push_service.messages("seoul")) == 1 and services.push_store.counts(alert.id) == {"sent": 2}


def test_a_push_held_for_the_morning_is_not_sent_when_its_story_was_killed_overnight(site, clock) -> None:  # type: ignore[no-untyped-def]
    from feeds.article_life import ArticleLife
    from tests.test_store import make_article

    services, push_service, _, client = site
    story = make_article(1)
    services.store.upsert_articles([story], source_id=None, now=NOW)
    clock.now = NOW + timedelta(hours=13)  # 22:00 in Seoul
    subscribed(client, push_service, ["seoul"], zone="Asia/Seoul", ads=True)
    alert = services.alerts.create(AlertDraft(article_id=story.id, has_ads=True), created_by=None)
    services.alerts.send(alert.id)
    assert services.push_store.counts(alert.id) == {"held": 1}
    ArticleLife(services.engine).kill(story.id, "오보", now=clock.now + timedelta(hours=1))
    clock.now = NOW + timedelta(hours=23)  # 08:00: the due job comes back, finds the story withdrawn
    run_due(services)
    assert push_service.messages("seoul") == [] and services.push_store.counts(alert.id) == {"skipped": 1}
    run_due(services)
    assert push_service.messages("seoul") == []


# --- the rate -------------------------------------------------------------------------------------------------

def test_pushes_keep_the_configured_rate(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    _, url = smtp_server
    import service

    services, public = make_site(tmp_path, clock, url, rate=20)
    with LoopbackPushService(public, SUBJECT) as push_service, \
            InProcessClient(service.create_app(services)) as client:
        names = [f"b{i}" for i in range(11)]
        subscribed(client, push_service, names)
        alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)
        services.alerts.send(alert.id)
        times = sorted(r.at for n in names for r in push_service.received[n])
        assert len(times) == 11
        # 11 pushes at 20/s leave 50 ms between POSTs; the first also waits for its connection, so count from the
        # second: 9 intervals, give or take a tenth for the server's own timing.
        assert times[-1] - times[1] >= 9 / 20 * 0.9
    services.close()


# --- configuration and the CLI --------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "key", "reason"), [
    ("missing", "push.vapid_private_key_file", "not a readable file"),
    ("rsa", "push.vapid_private_key_file", "not a P-256"),
    ("garbage", "push.vapid_private_key_file", "not a PEM private key"),
    ("subject", "push.vapid_subject", "mailto:"),
    ("origin", "push.origins[0]", "must be an origin"),
])
def test_a_bad_push_section_stops_the_start_naming_the_key(tmp_path, case: str, key: str, reason: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = tmp_path / "vapid.pem"
    if case == "rsa":
        pem.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    elif case == "garbage":
        pem.write_text("not a key")
    elif case != "missing":
        pem.write_bytes(pem_of(new_vapid_key()))
    subject = "newsroom@example.com" if case == "subject" else SUBJECT
    origins = '["https://www.example.com/path"]' if case == "origin" else "[]"
    config = write_config(tmp_path / "gazette.toml", database_url="sqlite:///x.db", extra=f"""
[push]
vapid_private_key_file = "{pem}"
vapid_subject = "{subject}"
origins = {origins}
""")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    assert caught.value.key == key and reason in str(caught.value)


def test_without_a_push_section_nothing_of_it_runs(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path))
    services = service.Components(load_settings(config, {}), clock=clock)
    assert services.settings.push is None and services.push is None
    assert all(not spec.key.startswith("push") for spec in services.task_specs())
    with InProcessClient(service.create_app(services)) as client:
        assert client.get("/push/subscribe.js").status_code == 404
    services.close()


def test_push_keys_writes_a_private_key_only_its_owner_reads_and_never_over_one(tmp_path) -> None:
    from newsletter.push_keys import read_vapid_key

    out = tmp_path / "keys" / "vapid.pem"
    made = run_gazette(["push", "keys", "--out", str(out)], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    public = public_key_of(read_vapid_key(out))
    assert f"public key (applicationServerKey): {public}" in made.stdout
    assert f'vapid_private_key_file = "{out}"' in made.stdout
    before = out.read_bytes()
    again = run_gazette(["push", "keys", "--out", str(out)], cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr and out.read_bytes() == before
    forced = run_gazette(["push", "keys", "--out", str(out), "--force"], cwd=tmp_path)
    assert forced.returncode == 0 and out.read_bytes() != before
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_worker_takes_only_alert_ids_off_the_queue(site) -> None:  # type: ignore[no-untyped-def]
    from feeds.core.work_queue import PUSH, celery_app
    from newsletter.cli.worker import register_tasks

    services, push_service, _, client = site
    subscribed(client, push_service, ["phone"])
    alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)

    app = celery_app("amqp://guest:guest@127.0.0.1:5672/")  # a task called here runs here: no broker is reached
    register_tasks(app, services, "holder")
    for bad in ("1; drop", -1, 0, True, None, [alert.id], 2**70):
        app.tasks[PUSH](bad)
    assert push_service.messages("phone") == []
    app.tasks[PUSH](alert.id)
    wait_until(lambda: push_service.messages("phone"))
    assert services.push_store.counts(alert.id) == {"sent": 1}
    app.close()
