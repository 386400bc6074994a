"""Attacks on the DKIM-Signature header: what reaches it (the selector, the From domain) cannot add a tag, a line or a
header, and a message whose header a relay would split (a bare CR or LF) is refused rather than signed.

The h= list comes from `SIGNED_HEADERS` only, never from the message's field names; what a header's value holds is
signed as it is and never written into the signature.
"""

from __future__ import annotations

import email
import json
import re
from email import policy
from pathlib import Path

import pytest

from feeds.core.errors import ConfigError
from newsletter.settings import load_settings
from newsletter.signing import DkimError, DkimKey, read_private_key, sign_message, signing_domain
from tests.conftest import DATA
from tests.test_dkim import AT, dkimpy_verifies, keys, message, signature_headers

RSA = read_private_key(DATA / "dkim" / "test.key", "rsa")
CONFIG = """
[secrets]
signing_key = "0123456789abcdef0123"

[[categories]]
slug = "politics"
name = "정치"

[mail]
return_path = "bounce@example.com"
dkim_key_file = {key}
"""

HOSTILE_SELECTORS = {
    "another-tag": "s1; d=evil.example",
    "crlf-header": "s1\r\nBcc: victim@example.org",
    "lf-header": "s1\nBcc: victim@example.org",
    "folded-tag": "s1\r\n b=forged",
    "space": "s1 x",
    "equals": "s1=",
    "empty": "",
    "empty-label": "s1..x",
    "hangul": "선택자",
    "nul": "s1\x00",
}


@pytest.mark.parametrize("selector", HOSTILE_SELECTORS.values(), ids=HOSTILE_SELECTORS.keys())
def test_a_hostile_selector_stops_the_start(tmp_path: Path, selector: str) -> None:
    path = tmp_path / "gazette.toml"
    text = CONFIG.format(key=json.dumps(str(DATA / "dkim" / "test.key")))
    path.write_text(text + f"dkim_selector = {json.dumps(selector)}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert info.value.key == "mail.dkim_selector"


@pytest.mark.parametrize("selector", HOSTILE_SELECTORS.values(), ids=HOSTILE_SELECTORS.keys())
def test_a_hostile_selector_cannot_make_a_key(selector: str) -> None:
    """The signer checks again: a selector that skipped the settings (a test, a script) still cannot sign."""
    with pytest.raises(DkimError):
        DkimKey(selector.encode("utf-8"), b"example.com", RSA)


@pytest.mark.parametrize("domain", [b"example.com; s=evil", b"example.com\r\nBcc: victim@example.org",
                                    b"example.com b=x", b"-example.com", b"", b"example..com", b"ex_ample.com"])
def test_a_hostile_domain_cannot_make_a_key(domain: bytes) -> None:
    with pytest.raises(DkimError):
        DkimKey(b"s1", domain, RSA)


@pytest.mark.parametrize("sender, domain", [
    ("News <news@example.com>", b"example.com"),
    ("News <news@EXAMPLE.com>", b"example.com"),
    ("뉴스 <news@한빛일보.kr>", "한빛일보.kr".encode("idna")),
])
def test_the_signing_domain_is_the_from_domain_in_a_labels(sender: str, domain: bytes) -> None:
    assert signing_domain(sender) == domain


@pytest.mark.parametrize("sender", ['"x" <news@example.com;d=evil>', "news@exa mple.com", "news@[127.0.0.1]",
                                    "news@example.com\r\nBcc: victim@example.org", "news@example.com; s=evil",
                                    "<news@example.com>, <other@evil.example>"])
def test_a_hostile_from_gives_a_bare_host_name_or_nothing(sender: str) -> None:
    """Whatever `parseaddr` makes of the From setting, d= is a host name in A-labels, or there is no signer."""
    try:
        domain = signing_domain(sender)
    except DkimError:
        return
    assert re.fullmatch(rb"[a-z0-9-]+(\.[a-z0-9-]+)*", domain), domain


@pytest.mark.parametrize("header", [
    pytest.param(b"Subject: hi\nBcc: victim@example.org", id="bare-lf"),
    pytest.param(b"Subject: hi\rBcc: victim@example.org", id="bare-cr"),
    pytest.param(b"Subject: hi\r\n folded\nBcc: victim@example.org", id="bare-lf-in-a-fold"),
])
def test_a_header_a_relay_would_split_is_refused(header: bytes) -> None:
    hostile = message("x\r\n").replace(b"Subject: Today's news", header)
    with pytest.raises(DkimError, match="without CRLF"):
        sign_message(hostile, keys(), AT)


@pytest.mark.parametrize("subject", [
    pytest.param("=?utf-8?q?x=0D=0ABcc:_victim@example.org?=", id="encoded-crlf"),
    pytest.param("x; h=bcc; b=forged", id="tags-in-a-value"),
    pytest.param("=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=", id="base64-crlf"),
])
def test_a_hostile_value_is_signed_as_it_is_and_adds_no_header(subject: str) -> None:
    original = message("x\r\n", Subject=subject)
    signed = sign_message(original, keys(), AT)
    names = [name.lower() for name in email.message_from_bytes(signed, policy=policy.compat32).keys()]
    before = [name.lower() for name in email.message_from_bytes(original, policy=policy.compat32).keys()]
    assert names == ["dkim-signature", "dkim-signature", *before], "exactly the two signatures added"
    assert "bcc" not in names
    for header in signature_headers(signed):
        assert header.count(b"\r\n") == header.count(b"\r\n ") + 1, "every line of the signature is a continuation"
        assert subject.encode() not in header
    assert dkimpy_verifies(signed, 0) and dkimpy_verifies(signed, 1)


def test_field_names_in_the_message_do_not_steer_h() -> None:
    """A field named like a tag list is looked up, never written: h= is SIGNED_HEADERS present, in that order."""
    odd = message("x\r\n").replace(b"\r\nDate:", b"\r\nh=bcc;b=x: y\r\nBcc;h=to: z\r\nDate:")
    [header, _] = signature_headers(sign_message(odd, keys(), AT))
    h = header.replace(b"\r\n ", b"").split(b" h=", 1)[1].split(b";", 1)[0]
    assert h == b"from:to:subject:date:message-id:mime-version:content-type"
