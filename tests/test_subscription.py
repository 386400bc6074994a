"""The subscription workflow in-process, no HTTP: `newsletter.subscription.Subscription` over a real store (SQLite,
and PostgreSQL where one answers), real tokens and notices, and an outbox in place of the mail server.

The same path over HTTP (CSRF, honeypot, the per-IP limit, the pages' words and statuses) is in test_subscribers.py,
test_consent.py and tests/security/."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape

import templates
from feeds.core import database
from newsletter.errors import DeliveryError, SubscriberError
from newsletter.links import Links
from newsletter.notices import Notices, consent_words
from newsletter.records import Subscriber
from newsletter.settings import Settings, load_settings
from newsletter.subscribers import SubscriberStore
from newsletter.subscription import (
    Added,
    ChoicesForm,
    ConfirmLink,
    LinkProblem,
    MailFailed,
    MailSent,
    Refused,
    SignUp,
    Subscription,
    TooMany,
    Unsubscribed,
    ip_hash,
    read_choices,
)
from newsletter.tokens import Tokens
from newsletter.verp import TagCodec
from tests.conftest import NOW, Clock, sqlite_copy, write_config

IP = "203.0.113.7"
EDITIONS = """
[digests.daily]
schedule = "0 7 * * *"

[digests.weekly]
schedule = "0 7 * * 1"

[digests.offers]
schedule = "0 12 * * *"
ad = true
"""


class Outbox:
    """A transport that keeps what it is handed, or fails as told."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.failure: DeliveryError | None = None

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append((recipient, data))

    def close(self) -> None:
        pass

    def to(self, address: str) -> list[bytes]:
        return [data for recipient, data in self.sent if recipient == address]


class World:
    def __init__(self, settings: Settings, engine: sa.Engine, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.outbox = Outbox()
        self.store = SubscriberStore(engine, [e.name for e in settings.digests])
        self.tokens = Tokens(settings.signing_key, clock)
        environment = Environment(loader=FileSystemLoader(templates.directory()),
                                  autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        notices = Notices(settings, environment, self.tokens, clock, lambda: self.outbox,
                          TagCodec(settings.signing_key, settings.mail.return_path))
        self.flow = Subscription(settings, self.store, self.tokens, notices, clock)

    def sign_up(self, address: str = "reader@example.com", *, ads: bool = False, **change: object) -> object:
        form = {"categories": ("economy",), "editions": ("weekly",), "timezone": "Asia/Seoul", "name": "독자",
                "ads": ads, **{k: v for k, v in change.items() if k in ChoicesForm.__dataclass_fields__}}
        signup = SignUp(email=str(change.get("email", address)), choices=ChoicesForm(**form),  # type: ignore[arg-type]
                        has_agreed=bool(change.get("has_agreed", True)))
        return self.flow.subscribe(signup, lang=str(change.get("lang", "ko")), ip=IP)

    def token_in(self, address: str, path: str, which: int = -1) -> str:
        text = email.message_from_bytes(self.outbox.to(address)[which], policy=policy.default).get_body(
            ("plain",)).get_content()  # type: ignore[union-attr]
        return re.search(rf"https://news\.example\.com/{path}/(\S+)", text)[1]  # type: ignore[index]

    def subscribed(self, address: str = "reader@example.com", *, ads: bool = False) -> Subscriber:
        assert self.sign_up(address, ads=ads) == MailSent(address)
        link = self.flow.confirmation_of(self.token_in(address, "confirm"))
        assert isinstance(link, ConfirmLink)
        reader = self.flow.confirm(link, lang="ko", has_agreed=False, ip=IP)
        assert isinstance(reader, Subscriber)
        return reader


@pytest.fixture
def world(tmp_path: Path, migrated_sqlite: Path, clock: Clock) -> Iterator[World]:
    """SQLite only: the store's queries are tested on both databases in test_subscribers.py; this is the workflow."""
    database_url = sqlite_copy(migrated_sqlite, tmp_path)
    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, extra=EDITIONS), {})
    engine = database.make_engine(database_url)
    yield World(settings, engine, clock)
    engine.dispose()


def subjects(world: World, address: str) -> list[str]:
    return [str(email.message_from_bytes(m, policy=policy.default)["Subject"]) for m in world.outbox.to(address)]


# --- the whole path -----------------------------------------------------------------------------------------

