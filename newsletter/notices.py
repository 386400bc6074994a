"""The one-action mails a reader gets about their subscription, and the words of the consent they give.

- confirmation ("confirm"), or a link to their settings when already subscribed ("manage");
- welcome, on confirmation, when `[mail] welcome` is on; it carries the result of their consent too;
- the result of a consent given, changed or withdrawn (정보통신망법 §50⑦, 시행령 §62-2: the sender, what was
  done and when), the consent result on confirmation when there is no welcome mail;
- the two-yearly question on advertising consent (§50⑧, 시행령 §62-3: the sender, the date of consent, how to
  keep or withdraw it).

Every link names the reader by their opaque id only (made by `links.Links`); the confirmation link carries the
choices made on the form, never the address or the name (those wait in the pending row). `send_one` sends one
mail on its own connection, signed when DKIM is set up: these notices and a shared article (`newsletter.sharing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from jinja2 import Environment

from .compose import (
    build_message,
    message_id,
    render_notice,
    sender_domain,
    wire_address,
)
from .links import Links
from .messages import TEXT
from .records import ALERTS, Choices, Consent, Subscriber
from .settings import Settings
from .signing import DkimSigner
from .tokens import Tokens
from .transport import Transport
from .verp import TagCodec


def consent_words(settings: Settings, lang: str) -> Consent:
    """The exact words of both consents on the form and of the breaking-news alerts choice, as the consent records
    keep them."""
    t = TEXT[lang]
    privacy = t["consent"].format(items=t["privacy_items"], purpose=t["privacy_purpose"],
                                  retention=t["privacy_retention"], refuse=t["privacy_refuse"])
    if settings.site.privacy_url:
        privacy += f" ({t['privacy_policy']}: {settings.site.privacy_url})"
    return Consent(privacy_text=privacy, ads_text=t["ads_agree"].format(site=settings.site.name),
                   alerts_text=t["alerts_agree"].format(site=settings.site.name))


def has_ad_editions(settings: Settings) -> bool:
    """Whether the form asks for advertising consent: only when some edition carries ads."""
    return any(edition.has_ads for edition in settings.digests)


def send_one(transport: Callable[[], Transport], signer: DkimSigner | None, sender: str, recipient: str,
             data: bytes) -> None:
    """One mail on its own connection, signed when DKIM is set up. Raises DeliveryError."""
    if signer is not None:
        data = signer.sign(data)
    connection = transport()
    try:
        connection.send(sender, wire_address(recipient), data)
    finally:
        connection.close()


@dataclass(frozen=True)
class Notices:
    """Builds and sends the subscription mails. Every method raises DeliveryError when the mail could not go."""

    settings: Settings
    templates: Environment
    tokens: Tokens
    clock: Callable[[], datetime]
    transport: Callable[[], Transport]
    tags: TagCodec
    signer: DkimSigner | None = None

    @property
    def links(self) -> Links:
        return Links(self.settings.site.base_url, self.tokens)

    def link(self, purpose: str, subscriber: Subscriber) -> str:
        return self.links.page(purpose, subscriber.public_id)

    def confirmation_url(self, subscriber: Subscriber, nonce: str | None, choices: Choices, lang: str, *,
                         agreed: bool) -> str:
        """`agreed`: the reader ticked the required consent on our form; a reader an operator added has not, and
        the confirmation page asks for it."""
        return self.links.confirmation(subscriber.public_id, nonce, choices, lang, agreed=agreed)

    def confirm(self, subscriber: Subscriber, nonce: str | None, choices: Choices, lang: str, *,
                agreed: bool = True) -> None:
        self._send(subscriber, lang, "confirm", button=TEXT[lang]["confirm_button"],
                   button_url=self.confirmation_url(subscriber, nonce, choices, lang, agreed=agreed),
                   footnote=TEXT[lang]["confirm_ignore"])

    def manage(self, subscriber: Subscriber, lang: str) -> None:
        self._send(subscriber, lang, "manage", button=TEXT[lang]["preferences_link"],
                   button_url=self.link("preferences", subscriber))

    def welcome(self, subscriber: Subscriber, lang: str) -> None:
        """On confirmation: the welcome mail (with the consent result in it) when `[mail] welcome` is on, else the
        consent result alone: either way the reader is told what they agreed to and when."""
        t = TEXT[lang]
        s = self.settings
        result = t["consent_result"].format(
            date=self._date(subscriber.confirmed_at, lang), site=s.site.name, privacy=t["consent_given"],
            ads=t["consent_given"] if subscriber.ad_consent_at else t["consent_refused"])
        if s.mail.welcome:  # its own template: the editions chosen, with what each is
            editions = [{"label": e.label_in(lang), "description": e.description_in(lang)}
                        for e in s.digests if e.name in subscriber.editions]
            if ALERTS in subscriber.editions:
                editions.append({"label": t["alerts_label"], "description": t["alerts_description"]})
            names = {c.slug: c.name for c in s.categories}
            self._send(subscriber, lang, "welcome", body=t["welcome_intro"].format(site=s.site.name),
                       button=t["preferences_link"], button_url=self.link("preferences", subscriber),
                       template="welcome", intro=t["welcome_intro"].format(site=s.site.name), editions=editions,
                       sections_label=t["categories"], sections=[names.get(c, c) for c in subscriber.categories],
                       result=result)
        else:
            self._send(subscriber, lang, "consent_result", body=result, button=t["preferences_link"],
                       button_url=self.link("preferences", subscriber))

    def ads_changed(self, subscriber: Subscriber, change: str, lang: str) -> None:
        """The result of giving ("granted") or withdrawing ("withdrawn") advertising consent (§50⑦)."""
        t = TEXT[lang]
        body = t[f"ads_{change}_body"].format(site=self.settings.site.name, date=self._date(self.clock(), lang))
        self._send(subscriber, lang, f"ads_{change}", body=body, button=t["preferences_link"],
                   button_url=self.link("preferences", subscriber) if subscriber.status == "confirmed" else "")

    def reconfirm(self, subscriber: Subscriber, lang: str) -> str:
        """The two-yearly question on advertising consent; returns its words, for the record."""
        t = TEXT[lang]
        body = t["reconfirm_body"].format(site=self.settings.site.name, date=self._date(subscriber.ad_consent_at, lang),
                                          preferences=self.link("preferences", subscriber))
        self._send(subscriber, lang, "reconfirm", body=body, button=t["reconfirm_button"],
                   button_url=self.link("consent", subscriber))
        return body

    def _date(self, moment: datetime | None, lang: str) -> str:
        local = (moment or self.clock()).astimezone(self.settings.site.timezone)
        return f"{local:%Y년 %m월 %d일 %H:%M}" if lang == "ko" else f"{local:%Y-%m-%d %H:%M} ({local.tzname()})"

    def _send(self, subscriber: Subscriber, lang: str, kind: str, *, button: str, button_url: str, body: str = "",
              footnote: str = "", template: str = "notice", **extra: object) -> None:
        t = TEXT[lang]
        site = self.settings.site.name
        subject = t[f"{kind}_subject"].format(site=site)
        mail = render_notice(self.templates, self.settings, language=lang, subject=subject,
                             title=subject.split("] ", 1)[-1], body=body or t[f"{kind}_body"].format(site=site),
                             button=button, button_url=button_url, footnote=footnote, why=t["why"].format(site=site),
                             template=template, **extra)
        tag = self.tags.notice(subscriber.id)
        data = build_message(self.settings, mail, to=subscriber.email, to_name=subscriber.name, now=self.clock(),
                             list_id="notices", message_id=message_id(sender_domain(self.settings), tag))
        send_one(self.transport, self.signer, self.tags.envelope_from(tag), subscriber.email, data)

