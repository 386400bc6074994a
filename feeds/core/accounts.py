"""Who may use the console and the admin API: accounts and sessions.

Shared by both sides: either side's admin routes authenticate a request (`feeds.core.http.Access`), so the rule
lives below both.

    accounts    `console_users`: an address, a role (`ROLES`: viewer reads; editor changes sources, editions,
                alerts and readers' data requests; admin also users, partners and keys), an argon2 password hash,
                failed logins and a lock (`MAX_FAILURES` in a row lock the account for `LOCK_FOR`); the last admin
                can be neither removed nor demoted (`LastAdmin`), whoever asks
    sessions    `console_sessions`: one row per login, keyed by the SHA-256 of the secret the cookie carries (a stolen
                database holds no usable session); ended by logout, by "log out everywhere", by a password reset or
                a removal, after `idle` without a request, and at `lifetime` after the login whatever happens. Each
                carries its own CSRF token.

The audit log of what they change is `feeds.core.audit`.

Passwords are hashed with argon2id (argon2-cffi's defaults: RFC 9106's second recommended profile); hashing takes
tens of milliseconds on purpose, so callers run it off the event loop (FastAPI runs sync routes in a thread).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from .database import UTCDateTime, new_metadata
from .errors import Invalid

ROLES = ("viewer", "editor", "admin")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps one request's work bounded
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
TOUCH_EVERY = timedelta(minutes=1)  # a session's last use is written at most this often

metadata = new_metadata()

console_users = Table(
    "console_users", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # normalised: the domain in lower case
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0, server_default="0"),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("last_login_at", UTCDateTime, nullable=True),
)

console_sessions = Table(
    "console_sessions", metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 (hex) of the cookie's secret
    Column("user_id", Integer, ForeignKey("console_users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the absolute end
    Column("user_agent", String(200), nullable=True),
    Index(None, "user_id"),
)

class AccountError(Invalid):
    """An account operation refused: a bad address or password, a role that does not exist, an unknown user."""


class UnknownUser(AccountError):
    status = 404


class UserExists(AccountError):
    status = 409


class LastAdmin(AccountError):
    """The change would leave the console without an admin: nobody could manage users or partners any more."""

    status = 409


@dataclass(frozen=True)
class Actor:
    """Who makes a request: a console user through a session, or a script with the admin token (an admin)."""

    kind: str  # user | token | cli | system
    email: str
    role: str
    user_id: int | None = None
    session_id: str | None = None
    csrf: str | None = None

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


TOKEN_ACTOR = Actor("token", "admin token", "admin")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    created_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None
    failed_logins: int


@dataclass(frozen=True)
class Session:
    id: str
    user: User
    csrf: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str | None


@dataclass(frozen=True)
class LoggedIn:
    secret: str  # what the cookie carries; never stored
    session: Session


@dataclass(frozen=True)
class Refused:
    locked_until: datetime | None = None  # set when the account is locked
    locked_now: bool = False  # this failure locked it


def normalise_address(email: str) -> str:
    try:
        found = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise AccountError(f"not an e-mail address: {exc}") from None
    return found.normalized.lower()


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if password.strip() != password or not password.isprintable():
        raise AccountError("a password has no leading or trailing spaces and no control characters")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    return role


def session_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row: Any) -> User:
    return User(id=row.id, email=row.email, role=row.role, created_at=row.created_at, last_login_at=row.last_login_at,
                locked_until=row.locked_until, failed_logins=row.failed_logins)


class Accounts:
    """Console users and their sessions, in the database."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], *, idle: timedelta = timedelta(hours=2),
                 lifetime: timedelta = timedelta(hours=12), hasher: PasswordHasher | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self.idle = idle
        self.lifetime = lifetime
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))  # for unknown addresses: the same time spent

    # --- users ---------------------------------------------------------------------------------------------------

    def add(self, email: str, role: str, password: str) -> User:
        address, now = normalise_address(email), self._clock()
        values = {"email": address, "role": check_role(role), "password_hash": self._hasher.hash(check_password(password)),
                  "failed_logins": 0, "created_at": now}
        with self._engine.begin() as db:
            if db.execute(select(console_users.c.id).where(console_users.c.email == address)).first():
                raise UserExists(f"{address} already has an account")
            db.execute(insert(console_users).values(**values))
        return self.user(address)

    def users(self) -> list[User]:
        with self._engine.connect() as db:
            return [_user(r) for r in db.execute(select(console_users).order_by(console_users.c.email))]

    def count(self) -> int:
        with self._engine.connect() as db:
            return db.execute(select(func.count()).select_from(console_users)).scalar_one()

    def user(self, email: str) -> User:
        with self._engine.connect() as db:
            row = db.execute(select(console_users).where(console_users.c.email == normalise_address(email))).first()
        if row is None:
            raise UnknownUser(f"no account for {email}")
        return _user(row)

    def remove(self, email: str) -> User:
        """Delete the account and its sessions; never the last admin (`LastAdmin`)."""
        user = self.user(email)
        with self._engine.begin() as db:
            _lock_admins(db)
            db.execute(delete(console_sessions).where(console_sessions.c.user_id == user.id))
            db.execute(delete(console_users).where(console_users.c.id == user.id))
            _keep_an_admin(db, user)
        return user

    def set_role(self, email: str, role: str) -> tuple[User, User]:
        """A new role; the last admin keeps theirs (`LastAdmin`)."""
        before = self.user(email)
        with self._engine.begin() as db:
            _lock_admins(db)
            db.execute(update(console_users).where(console_users.c.id == before.id)
                       .values(role=check_role(role), updated_at=self._clock()))
            _keep_an_admin(db, before)
        return before, self.user(email)

    def unlock(self, email: str) -> User:
        """Lift a lock after failed logins (the password stays)."""
        user = self.user(email)
        with self._engine.begin() as db:
            db.execute(update(console_users).where(console_users.c.id == user.id).values(
                failed_logins=0, locked_until=None, updated_at=self._clock()))
        return self.user(email)

    def reset_password(self, email: str, password: str) -> User:
        """A new password; every session of the user ends and a lock is lifted."""
        user = self.user(email)
        with self._engine.begin() as db:
            db.execute(update(console_users).where(console_users.c.id == user.id).values(
                password_hash=self._hasher.hash(check_password(password)), failed_logins=0, locked_until=None,
                updated_at=self._clock()))
            db.execute(delete(console_sessions).where(console_sessions.c.user_id == user.id))
        return self.user(email)

    def change_password(self, email: str, current: str, new: str) -> bool:
        """The user's own change: False (nothing changed) when `current` is wrong; else as `reset_password`."""
        with self._engine.connect() as db:
            row = db.execute(select(console_users.c.password_hash)
                             .where(console_users.c.email == normalise_address(email))).first()
        if row is None or len(current) > MAX_PASSWORD or not self._verifies(row.password_hash, current):
            return False
        self.reset_password(email, new)
        return True

    # --- logging in ----------------------------------------------------------------------------------------------

    def log_in(self, email: str, password: str, user_agent: str | None = None) -> LoggedIn | Refused:
        """A new session when the password is right and the account not locked; `MAX_FAILURES` wrong passwords in a
        row lock it for `LOCK_FOR`. An unknown address costs the same hashing time as a known one."""
        now = self._clock()
        try:
            address = normalise_address(email)
        except AccountError:
            address = ""
        with self._engine.connect() as db:
            row = db.execute(select(console_users).where(console_users.c.email == address)).first() if address else None
        if row is None or len(password) > MAX_PASSWORD:
            self._verifies(self._dummy, password[:MAX_PASSWORD])
            return Refused()
        if row.locked_until is not None and row.locked_until > now:
            return Refused(row.locked_until)
        if not self._verifies(row.password_hash, password):
            failures = row.failed_logins + 1
            locked = now + LOCK_FOR if failures >= MAX_FAILURES else None
            with self._engine.begin() as db:
                db.execute(update(console_users).where(console_users.c.id == row.id).values(
                    failed_logins=0 if locked else failures, locked_until=locked))
            return Refused(locked, locked_now=locked is not None)
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if self._hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = self._hasher.hash(password)
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._engine.begin() as db:
            db.execute(update(console_users).where(console_users.c.id == row.id).values(**values))
            db.execute(insert(console_sessions).values(
                id=session_key(secret), user_id=row.id, csrf=csrf, created_at=now, last_seen_at=now,
                expires_at=now + self.lifetime, user_agent=(user_agent or "")[:200] or None))
        found = self.session(secret)
        assert found is not None
        return LoggedIn(secret, found)

    def _verifies(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def session(self, secret: str) -> Session | None:
        """The live session the cookie's secret opens, its last use noted; None when it ended or never was."""
        now, key = self._clock(), session_key(secret)
        u = console_users.c
        query = (select(console_sessions, u.email, u.role, u.created_at.label("user_created_at"), u.last_login_at,
                        u.locked_until, u.failed_logins).join(console_users).where(console_sessions.c.id == key))
        with self._engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            return None
        if row.expires_at <= now or row.last_seen_at + self.idle <= now:
            self.log_out(secret)
            return None
        seen = row.last_seen_at
        if now - seen >= TOUCH_EVERY:
            seen = now
            with self._engine.begin() as db:
                db.execute(update(console_sessions).where(console_sessions.c.id == key).values(last_seen_at=now))
        user = User(id=row.user_id, email=row.email, role=row.role, created_at=row.user_created_at,
                    last_login_at=row.last_login_at, locked_until=row.locked_until, failed_logins=row.failed_logins)
        return Session(id=key, user=user, csrf=row.csrf, created_at=row.created_at, last_seen_at=seen,
                       expires_at=min(row.expires_at, seen + self.idle), user_agent=row.user_agent)

    def log_out(self, secret: str) -> None:
        with self._engine.begin() as db:
            db.execute(delete(console_sessions).where(console_sessions.c.id == session_key(secret)))

    def log_out_everywhere(self, user_id: int) -> int:
        with self._engine.begin() as db:
            return db.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id)).rowcount

    def sessions(self, user_id: int) -> int:
        with self._engine.connect() as db:
            return db.execute(select(func.count()).select_from(console_sessions)
                              .where(console_sessions.c.user_id == user_id)).scalar_one()

    def forget_ended(self) -> int:
        """Delete sessions past their end (a job: rows of abandoned browsers do not pile up)."""
        now = self._clock()
        with self._engine.begin() as db:
            return db.execute(delete(console_sessions).where(
                (console_sessions.c.expires_at <= now) | (console_sessions.c.last_seen_at <= now - self.idle))).rowcount


def _lock_admins(db: Any) -> None:
    """Hold the admins' rows (PostgreSQL) so that two admins demoting each other at once cannot both succeed; on
    SQLite the change's own write lock does it, and `_keep_an_admin` counts after the change."""
    db.execute(select(console_users.c.id).where(console_users.c.role == "admin").with_for_update()).all()


def _keep_an_admin(db: Any, changed: User) -> None:
    """Inside the change's transaction, after it: refuse (and so roll back) when no admin is left."""
    if changed.role != "admin":
        return
    left = db.execute(select(func.count()).select_from(console_users).where(console_users.c.role == "admin")).scalar_one()
    if left == 0:
        raise LastAdmin(f"{changed.email} is the last admin: make another account admin first")


def actor_of(session: Session) -> Actor:
    return Actor("user", session.user.email, session.user.role, session.user.id, session.id, session.csrf)


__all__ = ["AccountError", "Accounts", "Actor", "LastAdmin", "LoggedIn", "ROLES",
           "Refused", "Session", "TOKEN_ACTOR", "UnknownUser", "User", "UserExists", "actor_of",
           "console_sessions", "console_users", "metadata"]