def test_subscribe_confirm_preferences_unsubscribe_resubscribe(world: World, clock: Clock) -> None:
    flow, store = world.flow, world.store
    assert world.sign_up(ads=True) == MailSent("reader@example.com")
    assert store.confirmed("weekly") == []  # nothing is active before confirmation
    [subject] = subjects(world, "reader@example.com")
    assert subject == "[한빛일보] 뉴스레터 구독을 확인해 주세요"

    token = world.token_in("reader@example.com", "confirm")
    link = flow.confirmation_of(token)
    assert isinstance(link, ConfirmLink) and link.agreed
    assert (link.choices.categories, link.choices.editions, link.choices.timezone, link.choices.ads) == (
        ("economy",), ("weekly",), "Asia/Seoul", True)
    assert store.find("reader@example.com").status == "pending"  # opening the link changed nothing
    clock.now = NOW + timedelta(minutes=5)
    reader = flow.confirm(link, lang="ko", has_agreed=False, ip=IP)
    assert isinstance(reader, Subscriber)
    assert (reader.status, reader.categories, reader.editions, reader.name, reader.ad_consent_at) == (
        "confirmed", ("economy",), ("weekly",), "독자", clock.now)
    words = consent_words(world.settings, "ko")
    assert [(c["kind"], c["granted"], c["method"], c["text"], c["ip_hash"]) for c in store.consents(reader.id)] == [
        ("privacy", True, "form", words.privacy_text, ip_hash(world.settings.signing_key, IP)),
        ("ads", True, "form", words.ads_text, ip_hash(world.settings.signing_key, IP))]
    assert len(world.outbox.to("reader@example.com")) == 2  # the confirmation, then the consent's result

    links = Links(world.settings.site.base_url, world.tokens).for_reader(reader.public_id)
    found = flow.reader_of("preferences", links.preferences.rsplit("/", 1)[1])
    assert found == reader
    saved = flow.save_preferences(reader, ChoicesForm(categories=("politics", "economy"), editions=("daily",),
                                                      timezone="America/New_York", ads=False),
                                  is_paused=False, lang="ko", ip=IP)
    assert isinstance(saved, Subscriber)
    assert (saved.categories, saved.editions, saved.timezone, saved.ad_consent_at) == (
        ("politics", "economy"), ("daily",), "America/New_York", None)
    assert store.consents(reader.id)[-1]["kind"] == "ads" and not store.consents(reader.id)[-1]["granted"]
    assert len(world.outbox.to("reader@example.com")) == 3  # the result of withdrawing (§50⑦)

    again = flow.save_preferences(saved, ChoicesForm(categories=("economy",), editions=("daily",), ads=True),
                                  is_paused=False, lang="ko", ip=IP)
    assert isinstance(again, Subscriber) and again.ad_consent_at == clock.now
    gone = flow.unsubscribe(again, lang="ko")
    assert isinstance(gone, Unsubscribed) and gone.subscriber.status == "unsubscribed"
    assert store.confirmed("daily") == [] and store.is_suppressed("reader@example.com")
    sent = len(world.outbox.sent)
    assert gone.follow_up is not None  # the advertising consent went too: told after the answer
    gone.follow_up()
    assert len(world.outbox.sent) == sent + 1
    twice = flow.unsubscribe(gone.subscriber, lang="ko")  # idempotent
    assert twice == Unsubscribed(gone.subscriber)

    back = flow.resubscribe(gone.subscriber, lang="ko", ip=IP)
    assert isinstance(back, Subscriber) and back.status == "confirmed" and back.ad_consent_at is None
    assert not store.is_suppressed("reader@example.com")
    assert store.consents(reader.id)[-1]["kind"] == "privacy"  # coming back is a consent of its own, recorded


def test_an_address_already_subscribed_gets_its_settings_link_and_keeps_its_choices(world: World, clock: Clock) -> None:
    reader = world.subscribed()
    clock.now = NOW + timedelta(hours=2)
    assert world.sign_up(categories=("politics",)) == MailSent("reader@example.com")
    world.token_in("reader@example.com", "preferences")  # the mail offers the settings, not a confirmation
    assert world.store.find("reader@example.com").categories == reader.categories


