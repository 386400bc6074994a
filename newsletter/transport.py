"""Handing mail over: to a maildir (the default, readable by any mail client) or to an SMTP server.

`Transport` is the one method the sender needs: hand over one message's wire bytes for one recipient. SMTP keeps
its connection open between messages (one transport per sending worker) and maps server answers to
`DeliveryError(is_permanent=...)`: 5xx is permanent, 4xx and dropped connections are not.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from feeds.settings import MailSettings

from .errors import DeliveryError


class Transport(Protocol):
    def send(self, sender: str, recipient: str, data: bytes) -> None: ...

    def close(self) -> None: ...


class MaildirTransport:
    """Each message becomes one file under new/ of a maildir (written to tmp/, then renamed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):  # several workers may create it at once
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(str(path), create=False)

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        try:
            # Maildir files use the local line end; the message is stored as a mail client would save it.
            self._box.add(data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise DeliveryError(f"maildir {self.path}: {exc.strerror}", is_permanent=False) from exc

    def close(self) -> None:
        self._box.close()


class SmtpTransport:
    """smtp://host:port (plain), smtp+starttls://, smtps://; user:password@ in the URL for AUTH."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self._scheme = parts.scheme
        self._host = parts.hostname or "localhost"
        self._port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._timeout = timeout
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self._scheme == "smtps":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            conn = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            if self._scheme == "smtp+starttls":
                conn.starttls(context=context)
        if self._user:
            conn.login(self._user, self._password or "")
        return conn

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._conn.sendmail(sender, [recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"recipient refused: {exc.recipients}", is_permanent=all(c >= 500 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", is_permanent=True) from exc
            self._drop()
            raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", is_permanent=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryError(f"SMTP connection to {self._host}:{self._port}: {exc}", is_permanent=False) from exc

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except (smtplib.SMTPException, OSError):
                pass

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._conn = None


def make_transport(settings: MailSettings) -> Transport:
    if settings.scheme == "maildir":
        return MaildirTransport(settings.maildir_path)
    return SmtpTransport(settings.url)
