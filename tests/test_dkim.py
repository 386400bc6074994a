"""DKIM signatures (newsletter/signing.py) checked by two verifiers that share no code with the signer: dkimpy and
OpenDKIM's `opendkim-testmsg` (Debian's opendkim-tools), for RSA-SHA256 and Ed25519-SHA256 (RFC 8463), on
messages with Korean encoded words, folded headers, whitespace, dots, List-Unsubscribe and no body; a tampered
body or header must fail with both. Also the canonicalization against RFC 6376's example and dkimpy's, the
signature header's form, the settings' checks of the keys, and a real digest and a dotted message over SMTP.

`opendkim-testmsg` has no option for a local key record: it asks the DNS. So it runs in a private mount and
network namespace (`unshare --mount --net`, which needs root) where /etc/resolv.conf names 127.0.0.1 and
tests/opendkim_dns.py answers the test's key records on port 53 with dnspython. Nothing leaves the namespace and
the host's resolver is not touched. OpenDKIM 2.11 refuses a message without a Date header (dkim_chunk():
"Syntax error"), so every message here has one, as Gazette's all do.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from dkim.canonicalization import Relaxed
from hypothesis import given
from hypothesis import strategies as st

from feeds.core.errors import ConfigError
from newsletter.settings import load_settings
from newsletter.signing import (
    DkimError,
    DkimKey,
    DkimSigner,
    canonical_body,
    canonical_header,
    load_signer,
    read_private_key,
    sign_message,
    split_message,
)
from tests.conftest import DATA, NOW

OPENDKIM = Path("/usr/sbin/opendkim-testmsg")
RESOLVER = Path(__file__).with_name("opendkim_dns.py")  # the namespace's DNS and the opendkim-testmsg runs
RSA_KEY_FILE = DATA / "dkim" / "test.key"
RSA_RECORD = f"v=DKIM1; k=rsa; p={(DATA / 'dkim' / 'test.pub.b64').read_text().strip()}"
AT = int(datetime(2026, 11, 25, tzinfo=timezone.utc).timestamp())


@functools.cache
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def ed25519_record(key: ed25519.Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"


def keys() -> list[DkimKey]:
    return [DkimKey(b"test", b"example.com", read_private_key(RSA_KEY_FILE, "rsa")),
            DkimKey(b"ed", b"example.com", ed25519_key())]


def records() -> dict[str, str]:
    return {"test._domainkey.example.com": RSA_RECORD, "ed._domainkey.example.com": ed25519_record(ed25519_key())}


# --- the verifiers ------------------------------------------------------------------------------------------------

def dkimpy_verifies(message: bytes, index: int, published: dict[str, str] | None = None) -> bool:
    """dkimpy's verdict on the message's `index`th DKIM-Signature, with the key records given (no DNS)."""
    found = records() if published is None else published

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        record = found.get(name.decode().rstrip("."))
        return record.encode() if record else None

    try:
        return bool(dkim.DKIM(message).verify(idx=index, dnsfunc=dns))
    except dkim.DKIMException:
        return False


def signature_headers(message: bytes) -> list[bytes]:
    return re.findall(rb"DKIM-Signature:.*?\r\n(?=\S)", message, re.S)


def only_signature(message: bytes, index: int) -> bytes:
    """The message with its `index`th DKIM-Signature only: opendkim-testmsg reports on one signature."""
    headers = signature_headers(message)
    rest = message
    for header in headers:
        rest = rest.replace(header, b"", 1)
    return headers[index] + rest


@functools.cache
def opendkim_missing() -> str | None:
    """Why OpenDKIM's check cannot run here, or None."""
    if not OPENDKIM.exists():
        return f"{OPENDKIM} is missing (Debian: apt-get install opendkim-tools)"
    if shutil.which("unshare") is None or shutil.which("ip") is None or shutil.which("mount") is None:
        return "unshare, ip or mount is missing: no private namespace for opendkim-testmsg's DNS"
    probe = subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"cannot make a private mount and network namespace ({probe.stderr.strip()}; needs root)"
    return None


