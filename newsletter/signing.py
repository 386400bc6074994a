"""DKIM signatures (RFC 6376) made through OpenSSL, over the headers a receiver and a one-click unsubscriber rely on.

One RSA-SHA256 signature, and a second one with Ed25519-SHA256 (RFC 8463) when the operator has an Ed25519 key:
receivers that know Ed25519 check both, the others skip that one. Both use relaxed/relaxed canonicalization and
sign the same headers (`SIGNED_HEADERS`, those present) and the same body hash, so the body is canonicalized and
hashed once per message.

`sign_message` is a pure function of the message, the keys and the time. The keys are parsed once per process
(`load_signer`) and the settings check parses them at start (`read_private_key`), so a bad key stops the start.
OpenSSL's RSA-2048 signature is the cost that remains (about 1 ms of CPU on our machines), and `cryptography`
releases the GIL while it signs (both RSA and Ed25519; see docs/benchmarks.md), so the sending threads sign in
parallel. The canonicalization of the usual body costs a few microseconds: our parts are base64 under MIME
headers, with no tab, no whitespace run and no space at a line's end, which one-byte searches prove without a
regular expression over the whole body.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, Protocol, Sequence

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from feeds.core.clock import Clock, utc_now

from .errors import NewsletterError

SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post",
                  b"list-id", b"reply-to", b"mime-version", b"content-type")
MIN_RSA_BITS = 1024  # RFC 8301 §3.2: verifiers must not accept signatures by shorter keys
KeyKind = Literal["rsa", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# A selector is a DNS name below _domainkey (RFC 6376 §3.1); the signing domain a host name. Both go into the
# signature header as they are, so nothing else may pass: no ';', '=', space or line break.
_LABEL = rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_SELECTOR = re.compile(rb"%s(?:\.%s)*\Z" % (_LABEL, _LABEL))
_DOMAIN = re.compile(rb"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                     rb"[A-Za-z0-9])?\Z")
# A field: its name (printable ASCII but ':', RFC 5322 §3.6.8), its value and folded lines, each ending in CRLF;
# a bare CR or LF matches nothing, so the field is refused.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n")
_WSP_RUN = re.compile(rb"[ \t]+")
_WSP_AT_EOL = re.compile(rb"[ \t]+\r\n")
_KINDS = ((rsa.RSAPrivateKey, "an RSA key"), (ed25519.Ed25519PrivateKey, "an Ed25519 key"),
          (ec.EllipticCurvePrivateKey, "an EC key"), (ed448.Ed448PrivateKey, "an Ed448 key"),
          (dsa.DSAPrivateKey, "a DSA key"))
_WIDTH = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters


class DkimError(NewsletterError):
    """A key that cannot sign (unreadable, not a private key, the wrong kind, too short), a selector or domain
    that cannot go into a signature, or a message that cannot be signed (no From, a broken header line)."""


class DkimSettings(Protocol):
    """What `load_signer` reads of `[mail]` (`newsletter.settings.MailSettings` has it)."""

    @property
    def from_address(self) -> str: ...
    @property
    def dkim_selector(self) -> str | None: ...
    @property
    def dkim_key_file(self) -> Path | None: ...
    @property
    def dkim_ed25519_selector(self) -> str | None: ...
    @property
    def dkim_ed25519_key_file(self) -> Path | None: ...


@dataclass(frozen=True)
class DkimKey:
    """A private key and where receivers find its public half: the TXT record `selector._domainkey.domain`."""

    selector: bytes
    domain: bytes
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not is_selector(self.selector.decode("ascii", "replace")):
            raise DkimError(f"{self.selector!r} is not a DKIM selector (letters, digits, '-', '_' and dots)")
        if not _DOMAIN.match(self.domain):
            raise DkimError(f"{self.domain!r} is not a domain name a DKIM signature can name")

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if isinstance(self.private_key, rsa.RSAPrivateKey) else b"ed25519-sha256"

    def signature(self, data: bytes) -> bytes:
        """The `b=` bytes over the canonical headers `data`. Ed25519 signs their SHA-256 (RFC 8463 §3)."""
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private_key.sign(hashlib.sha256(data).digest())


def is_selector(value: str) -> bool:
    """A DKIM selector: DNS labels of letters, digits, '-' and '_' (RFC 6376 §3.1), nothing a header could hold."""
    return value.isascii() and bool(_SELECTOR.match(value.encode("ascii")))


def read_private_key(path: Path, kind: KeyKind) -> PrivateKey:
    """The private key in `path`: PEM (PKCS#8, or PKCS#1 for RSA), or for Ed25519 also the base64 of the 32-byte
    seed (dkimpy's `dknewkey --ktype ed25519`). DkimError with the reason when it is not a usable key of `kind`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DkimError(f"{path} cannot be read ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise DkimError(f"{path} is encrypted: give the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        key = _raw_ed25519(data) if kind == "ed25519" else None
        if key is None:  # cryptography says why: not PEM, or an RSA key that fails its check (multi-prime, broken)
            raise DkimError(f"{path} holds no PEM private key we can use ({str(exc).split('.')[0]})") from None
    expected = rsa.RSAPrivateKey if kind == "rsa" else ed25519.Ed25519PrivateKey
    if not isinstance(key, expected):
        found = next((name for cls, name in _KINDS if isinstance(key, cls)), "another kind of key")
        raise DkimError(f"{path} holds {found}, not {dict(_KINDS)[expected]}")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise DkimError(f"{path} holds a {key.key_size}-bit RSA key: receivers ignore signatures by keys under "
                        f"{MIN_RSA_BITS:,} bits (RFC 8301); make a 2,048-bit one")
    return key


def _raw_ed25519(data: bytes) -> ed25519.Ed25519PrivateKey | None:
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return None
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed) if len(seed) == 32 else None


def signing_domain(from_address: str) -> bytes:
    """The `d=` of our signatures: the From address's domain, in A-labels (RFC 6376 §3.5)."""
    domain = parseaddr(from_address)[1].rpartition("@")[2]
    try:
        ascii_domain = domain.encode("idna") if not domain.isascii() else domain.encode("ascii")
    except UnicodeError:
        raise DkimError(f"{domain!r} is not a domain name a DKIM signature can name") from None
    if not _DOMAIN.match(ascii_domain):
        raise DkimError(f"{domain!r} is not a domain name a DKIM signature can name")
    return ascii_domain.lower()


# --- canonicalization (RFC 6376 §3.4) --------------------------------------------------------------------------

def canonical_body(body: bytes) -> bytes:
    """Relaxed body canonicalization (§3.4.4): whitespace runs become one space, whitespace at line ends and empty
    lines at the end go, and a body that is not empty ends in CRLF. `body` has CRLF line ends."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    if _has_whitespace_to_change(body):
        body = _WSP_RUN.sub(b" ", _WSP_AT_EOL.sub(b"\r\n", body))
    end = len(body)
    while body.endswith(b"\r\n\r\n", 0, end):
        end -= 2
    if end == 2:  # nothing but empty lines
        return b""
    return body if end == len(body) else body[:end]


def _has_whitespace_to_change(body: bytes) -> bool:
    """Whether `body` (ending in CRLF) has a tab, two spaces in a row or a space before CRLF. Searching for one
    byte runs at memchr's speed, a two-byte needle (or a regular expression) 30 to 200 times slower; base64
    parts have a space only in their few MIME headers, so this looks at a handful of spaces. A text with many
    spaces is left to the regular expressions after the first 64."""
    if b"\t" in body:
        return True
    at = body.find(b" ")
    for _ in range(64):
        if at < 0:
            return False
        if body[at + 1] in (0x20, 0x0D):  # never past the end: the body ends in CRLF
            return True
        at = body.find(b" ", at + 1)
    return True


def canonical_header(name: bytes, value: bytes) -> bytes:
    """Relaxed header canonicalization (§3.4.2), without the CRLF: the name in lower case, the value unfolded,
    whitespace runs as one space, none around the colon or at the end."""
    value = value.replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.rstrip(b" \t").lower() + b":" + value.strip(b" \t")


def split_message(message: bytes) -> tuple[dict[bytes, bytes], bytes]:
    """The last field of each name (lower case -> its raw value, folding included) and the body. A later field
    of a name wins, as DKIM selects fields from the bottom (§5.4.2). One match per field, in C."""
    end = message.find(b"\r\n\r\n")
    if end < 0:  # headers only
        head, body = (message if message.endswith(b"\r\n") else message + b"\r\n"), b""
    else:
        head, body = message[:end + 2], message[end + 4:]
    fields: dict[bytes, bytes] = {}
    at, size = 0, len(head)
    while at < size:
        found = _FIELD.match(head, at)
        if found is None:
            line = head[at:head.find(b"\r\n", at)]
            if b"\r" in line or b"\n" in line:
                raise DkimError(f"the header line {line[:60]!r} breaks without CRLF")
            if line[:1] in (b" ", b"\t"):
                raise DkimError(f"a folded line {line[:60]!r} where a field should start")
            raise DkimError(f"the header line {line[:60]!r} is not 'Name: value'")
        fields[found[1].lower()] = found[2]
        at = found.end()
    return fields, body


# --- the signature header --------------------------------------------------------------------------------------

def signature_fields(key: DkimKey, names: Sequence[bytes], body_hash: bytes, at: int) -> bytes:
    """`DKIM-Signature: v=1; …; bh=…;` + CRLF + ` b=`, folded under 78 columns: what is hashed (with the `b=`
    value empty, §3.7) and what the value is appended to. `b=` starts a line of its own, so the value, however it
    is folded, never moves a tag before it."""
    pieces = [b"DKIM-Signature: v=1;", b" a=" + key.algorithm + b";", b" c=relaxed/relaxed;",
              b" d=" + key.domain + b";", b" s=" + key.selector + b";", b" t=%d;" % at]
    pieces += [(b" h=" if i == 0 else b"") + name + (b";" if i == len(names) - 1 else b":")
               for i, name in enumerate(names)]
    pieces.append(b" bh=" + body_hash + b";")
    lines, line = [], b""
    for piece in pieces:
        if line and len(line) + len(piece) > _WIDTH:
            lines.append(line)
            line = piece if piece[:1] == b" " else b" " + piece
        else:
            line += piece
    lines += [line, b" b="]
    return b"\r\n".join(lines)


def fold_signature(value: bytes) -> bytes:
    """The base64 of `b=` after ` b=`, in lines of at most 78 columns (FWS may go anywhere in it, §3.5)."""
    first = _WIDTH - 3
    rest = [value[i:i + _WIDTH - 1] for i in range(first, len(value), _WIDTH - 1)]
    return b"\r\n ".join([value[:first], *rest])


def sign_message(message: bytes, keys: Sequence[DkimKey], at: int) -> bytes:
    """`message` with one DKIM-Signature header per key prepended, signed at `at` (Unix seconds). `message` is
    wire bytes with CRLF line ends, as `compose` writes them: a header broken by a bare CR or LF is refused, since
    a relay would rewrite it and break the signature (the body is not searched for them: it would cost more than
    the rest of the canonicalization, and compose writes base64 lines)."""
    fields, body = split_message(message)
    if b"from" not in fields:
        raise DkimError("the message has no From header; DKIM must sign it (RFC 6376 §5.4)")
    names = [name for name in SIGNED_HEADERS if name in fields]
    signed = b"".join(canonical_header(name, fields[name]) + b"\r\n" for name in names)
    body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
    headers = []
    for key in keys:
        head = signature_fields(key, names, body_hash, at)
        value = base64.b64encode(key.signature(signed + canonical_header(*head.split(b":", 1))))
        headers.append(head + fold_signature(value) + b"\r\n")
    return b"".join(headers) + message


@dataclass(frozen=True)
class DkimSigner:
    """Signs each outgoing message with every configured key (RSA first); the keys are parsed once."""

    keys: tuple[DkimKey, ...]
    clock: Clock = utc_now

    def sign(self, message: bytes) -> bytes:
        return sign_message(message, self.keys, int(self.clock().timestamp()))


def load_signer(settings: DkimSettings, clock: Clock = utc_now) -> DkimSigner | None:
    """The signer of `[mail]`'s DKIM keys, None when there is no key. DkimError for a key that cannot sign."""
    if not settings.dkim_selector or settings.dkim_key_file is None:
        return None
    domain = signing_domain(settings.from_address)
    keys = [DkimKey(settings.dkim_selector.encode("ascii", "replace"), domain,
                    read_private_key(settings.dkim_key_file, "rsa"))]
    if settings.dkim_ed25519_selector and settings.dkim_ed25519_key_file is not None:
        keys.append(DkimKey(settings.dkim_ed25519_selector.encode("ascii", "replace"), domain,
                            read_private_key(settings.dkim_ed25519_key_file, "ed25519")))
    return DkimSigner(tuple(keys), clock)