# --- what is refused ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "change", "problems"), [
    ("bad address", {"email": "not an address"}, ("email",)),
    ("header injection", {"email": "a@example.com\r\nBcc: victim@example.com"}, ("email",)),
    ("no category", {"categories": ()}, ("categories",)),
    ("unknown category", {"categories": ("sports",)}, ("categories",)),
    ("unknown edition", {"editions": ("hourly",)}, ("editions",)),
    ("bad time zone", {"timezone": "Mars/Olympus"}, ("timezone",)),
    ("a zone folder", {"timezone": "Asia"}, ("timezone",)),
    ("no consent", {"has_agreed": False}, ("privacy",)),
    ("everything wrong", {"email": "x", "categories": (), "editions": (), "has_agreed": False},
     ("email", "categories", "editions", "privacy")),
])
def test_a_refused_form_stores_and_sends_nothing(world: World, case: str, change: dict, problems: tuple) -> None:
    assert world.sign_up(**change) == Refused(problems)
    assert world.outbox.sent == [] and world.store.find("reader@example.com") is None


@pytest.mark.parametrize(("case", "form", "with_name", "expected"), [
    ("configured order", ChoicesForm(("economy", "politics"), ("daily",)), False, (("politics", "economy"), None)),
    ("unknown dropped", ChoicesForm(("economy", "sports"), ("daily", "hourly")), False, (("economy",), None)),
    ("name without control characters", ChoicesForm(("economy",), ("daily",), name=" 김\r\n독자\x00 "), True,
     (("economy",), "김독자")),
    ("name only where asked", ChoicesForm(("economy",), ("daily",), name="김독자"), False, (("economy",), None)),
    ("name kept to 100", ChoicesForm(("economy",), ("daily",), name="가" * 150), True, (("economy",), "가" * 100)),
])
def test_read_choices(tmp_path: Path, case: str, form: ChoicesForm, with_name: bool, expected: tuple) -> None:
    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'unused.db'}",
                                          extra=EDITIONS), {})
    choices = read_choices(settings, form, "en", with_name=with_name)
    assert not isinstance(choices, Refused)
    assert (choices.categories, choices.name) == expected and choices.language == "en"
    assert choices.ads is False  # the form asks: an edition carries ads


# --- limits and failed mail ---------------------------------------------------------------------------------

def test_one_confirmation_mail_per_address_an_hour_and_the_newest_link_wins(world: World, clock: Clock) -> None:
    assert world.sign_up() == MailSent("reader@example.com")
    first = world.token_in("reader@example.com", "confirm")
    clock.now = NOW + timedelta(minutes=59)
    refused = world.sign_up()
    assert isinstance(refused, TooMany) and 55 <= refused.retry_after <= 60
    assert len(world.outbox.sent) == 1  # the form cannot flood a victim
    clock.now = NOW + timedelta(hours=1)
    assert world.sign_up() == MailSent("reader@example.com")
    second = world.token_in("reader@example.com", "confirm")
    old = world.flow.confirmation_of(first)
    assert isinstance(old, ConfirmLink)
    assert world.flow.confirm(old, lang="ko", has_agreed=True, ip=IP) == LinkProblem("used")
    new = world.flow.confirmation_of(second)
    assert isinstance(new, ConfirmLink)
    assert isinstance(world.flow.confirm(new, lang="ko", has_agreed=True, ip=IP), Subscriber)


@pytest.mark.parametrize(("is_permanent", "expected"), [(True, Refused(("undeliverable",))), (False, MailFailed())])
def test_a_confirmation_that_could_not_go_leaves_nothing(world: World, is_permanent: bool, expected: object) -> None:
    world.outbox.failure = DeliveryError("550 no such user", is_permanent=is_permanent)
    assert world.sign_up() == expected
    assert world.store.find("reader@example.com") is None
    world.outbox.failure = None
    assert world.sign_up() == MailSent("reader@example.com")  # the hour's slot was given back


# --- links that cannot be followed --------------------------------------------------------------------------

