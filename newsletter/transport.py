"""Handing mail over: to a maildir (the default, readable by any mail client) or to an SMTP server.

`Transport` is the one method the sender needs: hand over one message's wire bytes for one recipient. SMTP keeps
its connection open between messages (one transport per sending worker) and maps server answers to
`DeliveryError(is_permanent=...)`: 5xx is permanent, 4xx and dropped connections are not. An address with a
non-ASCII local part goes with SMTPUTF8 (RFC 6531) when the server offers it, and is refused permanently when not.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from .settings import MailSettings

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
            # Stored as a local delivery agent would: the envelope sender in Return-Path, the local line end.
            self._box.add(f"Return-Path: <{sender}>\n".encode("utf-8") + data.replace(b"\r\n", b"\n"))
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
            _transact(self._conn, sender, recipient, data)
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


def _transact(conn: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """MAIL, RCPT and DATA for one message, in one round trip when the server offers PIPELINING (RFC 2920).

    Not `sendmail`: that one rewrites every line end and scans every line for a leading dot with regular
    expressions, which cost more than the rest of sending. Our messages have CRLF line ends already, so the dot
    stuffing of RFC 5321 §4.5.2 is one `bytes.replace`. Failures raise smtplib's own exceptions, after RSET.
    """
    conn.ehlo_or_helo_if_needed()
    is_international = not (sender.isascii() and recipient.isascii())
    if is_international and not (conn.does_esmtp and conn.has_extn("smtputf8")):
        raise smtplib.SMTPRecipientsRefused({recipient: (553, b"5.6.7 the relay does not offer SMTPUTF8, which this "
                                                              b"address needs")})
    conn.command_encoding = "utf-8" if is_international else "ascii"
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    commands = (f"MAIL FROM:<{sender}>" + (" SMTPUTF8" if is_international else ""), f"RCPT TO:<{recipient}>", "DATA")
    if conn.does_esmtp and conn.has_extn("pipelining"):
        conn.send("".join(command + "\r\n" for command in commands))
        replies = [conn.getreply() for _ in commands]
    else:
        replies = []
        for command, expected in zip(commands, (250, 250, 354)):
            conn.send(command + "\r\n")
            replies.append(conn.getreply())
            if replies[-1][0] not in (expected, 251):
                break
    (mail_code, mail_text), *rest = replies
    rcpt_code, rcpt_text = rest[0] if rest else (0, b"")
    data_code, data_text = rest[1] if len(rest) > 1 else (0, b"")
    if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
        conn.send(b".\r\n")  # a server that took DATA without a recipient: end the empty message
        conn.getreply()
    if mail_code != 250:
        conn.rset()
        raise smtplib.SMTPSenderRefused(mail_code, mail_text, sender)
    if rcpt_code not in (250, 251):
        conn.rset()
        raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_text)})
    if data_code != 354:
        conn.rset()
        raise smtplib.SMTPDataError(data_code, data_text)
    conn.send(data + b".\r\n")
    code, text = conn.getreply()
    if code != 250:
        conn.rset()
        raise smtplib.SMTPDataError(code, text)


def make_transport(settings: MailSettings) -> Transport:
    if settings.scheme == "maildir":
        return MaildirTransport(settings.maildir_path)
    return SmtpTransport(settings.url)