def opendkim_results(messages: list[bytes], tmp_path: Path, published: dict[str, str] | None = None) -> list[str]:
    """opendkim-testmsg's verdict on each message: "" when its signature verifies, else its error line."""
    if reason := opendkim_missing():
        pytest.skip(reason)
    files = []
    for i, message in enumerate(messages):
        files.append(tmp_path / f"opendkim-{i}.eml")
        files[-1].write_bytes(message)
    zone = tmp_path / "zone.json"
    zone.write_text(json.dumps(records() if published is None else published))
    done = subprocess.run(["unshare", "--mount", "--net", sys.executable, str(RESOLVER), str(zone), *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"the namespace's resolver failed: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


# --- the messages -------------------------------------------------------------------------------------------------

HEAD = [("From", "=?utf-8?b?7ZWc67mb7J2867O0?= <news@example.com>"), ("To", "reader@example.org"),
        ("Subject", "Today's news"), ("Date", "Wed, 25 Nov 2026 00:00:00 GMT"),
        ("Message-ID", "<d1-2-abc@example.com>"), ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'), ("Content-Transfer-Encoding", "8bit")]


def message(body: str | None, **headers: str) -> bytes:
    """A message with HEAD's headers (a keyword replaces one, `_` for `-`), CRLF line ends; None: no body at all."""
    named = {name.replace("_", "-").lower(): value for name, value in headers.items()}
    fields = [(name, named.pop(name.lower(), value)) for name, value in HEAD]
    fields += [(name.title().replace("Id", "ID") if name == "message-id" else name.title(), value)
               for name, value in named.items()]
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    return (head if body is None else head + "\r\n" + body).encode("utf-8")


UNSUBSCRIBE = {"List_Unsubscribe": "<https://news.example.com/unsubscribe/AbC-12_x>,\r\n <mailto:unsubscribe@"
                                   "example.com?subject=unsubscribe%20AbC-12_x>",
               "List_Unsubscribe_Post": "List-Unsubscribe=One-Click", "List_Id": "한빛일보 <daily.example.com>"}
CASES = {
    "korean": message("오늘의 주요 뉴스입니다.\r\n서울 — 한빛일보\r\n",
                      Subject="=?utf-8?b?W+2VnOu5m+ydvOuztF0g7Jik64qY7J2YIOuJtOyKpA==?=\r\n"
                              " =?utf-8?b?IMK3IDIwMjbrhYQgMTHsm5QgMjXsnbw=?="),
    "long-folded-headers": message("body\r\n", Subject=" ".join(["a long subject folded over lines"] * 8)
                                   .replace("lines a", "lines\r\n a"),
                                   To="one@example.org,\r\n\ttwo@example.org,\r\n three@example.org",
                                   Reply_To="desk@example.com"),
    "whitespace": message("  leading spaces\r\nruns   of\t\tspaces \t \r\ntrailing tab\t\r\n\r\n \r\n\r\n\r\n",
                          Subject="spaces   and\ttabs  \t"),
    "dots": message(".\r\n..\r\n.starts with a dot\r\nmid . dot\r\n.\r\n"),
    "list-unsubscribe": message("unsubscribe in one click\r\n", **UNSUBSCRIBE),
    "no-body": message(""),
    "headers-only": message(None),
}


def tampered_body(signed: bytes) -> bytes:
    head, _, body = signed.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n" + body + b"one more line\r\n"


def tampered_header(signed: bytes) -> bytes:
    return signed.replace(b"\r\nSubject:", b"\r\nSubject: Re:", 1)


# --- every signature verifies, every tampering fails --------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_dkimpy_verifies_both_signatures_and_refuses_tampering(name: str) -> None:
    signed = sign_message(CASES[name], keys(), AT)
    assert len(signature_headers(signed)) == 2
    for index, algorithm in enumerate(("rsa", "ed25519")):
        assert dkimpy_verifies(signed, index), f"{name}: the {algorithm} signature does not verify"
        assert not dkimpy_verifies(tampered_body(signed), index), f"{name}: a changed body verified ({algorithm})"
        assert not dkimpy_verifies(tampered_header(signed), index), f"{name}: a changed Subject verified"
        assert not dkimpy_verifies(signed, index, {}), "no key record, no pass"


@pytest.mark.parametrize("name", CASES)
def test_opendkim_verifies_both_signatures_and_refuses_tampering(name: str, tmp_path: Path) -> None:
    signed = sign_message(CASES[name], keys(), AT)
    batch = [only_signature(m, i) for i in (0, 1) for m in (signed, tampered_body(signed), tampered_header(signed))]
    verdicts = opendkim_results(batch, tmp_path)
    assert verdicts[0] == "", f"{name}: OpenDKIM says {verdicts[0]!r} of the RSA signature"
    assert verdicts[3] == "", f"{name}: OpenDKIM says {verdicts[3]!r} of the Ed25519 signature"
    for verdict in verdicts[1:3] + verdicts[4:6]:
        assert "Bad signature" in verdict, f"{name}: a tampered message got {verdict!r}"


def test_opendkim_refuses_a_signature_under_another_key(tmp_path: Path) -> None:
    """The Ed25519 signature is checked, not skipped: a record holding another Ed25519 key fails it."""
    signed = sign_message(CASES["korean"], keys(), AT)
    other = {**records(), "ed._domainkey.example.com": ed25519_record(ed25519.Ed25519PrivateKey.generate())}
    [verdict] = opendkim_results([only_signature(signed, 1)], tmp_path, other)
    assert "Bad signature" in verdict
    assert not dkimpy_verifies(signed, 1, other)


@pytest.mark.parametrize("change", [
    pytest.param(lambda m: m + b"\r\n\r\n", id="empty-lines-added-at-the-end"),
    pytest.param(lambda m: m.replace(b"\r\nthe news", b"\r\nthe \t news").replace(b"spaces\r\n", b"spaces  \r\n"),
                 id="whitespace-in-the-body"),
    pytest.param(lambda m: m.replace(b"\r\nSubject: ", b"\r\nsubject:\t ", 1), id="header-name-case-and-space"),
    pytest.param(lambda m: m.replace(b"Today's news", b"Today's\r\n  news", 1), id="header-refolded"),
])
def test_what_relaxed_canonicalization_forgives(change) -> None:  # type: ignore[no-untyped-def]
    """Relays may re-space and re-fold: relaxed/relaxed signatures survive it (RFC 6376 §3.4.2, §3.4.4)."""
    signed = sign_message(message("the news\r\nmore spaces\r\n"), keys(), AT)
    changed = change(signed)
    assert changed != signed
    assert dkimpy_verifies(changed, 0) and dkimpy_verifies(changed, 1)


# --- the signature header ---------------------------------------------------------------------------------------

def test_the_signature_header_names_what_it_signs_and_is_folded() -> None:
    signed = DkimSigner(tuple(keys()), clock=lambda: NOW).sign(message("x\r\n", **UNSUBSCRIBE))
    rsa_header, ed_header = signature_headers(signed)
    for header, algorithm, selector in ((rsa_header, b"rsa-sha256", b"test"), (ed_header, b"ed25519-sha256", b"ed")):
        lines = header.split(b"\r\n")[:-1]
        assert all(len(line) <= 78 for line in lines), "folded under 78 columns"
        assert all(line[:1] == b" " for line in lines[1:]), "every further line is a continuation"
        tags = dict(tag.strip().split(b"=", 1) for tag in re.sub(rb"\r\n\s", b"", header)[15:].split(b";"))
        assert tags[b"a"] == algorithm and tags[b"s"] == selector and tags[b"d"] == b"example.com"
        assert tags[b"c"] == b"relaxed/relaxed" and tags[b"v"] == b"1"
        assert tags[b"t"] == str(int(NOW.timestamp())).encode(), "t= is the signer's clock"
        assert tags[b"h"].split(b":") == [b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
                                          b"list-unsubscribe-post", b"list-id", b"mime-version", b"content-type"]
        assert list(tags)[-1] == b"b" and re.search(rb"\r\n b=", header), "b= last, on a line of its own"
    assert signed.endswith(message("x\r\n", **UNSUBSCRIBE)), "the message follows unchanged"


def test_a_header_signed_twice_is_signed_once_its_last_instance() -> None:
    """h= keeps today's form: each present header once; DKIM takes the lowest instance (§5.4.2)."""
    twice = message("x\r\n").replace(b"To: reader@example.org\r\n", b"To: a@example.org\r\nTo: b@example.org\r\n")
    fields, _ = split_message(twice)
    assert fields[b"to"] == b" b@example.org"
    signed = sign_message(twice, keys(), AT)
    assert dkimpy_verifies(signed, 0) and dkimpy_verifies(signed, 1)
    assert not dkimpy_verifies(signed.replace(b"To: b@", b"To: c@"), 0)


@pytest.mark.parametrize("bad, reason", [
    pytest.param(b"To: x@example.org\r\nDate: Wed, 25 Nov 2026 00:00:00 GMT\r\n\r\nx\r\n", "no From", id="no-from"),
    pytest.param(b" folded first\r\nFrom: a@example.com\r\n\r\nx\r\n", "folded line", id="starts-folded"),
    pytest.param(b"From: a@example.com\r\nnot a header\r\n\r\nx\r\n", "is not 'Name: value'", id="no-colon"),
    pytest.param(b"From: a@example.com\nBcc: b@example.com\r\n\r\nx\r\n", "without CRLF", id="bare-lf"),
])
def test_a_message_that_cannot_be_signed_is_refused(bad: bytes, reason: str) -> None:
    with pytest.raises(DkimError, match=reason):
        sign_message(bad, keys(), AT)


# --- canonicalization -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, canonical", [
    pytest.param(b" C \r\nD \t E\r\n\r\n\r\n", b" C\r\nD E\r\n", id="rfc6376-3.4.5-example"),
    pytest.param(b"", b"", id="empty"),
    pytest.param(b"\r\n", b"", id="one-empty-line"),
    pytest.param(b"\r\n\r\n \r\n\t\r\n", b"", id="only-blank-lines"),
    pytest.param(b"no line end", b"no line end\r\n", id="no-final-crlf"),
    pytest.param(b"trailing  ", b"trailing\r\n", id="trailing-space-without-crlf"),
    pytest.param(b"QUJD\r\nREVG\r\n", b"QUJD\r\nREVG\r\n", id="base64-untouched"),
    pytest.param(b"Content-Type: text/plain; charset=utf-8\r\n\r\nQUJD\r\n\r\n", b"Content-Type: text/plain; "
                 b"charset=utf-8\r\n\r\nQUJD\r\n", id="mime-part"),
    pytest.param(b"a b " * 100 + b"\r\n", (b"a b " * 100).rstrip() + b"\r\n", id="many-single-spaces"),
    pytest.param(b"a b " * 100 + b"  c\r\n", b"a b " * 100 + b"c\r\n", id="a-run-after-many-spaces"),
    pytest.param(b".\r\n..\r\n", b".\r\n..\r\n", id="dots"),
])
def test_canonical_body(body: bytes, canonical: bytes) -> None:
    assert canonical_body(body) == canonical


@pytest.mark.parametrize("name, value, canonical", [
    pytest.param(b"A", b" X", b"a:X", id="rfc6376-3.4.5-a"),
    pytest.param(b"B ", b" Y\t\r\n\tZ  ", b"b:Y Z", id="rfc6376-3.4.5-b"),
    pytest.param(b"Subject", b" =?utf-8?b?7ZWc?=\r\n =?utf-8?b?67mb?=", b"subject:=?utf-8?b?7ZWc?= =?utf-8?b?67mb?=",
                 id="folded-encoded-words"),
])
def test_canonical_header(name: bytes, value: bytes, canonical: bytes) -> None:
    assert canonical_header(name, value) == canonical


@given(st.lists(st.sampled_from([b"a", b"b", b" ", b"\t", b"\r\n", b".", "한".encode()]), max_size=40))
def test_canonical_body_agrees_with_dkimpy(pieces: list[bytes]) -> None:
    """Bodies as they cross SMTP, ending in CRLF. (On a last line without CRLF that is all whitespace, dkimpy
    keeps a space; RFC 6376 and we drop it, as a receiver does once SMTP has added the CRLF.)"""
    body = b"".join(pieces) + b"\r\n"
    assert canonical_body(body) == Relaxed.canonicalize_body(body)


@given(st.lists(st.sampled_from([b"x", b"y", b" ", b"\t", b"\r\n "]), max_size=30))
def test_canonical_header_agrees_with_dkimpy(pieces: list[bytes]) -> None:
    value = b" " + b"".join(pieces)
    [(name, expected)] = Relaxed.canonicalize_headers([(b"Subject", value + b"\r\n")])
    assert canonical_header(b"Subject", value) + b"\r\n" == name + b":" + expected


# --- the settings -----------------------------------------------------------------------------------------------

MINIMAL = """
[secrets]
signing_key = "0123456789abcdef0123"

[[categories]]
slug = "politics"
name = "정치"

[mail]
"""


def key_file(folder: Path, kind: str) -> Path:
    """A key file of `kind`: ed25519-pem, ed25519-raw (dkimpy's dknewkey), rsa, encrypted, garbage."""
    path = folder / f"{kind}.key"
    if kind == "ed25519-pem":
        path.write_bytes(ed25519_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    elif kind == "ed25519-raw":
        raw = ed25519_key().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption())
        path.write_bytes(base64.b64encode(raw) + b"\n")
    elif kind == "rsa":
        shutil.copyfile(RSA_KEY_FILE, path)
    elif kind == "encrypted":
        path.write_bytes(read_private_key(RSA_KEY_FILE, "rsa").private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase")))
    else:
        path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    return path


def load(folder: Path, **mail: str):  # type: ignore[no-untyped-def]
    path = folder / "gazette.toml"
    mail = {"from": "한빛일보 <news@example.com>", **mail}
    path.write_text(MINIMAL + "".join(f"{k} = {json.dumps(v)}\n" for k, v in mail.items()), encoding="utf-8")
    return load_settings(path, {})


@pytest.mark.parametrize("mail, key, reason", [
    pytest.param({"dkim_ed25519_selector": "ed"}, "mail.dkim_ed25519_key_file", "go together", id="ed25519-half"),
    pytest.param({"dkim_ed25519_selector": "ed", "dkim_ed25519_key_file": "ed25519-pem"},
                 "mail.dkim_ed25519_selector", "needs dkim_selector and dkim_key_file", id="ed25519-without-rsa"),
    pytest.param({"dkim_selector": "s1", "dkim_key_file": "rsa", "dkim_ed25519_selector": "s1",
                  "dkim_ed25519_key_file": "ed25519-pem"}, "mail.dkim_ed25519_selector", "must differ",
                 id="same-selector"),
    pytest.param({"dkim_selector": "s1; x=y", "dkim_key_file": "rsa"}, "mail.dkim_selector", "letters, digits",
                 id="selector-with-a-tag"),
    pytest.param({"dkim_selector": "s1", "dkim_key_file": "ed25519-pem"}, "mail.dkim_key_file",
                 "holds an Ed25519 key, not an RSA key", id="ed25519-key-as-rsa"),
    pytest.param({"dkim_selector": "s1", "dkim_key_file": "rsa", "dkim_ed25519_selector": "ed",
                  "dkim_ed25519_key_file": "rsa"}, "mail.dkim_ed25519_key_file", "holds an RSA key, not an Ed25519",
                 id="rsa-key-as-ed25519"),
    pytest.param({"dkim_selector": "s1", "dkim_key_file": "garbage"}, "mail.dkim_key_file", "holds no PEM private key",
                 id="not-a-key"),
    pytest.param({"dkim_selector": "s1", "dkim_key_file": "encrypted"}, "mail.dkim_key_file", "encrypted",
                 id="encrypted-key"),
    pytest.param({"dkim_selector": "s1", "dkim_key_file": "missing"}, "mail.dkim_key_file", "not a readable file",
                 id="missing-file"),
    pytest.param({"dkim_selector": "s1", "dkim_key_file": "rsa", "from": "News <news@exa_mple.com>",
                  "return_path": "bounce@example.com"}, "mail.from",
                 "DKIM d=", id="from-domain-not-a-host-name"),
])
def test_a_bad_dkim_setting_stops_the_start_naming_the_key(tmp_path: Path, mail: dict[str, str], key: str,
                                                          reason: str) -> None:
    files = {"dkim_key_file", "dkim_ed25519_key_file"}
    values = {k: (str(key_file(tmp_path, v)) if v != "missing" else str(tmp_path / "missing.key")) if k in files
              else v for k, v in mail.items()}
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **values)
    assert info.value.key == key
    assert reason in info.value.reason, info.value.reason


def test_a_short_rsa_key_is_refused(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is missing: cryptography will not make a 512-bit key")
    short = tmp_path / "short.key"
    subprocess.run(["openssl", "genrsa", "-out", str(short), "512"], check=True, capture_output=True)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, dkim_selector="s1", dkim_key_file=str(short))
    assert info.value.key == "mail.dkim_key_file" and "512-bit" in info.value.reason


@pytest.mark.parametrize("ed25519_form", ["ed25519-pem", "ed25519-raw"])
def test_both_keys_load_once_and_sign(tmp_path: Path, ed25519_form: str) -> None:
    settings = load(tmp_path, dkim_selector="test", dkim_key_file=str(key_file(tmp_path, "rsa")),
                    dkim_ed25519_selector="ed", dkim_ed25519_key_file=str(key_file(tmp_path, ed25519_form)))
    signer = load_signer(settings.mail)
    assert signer is not None and [key.algorithm for key in signer.keys] == [b"rsa-sha256", b"ed25519-sha256"]
    signed = signer.sign(CASES["korean"])
    assert dkimpy_verifies(signed, 0) and dkimpy_verifies(signed, 1)
    assert load_signer(replace(settings.mail, dkim_ed25519_selector=None, dkim_ed25519_key_file=None)).keys[0] \
        .algorithm == b"rsa-sha256"  # type: ignore[union-attr]
    assert load_signer(replace(settings.mail, dkim_selector=None, dkim_key_file=None)) is None
    from_environment = load_settings(tmp_path / "gazette.toml", {"GAZETTE_MAIL_DKIM_ED25519_SELECTOR": "ed2"})
    assert from_environment.mail.dkim_ed25519_selector == "ed2"


# --- over SMTP: a real digest, and dots ------------------------------------------------------------------------

def test_a_digest_sent_over_smtp_verifies_with_both_verifiers(  # type: ignore[no-untyped-def]
        tmp_path, clock, smtp_server) -> None:
    from tests.test_delivery import make_services
    from tests.test_digest import seed

    recorder, url = smtp_server
    env = {"GAZETTE_MAIL_DKIM_SELECTOR": "test", "GAZETTE_MAIL_DKIM_KEY_FILE": str(RSA_KEY_FILE),
           "GAZETTE_MAIL_DKIM_ED25519_SELECTOR": "ed",
           "GAZETTE_MAIL_DKIM_ED25519_KEY_FILE": str(key_file(tmp_path, "ed25519-pem"))}
    services = make_services(tmp_path, clock, url, env)
    seed(services, clock)
    assert services.send("daily", NOW, everyone=True).sent == 2
    received = [content for _, _, content in recorder.messages]
    assert len(received) == 2
    for raw in received:
        assert dkimpy_verifies(raw, 0) and dkimpy_verifies(raw, 1)
    verdicts = opendkim_results([only_signature(raw, i) for raw in received for i in (0, 1)], tmp_path)
    assert verdicts == ["", "", "", ""], verdicts


def test_dotted_lines_survive_smtp_dot_stuffing(tmp_path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from newsletter.transport import SmtpTransport

    recorder, url = smtp_server
    signed = sign_message(CASES["dots"], keys(), AT)
    transport = SmtpTransport(url)
    transport.send("bounce@example.com", "reader@example.org", signed)
    transport.close()
    [raw] = recorder.to("reader@example.org")
    assert b"\r\n.starts with a dot\r\n" in raw
    assert dkimpy_verifies(raw, 0) and dkimpy_verifies(raw, 1)
    assert opendkim_results([only_signature(raw, 0), only_signature(raw, 1)], tmp_path) == ["", ""]
