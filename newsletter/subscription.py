"""The reader's subscription workflow: double opt-in, preferences, one-click unsubscribe, coming back, a new link, the
two-yearly advertising question, and an operator's invitation. No HTTP here: `newsletter.http.pages` parses the
request, calls one of these and maps the result to a page; tests call them directly.

`Subscription` works over the subscriber store, the link tokens, the notice mails and the clock. Each step returns
a result value (a frozen dataclass below, or the `Subscriber` it acted on) instead of raising for what a reader
can cause: a `LinkProblem` for a link that is expired, not ours, used or names nobody; `Refused` with the keys of
the form's problems; `TooMany` for the one-confirmation-mail-an-hour rule of an address; `MailSent`/`MailFailed`
for the confirmation mail. A notice that follows a change already made (welcome, the result of an advertising
consent) is logged when it fails; the change stands.

What stays in the HTTP layer: the CSRF double-submit check, the honeypot, the per-client-IP limit, the language of
the request, and sending some mails after the answer (`Unsubscribed.follow_up`, `send_new_link`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from .errors import DeliveryError, LinkUsed, RateLimited, SubscriberError, TokenError
from .messages import TEXT
from .notices import Notices, consent_words, has_ad_editions
from .records import ALERTS, Choices, Consent, LinkOwner, Subscriber, normalise_email
from .settings import Settings
from .subscribers import SubscriberStore
from .timing import is_zone
from .tokens import Tokens

log = logging.getLogger(__name__)

MAX_NAME = 100
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- what the steps return ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LinkProblem:
    """A link that cannot be followed. `reason`: "expired" (ask for a new one), "invalid" (not ours, tampered, made
    for another purpose), "used" (a confirmation used, replaced or followed by an unsubscribe), "gone" (names a
    reader who is no longer there: erased)."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """The form was not accepted; `problems` are keys the page turns into words: "email", "categories", "editions",
    "timezone", "privacy" (the required consent is missing), "undeliverable" (the mail server refused the address)."""

    problems: tuple[str, ...]


@dataclass(frozen=True)
class TooMany:
    """An address got its confirmation mail less than an hour ago; the next one in `retry_after` seconds."""

    retry_after: int


@dataclass(frozen=True)
class MailSent:
    """The confirmation mail (or, for a reader already subscribed, the link to their settings) went to `email`."""

    email: str


@dataclass(frozen=True)
class MailFailed:
    """The mail server did not take the mail for now; nothing was kept of the sign-up. Try again later."""


@dataclass(frozen=True)
class ConfirmLink:
    """What a confirmation link carries: whom (by opaque id), the nonce it must match, the choices made."""

    subscriber: Subscriber
    nonce: str | None
    choices: Choices
    agreed: bool  # the required consent was given on our form; if not (an operator added them), the page asks


@dataclass(frozen=True)
class Unsubscribed:
    """The reader after a one-click unsubscribe. `follow_up`, when set, tells them their advertising consent went
    too (정보통신망법 §50⑦); it is meant to run after the answer, and logs a failure instead of raising."""

    subscriber: Subscriber
    follow_up: Callable[[], None] | None = None


@dataclass(frozen=True)
class ChoicesForm:
    """The choices on the subscribe or preferences form, as sent (not yet checked against the configuration)."""

    categories: tuple[str, ...]
    editions: tuple[str, ...]
    timezone: str = ""
    name: str = ""
    ads: bool = False


@dataclass(frozen=True)
class SignUp:
    """The subscribe form as typed."""

    email: str
    choices: ChoicesForm
    has_agreed: bool  # the box of the required consent (개인정보 보호법 §15)


@dataclass(frozen=True)
class Added:
    """What an operator's add did: "added", "updated", or "suppressed" (the address left or was erased: only the
    person can subscribe it again, through the form; `subscriber` is then None)."""

    outcome: str
    subscriber: Subscriber | None


# --- pure steps ---------------------------------------------------------------------------------------------

def ip_hash(signing_key: str, ip: str) -> str:
    """A keyed hash of the client IP: enough to show consent came from one place, useless to find the person."""
    return hashlib.blake2b(ip.encode(), key=signing_key.encode()[:64], digest_size=16).hexdigest()


def read_choices(settings: Settings, form: ChoicesForm, lang: str, *, with_name: bool) -> Choices | Refused:
    """The form's choices checked against the configuration: known categories (in the configured order), known
    editions (and the breaking-news alerts), an IANA time zone (any, not only those suggested); the name without control characters."""
    order = [c.slug for c in settings.categories]
    problems = []
    chosen = [slug for slug in form.categories if slug in order]
    if not chosen:
        problems.append("categories")
    editions = tuple(e.name for e in settings.digests if e.name in set(form.editions))
    editions += (ALERTS,) if ALERTS in form.editions else ()  # breaking-news alerts: a choice of their own
    if not editions:
        problems.append("editions")
    zone = form.timezone.strip()[:64] or None
    if zone is not None and not is_zone(zone):
        problems.append("timezone")
    if problems:
        return Refused(tuple(problems))
    name = CONTROL.sub("", form.name).strip()[:MAX_NAME] or None if with_name else None
    return Choices(categories=tuple(sorted(chosen, key=order.index)), editions=editions, name=name, language=lang,
                   timezone=zone, ads=form.ads if has_ad_editions(settings) else None)


# --- the workflow -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subscription:
    """The reader's path from the form to the inbox and out again, over the store, tokens, notices and clock."""

    settings: Settings
    store: SubscriberStore
    tokens: Tokens
    notices: Notices
    clock: Callable[[], datetime]

    def subscribe(self, signup: SignUp, *, lang: str, ip: str) -> MailSent | Refused | TooMany | MailFailed:
        """Double opt-in, first half: check the form, claim the address's one mail an hour, send the confirmation
        (or, when the address is subscribed already, a link to its settings: an unauthenticated form must not change
        somebody's choices). A mail that could not go leaves nothing behind."""
        problems: list[str] = []
        try:
            address: str | None = normalise_email(signup.email)
        except SubscriberError:
            address = None
            problems.append("email")
        choices = read_choices(self.settings, signup.choices, lang, with_name=True)
        if isinstance(choices, Refused):
            problems += choices.problems
        if not signup.has_agreed:  # 개인정보 보호법 §15: no subscription without the required consent
            problems.append("privacy")
        if problems or address is None or not isinstance(choices, Choices):
            return Refused(tuple(problems))
        try:
            asked = self.store.request_confirmation(address, self.clock(), name=choices.name)
        except RateLimited as exc:
            return TooMany(exc.retry_after)
        subscriber = asked.subscriber
        try:
            if asked.action == "confirm":
                self.notices.confirm(subscriber, asked.nonce, choices, lang, agreed=True)
            else:
                self.notices.manage(subscriber, lang)
        except DeliveryError as exc:
            log.warning("subscribe: the %s mail to subscriber %s failed: %s", asked.action, subscriber.id, exc)
            self.store.release_confirmation(subscriber.id, forget=asked.is_new)  # nothing kept of a failed sign-up
            return Refused(("undeliverable",)) if exc.is_permanent else MailFailed()
        return MailSent(subscriber.email)

    def confirmation_of(self, token: str) -> ConfirmLink | LinkProblem:
        """What a confirmation link says. Opening it changes nothing (mail scanners open every link): `confirm` does."""
        known = [c.slug for c in self.settings.categories]
        editions_known = [*(e.name for e in self.settings.digests), ALERTS]
        try:
            payload = self.tokens.read("confirm", token)
            nonce = payload.get("k")
            # Links made before opaque ids carry {"s": id, "e": address, "f": frequency}: read until they expire.
            owner = (LinkOwner(public_id=str(payload["p"])) if "p" in payload
                     else LinkOwner(subscriber_id=int(payload["s"]), email=str(payload["e"])))
            editions = tuple(e for e in (payload.get("d") or [payload.get("f")]) if e in editions_known)
            choices = Choices(categories=tuple(c for c in payload["c"] if c in known) or tuple(sorted(known)),
                              editions=editions or tuple(editions_known[:1]), language=payload.get("l"),
                              timezone=payload.get("z") if isinstance(payload.get("z"), str) else None,
                              ads=bool(payload.get("a")) and has_ad_editions(self.settings))
        except TokenError as exc:
            return LinkProblem(exc.reason)
        except (KeyError, TypeError, ValueError):
            return LinkProblem("invalid")
        subscriber = self.store.owner_of(owner)
        if subscriber is None:
            return LinkProblem("gone")
        return ConfirmLink(subscriber, nonce if isinstance(nonce, str) else None, choices,
                           agreed=payload.get("v", True) is not False)

    def confirm(self, link: ConfirmLink, *, lang: str, has_agreed: bool, ip: str) -> Subscriber | Refused | LinkProblem:
        """Double opt-in, second half: activate with the link's choices and record both consents with the words
        shown. `has_agreed`: the consent box on the confirmation page, needed when the link was not made by our form.
        The welcome (or the consent result) follows a first confirmation."""
        if not link.agreed and not has_agreed:
            return Refused(("privacy",))
        was_confirmed = link.subscriber.status == "confirmed"
        try:
            subscriber = self.store.confirm(link.subscriber.id, link.subscriber.public_id, link.choices,
                                            nonce=link.nonce, now=self.clock(), consent=self._consent(lang, ip))
        except LinkUsed:
            return LinkProblem("used")
        except SubscriberError:
            return LinkProblem("gone")
        if not was_confirmed and subscriber.status == "confirmed":  # the welcome, with the result of the consent
            self._tell("welcome", lambda: self.notices.welcome(subscriber, lang), subscriber)
        return subscriber

    def reader_of(self, purpose: str, token: str) -> Subscriber | LinkProblem:
        """Whom a preferences, unsubscribe or consent link names."""
        try:
            owner = self.tokens.subscriber_of(purpose, token)
        except TokenError as exc:
            return LinkProblem(exc.reason)
        subscriber = self.store.owner_of(owner)
        return subscriber if subscriber is not None else LinkProblem("gone")

    def save_preferences(self, reader: Subscriber, form: ChoicesForm, *, is_paused: bool, lang: str,
                         ip: str) -> Subscriber | Refused | LinkProblem:
        """Save the preferences form; a change of advertising consent is recorded and its result told (§50⑦)."""
        choices = read_choices(self.settings, form, lang, with_name=False)
        if isinstance(choices, Refused):
            return choices
        try:
            change = self.store.update_preferences(reader.id, reader.public_id, choices, is_paused=is_paused,
                                                   now=self.clock(), consent=self._consent(lang, ip))
        except SubscriberError:
            return LinkProblem("gone")
        if change.ads is not None:  # 정보통신망법 §50⑦: the reader is told the result
            self._tell(f"ads {change.ads}", lambda: self.notices.ads_changed(change.subscriber, change.ads or "", lang),
                       change.subscriber)
        return change.subscriber

    def unsubscribe(self, reader: Subscriber, *, lang: str) -> Unsubscribed | LinkProblem:
        """RFC 8058 one-click: the request is the decision, no second step; idempotent (a reader who left already
        is shown as left)."""
        if reader.status not in ("confirmed", "pending"):
            return Unsubscribed(reader)
        try:
            change = self.store.unsubscribe(reader.id, reader.public_id, now=self.clock())
        except SubscriberError:
            return LinkProblem("gone")
        log.info("subscriber %s unsubscribed", reader.id)
        if change.ads is None:
            return Unsubscribed(change.subscriber)
        # The advertising consent went with it: the result is told (§50⑦).
        return Unsubscribed(change.subscriber, lambda: self._tell(
            "ads withdrawn", lambda: self.notices.ads_changed(change.subscriber, "withdrawn", lang), change.subscriber))

    def resubscribe(self, reader: Subscriber, *, lang: str, ip: str) -> Subscriber | LinkProblem:
        """Back in from the unsubscribe page: that link reached only the address's owner, so it is the confirmation."""
        try:
            return self.store.resubscribe(reader.id, reader.public_id, now=self.clock(),
                                          consent=self._consent(lang, ip))
        except SubscriberError:
            return LinkProblem("gone")

    def keep_ads(self, reader: Subscriber, *, lang: str, ip: str) -> Subscriber | LinkProblem:
        """The answer to the two-yearly advertising question (정보통신망법 §50⑧): keep the consent, with the
        question's words on record."""
        try:
            return self.store.keep_ads(reader.id, reader.public_id, now=self.clock(),
                                       text=TEXT[lang]["keep_question"].format(site=self.settings.site.name),
                                       ip_hash=ip_hash(self.settings.signing_key, ip))
        except SubscriberError:
            return LinkProblem("gone")

    def send_new_link(self, email: str, lang: str) -> None:
        """"Send me a new link": a subscribed address gets the link to its settings (one mail an hour). Says nothing
        either way, and is meant to run after the answer, so that neither words nor timing tell who is subscribed."""
        if "@" not in email:
            return
        subscriber = self.store.find(email)
        if subscriber is None or subscriber.status != "confirmed":
            return  # nobody to mail, or an address that asked for no mail: it subscribes again at /subscribe
        try:
            self.store.request_confirmation(subscriber.email, self.clock())
            self.notices.manage(subscriber, lang)
        except (RateLimited, SubscriberError):
            pass
        except DeliveryError as exc:
            log.warning("link: the mail to subscriber %s failed: %s", subscriber.id, exc)
            self.store.release_confirmation(subscriber.id)

    def add_by_operator(self, email: str, *, name: str | None, categories: Sequence[str], editions: Sequence[str],
                        is_confirmed: bool) -> Added:
        """An operator adds or updates one reader (the admin API). `is_confirmed`: consent was obtained elsewhere
        and is recorded as given by an operator; otherwise the reader is pending and gets the confirmation mail
        (`invite`). Empty `categories` mean all. Raises SubscriberError for an unknown category, edition or a bad
        address, and what `invite` raises (RateLimited, DeliveryError) after the row was saved."""
        known = [c.slug for c in self.settings.categories]
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise SubscriberError(f"unknown categories: {', '.join(unknown)}; configured: {', '.join(known)}")
        outcome, subscriber = self.store.add(
            email, categories=list(categories) or known, editions=editions, name=name, now=self.clock(),
            confirmed=is_confirmed, method="admin",
            consent_text="given to the newsroom, recorded by an operator (API)" if is_confirmed else None)
        if outcome == "suppressed" or subscriber is None:
            return Added("suppressed", None)
        if subscriber.status == "pending":
            self.invite(subscriber)
        return Added(outcome, subscriber)

    def invite(self, subscriber: Subscriber) -> bool:
        """See `invite`."""
        return invite(self.store, self.notices, subscriber, self.clock())

    def _consent(self, lang: str, ip: str) -> Consent:
        words = consent_words(self.settings, lang)
        return Consent(privacy_text=words.privacy_text, ads_text=words.ads_text, method="form",
                       ip_hash=ip_hash(self.settings.signing_key, ip), alerts_text=words.alerts_text)

    @staticmethod
    def _tell(what: str, send: Callable[[], None], subscriber: Subscriber) -> None:
        """A notice that follows a change already made: a failure is logged, the change stands."""
        try:
            send()
        except DeliveryError as exc:
            log.warning("the %s mail to subscriber %s failed: %s", what, subscriber.id, exc)


def invite(store: SubscriberStore, notices: Notices, subscriber: Subscriber, now: datetime) -> bool:
    """An operator added `subscriber` without their confirmation: send the confirmation mail the form would, so that
    they can start (and give their consent) themselves. False when they are confirmed already. Raises RateLimited
    (a mail went out within the hour) or DeliveryError (the mail could not go; the hour's slot is given back)."""
    asked = store.request_confirmation(subscriber.email, now)
    if asked.action != "confirm":
        return False
    lang = subscriber.language or notices.settings.site.language
    choices = Choices(categories=subscriber.categories, editions=subscriber.editions, language=lang,
                      timezone=subscriber.timezone, ads=False)
    try:
        notices.confirm(asked.subscriber, asked.nonce, choices, lang, agreed=False)
    except DeliveryError:
        store.release_confirmation(subscriber.id)
        raise
    return True

