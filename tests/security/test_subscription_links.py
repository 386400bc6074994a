"""Links and forms of the subscription (issue 14's surfaces): what a forwarded mail, a guessed link or a crafted
form can do. Each purpose's token opens that purpose only; no link names an address; the forms' new fields (editions,
any time zone, the consent boxes) take only what the configuration offers, at bounded cost."""

from __future__ import annotations

import pytest

from tests.security.conftest import Gazette

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def reader(gazette: Gazette):  # type: ignore[no-untyped-def]
    return gazette.services.subscribers.add("kim@example.com", categories=["politics"], editions=["daily"],
                                            now=gazette.clock(), confirmed=True, method="admin")[1]


@pytest.mark.parametrize("made_for", ["archive", "confirm", "consent", "csrf"])
@pytest.mark.parametrize("used_on", ["preferences", "unsubscribe", "consent"])
def test_a_token_opens_only_its_own_purpose(gazette: Gazette, made_for: str, used_on: str) -> None:
    kim = reader(gazette)
    tokens = gazette.services.tokens
    token = {"archive": tokens.for_web_copy(1, 1), "confirm": tokens.make("confirm", {"p": kim.public_id}),
             "consent": tokens.for_subscriber("consent", kim.public_id), "csrf": tokens.csrf_field("x")}[made_for]
    if made_for == used_on:
        return
    assert gazette.client.get(f"/{used_on}/{token}").status_code == 400
    assert gazette.client.post(f"/{used_on}/{token}", data=ONE_CLICK).status_code == 400
    assert gazette.services.subscribers.find("kim@example.com").status == "confirmed"


def test_a_link_of_an_erased_and_readded_address_is_dead(gazette: Gazette) -> None:
    kim = reader(gazette)
    old = gazette.services.tokens.for_subscriber("unsubscribe", kim.public_id)
    gazette.services.subscribers.erase(kim.id, now=gazette.clock())
    gazette.services.subscribers.add("kim@example.com", categories=["politics"], editions=["daily"],
                                     now=gazette.clock(), confirmed=True, method="admin")  # suppressed: refused
    assert gazette.client.post(f"/unsubscribe/{old}", data=ONE_CLICK).status_code == 410


def test_the_consent_button_needs_the_form_token(gazette: Gazette) -> None:
    kim = reader(gazette)
    path = f"/consent/{gazette.services.tokens.for_subscriber('consent', kim.public_id)}"
    assert gazette.client.post(path, data={"lang": "ko"}).status_code == 403  # a cross-site POST keeps nothing
    assert gazette.client.get(path).status_code == 200  # a GET (a mail scanner) changes nothing


@pytest.mark.parametrize(("case", "change"), [
    ("an edition not configured", {"editions": ["daily", "../../etc", "x" * 5000]}),
    ("a huge time zone", {"timezone": "Asia/" + "x" * 100_000}),
    ("a time zone path", {"timezone": "../../../../etc/passwd"}),
    ("a folder of the zone database", {"timezone": "Asia"}),
    ("another folder", {"timezone": "posix"}),
    ("a NUL in the zone", {"timezone": "Asia/Seoul\x00"}),
    ("advertising consent smuggled in", {"ads": "1"}),
])
def test_crafted_preferences_forms_change_only_what_is_offered(gazette: Gazette, case: str, change: dict) -> None:
    kim = reader(gazette)
    path = f"/preferences/{gazette.services.tokens.for_subscriber('preferences', kim.public_id)}"
    data = {**gazette.form(path), "categories": ["politics"], **change}
    answer = gazette.client.post(path, data=data)
    assert answer.status_code in (200, 400), (case, answer.status_code)
    after = gazette.services.subscribers.find("kim@example.com")
    assert set(after.editions) <= {"daily", "weekly"} and after.editions
    assert after.timezone in (None, "Asia/Seoul")
    # The demo configuration has no advertising edition: the form does not ask, and a smuggled box is not consent.
    assert after.ad_consent_at is None


@pytest.mark.parametrize("zone", ["Asia", "America", "posix", "__pycache__", "Asia/"])
def test_a_zone_that_is_a_folder_is_refused_on_the_subscribe_form(gazette: Gazette, zone: str) -> None:
    data = {**gazette.form("/subscribe"), "email": "x@example.com", "categories": ["politics"], "timezone": zone}
    answer = gazette.client.post("/subscribe", data=data)
    assert answer.status_code == 400 and gazette.smtp.messages == []


def test_the_subscribe_form_refuses_a_missing_consent_whatever_else_it_says(gazette: Gazette) -> None:
    data = {**gazette.form("/subscribe"), "email": "x@example.com", "categories": ["politics"],
            "privacy": "", "ads": "1"}
    answer = gazette.client.post("/subscribe", data=data)
    assert answer.status_code == 400 and gazette.smtp.messages == []
    assert gazette.services.subscribers.find("x@example.com") is None