def test_expired_tampered_and_misused_links(world: World, clock: Clock) -> None:
    world.sign_up()
    token = world.token_in("reader@example.com", "confirm")
    assert world.flow.confirmation_of(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) == LinkProblem("invalid")
    assert world.flow.confirmation_of("not-a-token") == LinkProblem("invalid")
    clock.now = NOW + timedelta(days=3)
    assert world.flow.confirmation_of(token) == LinkProblem("expired")
    assert world.store.find("reader@example.com").status == "pending"

    reader = world.subscribed("kim@example.com")
    unsubscribe = world.tokens.for_subscriber("unsubscribe", reader.public_id)
    assert world.flow.reader_of("preferences", unsubscribe) == LinkProblem("invalid")  # each purpose its own
    assert world.flow.reader_of("unsubscribe", unsubscribe) == reader
    assert world.store.erase(reader.id, now=clock())
    assert world.flow.reader_of("unsubscribe", unsubscribe) == LinkProblem("gone")


def test_an_old_confirmation_never_brings_back_a_reader_who_left(world: World) -> None:
    world.sign_up()
    link = world.flow.confirmation_of(world.token_in("reader@example.com", "confirm"))
    assert isinstance(link, ConfirmLink)
    reader = world.flow.confirm(link, lang="ko", has_agreed=True, ip=IP)
    assert isinstance(reader, Subscriber)
    assert world.flow.confirm(link, lang="ko", has_agreed=True, ip=IP) == reader  # a second click changes nothing
    world.flow.unsubscribe(reader, lang="ko")
    again = world.flow.confirmation_of(world.token_in("reader@example.com", "confirm", which=0))
    assert isinstance(again, ConfirmLink)
    assert world.flow.confirm(again, lang="ko", has_agreed=True, ip=IP) == LinkProblem("used")
    assert world.store.find("reader@example.com").status == "unsubscribed"


# --- an operator's reader, a new link, the two-yearly question ----------------------------------------------

def test_a_reader_an_operator_added_gives_the_consent_on_the_confirmation_page(world: World) -> None:
    added = world.flow.add_by_operator("kim@example.com", name=None, categories=(), editions=("daily",),
                                       is_confirmed=False)
    assert isinstance(added, Added) and added.outcome == "added" and added.subscriber.status == "pending"
    assert added.subscriber.categories == ("politics", "economy")  # none chosen: all
    link = world.flow.confirmation_of(world.token_in("kim@example.com", "confirm"))
    assert isinstance(link, ConfirmLink) and not link.agreed
    assert world.flow.confirm(link, lang="ko", has_agreed=False, ip=IP) == Refused(("privacy",))
    reader = world.flow.confirm(link, lang="ko", has_agreed=True, ip=IP)
    assert isinstance(reader, Subscriber) and reader.status == "confirmed"


def test_an_operator_cannot_bring_back_a_suppressed_address_or_name_an_unknown_category(world: World) -> None:
    with pytest.raises(SubscriberError, match="unknown categories: sports"):
        world.flow.add_by_operator("kim@example.com", name=None, categories=("sports",), editions=("daily",),
                                   is_confirmed=True)
    reader = world.subscribed("kim@example.com")
    world.flow.unsubscribe(reader, lang="ko")
    assert world.flow.add_by_operator("kim@example.com", name=None, categories=(), editions=("daily",),
                                      is_confirmed=True) == Added("suppressed", None)


def test_a_new_link_goes_only_to_a_subscribed_address(world: World, clock: Clock) -> None:
    world.sign_up("pending@example.com")
    world.subscribed("kim@example.com")
    sent = len(world.outbox.sent)
    clock.now = NOW + timedelta(hours=2)
    for address in ("nobody@example.com", "pending@example.com", "no at sign", "kim@example.com"):
        world.flow.send_new_link(address, "en")
    assert [recipient for recipient, _ in world.outbox.sent[sent:]] == ["kim@example.com"]
    world.token_in("kim@example.com", "preferences")
    world.flow.send_new_link("kim@example.com", "en")  # within the hour: nothing more, and nothing raised
    assert len(world.outbox.sent) == sent + 1


def test_keeping_advertising_consent_records_the_question_and_the_answer(world: World, clock: Clock) -> None:
    reader = world.subscribed(ads=True)
    clock.now = NOW + timedelta(days=731)
    kept = world.flow.keep_ads(reader, lang="ko", ip=IP)
    assert isinstance(kept, Subscriber) and kept.ad_consent_at == clock.now
    record = world.store.consents(reader.id)[-1]
    assert (record["kind"], record["granted"], record["method"]) == ("ads", True, "reconfirm")
    assert "한빛일보" in record["text"] and record["ip_hash"] == ip_hash(world.settings.signing_key, IP)
