"""The VAPID key (RFC 8292): a P-256 key pair that names Gazette to the browsers' push services.

`gazette push keys` makes one (`new_vapid_key`, `write_vapid_key`: PEM, mode 0600, never over a file unless told);
the [push] check reads it back (`read_vapid_key`) and gives the browser its public point (`public_key_of`, the
`applicationServerKey` the subscribe snippet passes to `pushManager.subscribe`). A push subscription is bound to that
public key: a new key means every browser must subscribe again, so the file is kept like the DKIM key.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import NewsletterError


class PushKeyError(NewsletterError):
    """The VAPID key file is missing, unreadable or not an unencrypted P-256 private key."""


def b64url(data: bytes) -> str:
    """base64url without padding, as Web Push writes keys (RFC 8292 §3.2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    """The public point, uncompressed (65 bytes), base64url: the browser's `applicationServerKey`."""
    return b64url(key.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint))


def pem_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def read_vapid_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The key in `path`; PushKeyError saying what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PushKeyError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PushKeyError(f"{path} is encrypted; Gazette needs it unencrypted (mode 0600)") from None
    except ValueError:
        raise PushKeyError(f"{path} is not a PEM private key (make one with `gazette push keys`)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PushKeyError(f"{path} is not a P-256 (prime256v1) key, which VAPID requires (RFC 8292 §3.2)")
    return key


def write_vapid_key(path: Path, key: ec.EllipticCurvePrivateKey, *, force: bool = False) -> None:
    """The key as PEM in a new file only its owner reads (0600); FileExistsError if there is one, unless `force`."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file that was there keeps its mode through O_TRUNC
        os.write(fd, pem_of(key))
        os.fsync(fd)
    finally:
        os.close(fd)
