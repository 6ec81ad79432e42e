"""Accounts: support-console users, their sign-in sessions, and HTTP API keys (``store.accounts``).

No secret is stored: passwords as Argon2id hashes (OWASP's current recommendation; the parameters
travel with each hash), console session tokens and API key secrets as their SHA-256. A password
hashed under older or weaker parameters (scrypt at N=2^14, as before issue 21) still signs in, and
is rehashed with the current ones at that sign-in. A disabled user's sessions stop working at once; a
revoked key stops working at once.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from agent.errors import InputError, NotFoundError, StoreError
from agent.store.engine import Database
from agent.store.schema import api_keys, console_sessions, users
from agent.validation import check_name

ROLES_USERS = ("admin", "reviewer")
KEY_SCOPES = ("customer", "admin")
CONSOLE_SESSION_TTL_S = 12 * 3600  # a console sign-in lasts a working day, reloads included
KEY_USE_RESOLUTION_S = 60  # how stale an API key's last_used_at may get (see verify_api_key)


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: str
    disabled: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scope: str
    prefix: str
    revoked: bool = False
    created_at: datetime | None = None
    last_used_at: datetime | None = None


# argon2-cffi's default profile is RFC 9106's "low memory" one: Argon2id, t=3, m=64 MiB, p=4,
# above OWASP's minimum (m=19 MiB, t=2, p=1).
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """Argon2id in PHC string form (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``)."""
    return _HASHER.hash(password)


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``: an Argon2 hash, or a legacy ``scrypt$...`` one."""
    if stored.startswith("scrypt$"):
        return _check_scrypt(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other than the current algorithm and parameters."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _check_scrypt(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**30,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class Accounts:
    """Users, console sessions and API keys in the log store's database."""

    def __init__(self, db: Database):
        self._db = db

    # -- users (support console) ---------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str = "reviewer") -> User:
        """A console user; StoreError if the name is taken. Passwords are stored Argon2id-hashed."""
        username = username.strip()
        if not username or len(username) > 255:
            raise InputError("a username needs 1-255 characters")
        if role not in ROLES_USERS:
            raise InputError(f"role must be one of {', '.join(ROLES_USERS)}")
        if len(password) < 8:
            raise InputError("a password needs at least 8 characters")
        user = User(uuid.uuid4().hex, username, role, False, self._db.now())
        values = {**dataclasses.asdict(user), "password_hash": hash_password(password)}

        def work(conn: Connection) -> None:
            try:
                conn.execute(insert(users).values(values))
            except IntegrityError as exc:
                raise StoreError(f"user {username!r} already exists") from exc

        self._db.run(work, write=True)
        return user

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches and the account is enabled, else None."""
        row = self._db.run(
            lambda conn: conn.execute(select(users).where(users.c.username == username.strip())).first()
        )
        if row is None or row.disabled or not check_password(password, row.password_hash):
            return None
        if needs_rehash(row.password_hash):  # an old hash: upgrade it now that we hold the password
            fresh = hash_password(password)
            self._db.run(
                lambda conn: conn.execute(
                    update(users).where(users.c.id == row.id).values(password_hash=fresh)
                ),
                write=True,
            )
        return _user(row)

    def list_users(self) -> list[User]:
        rows = self._db.run(lambda conn: conn.execute(select(users).order_by(users.c.username)).all())
        return [_user(r) for r in rows]

    def set_user_disabled(self, username: str, disabled: bool = True) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(update(users).where(users.c.username == username).values(disabled=disabled))
            if result.rowcount == 0:
                raise NotFoundError(f"no user named {username!r}")

        self._db.run(work, write=True)

    # -- console sessions (sign-in that survives a page reload) --------------------------------

    def start_console_session(self, user: User, ttl_s: float = CONSOLE_SESSION_TTL_S) -> str:
        """A new session token for ``user``, valid ``ttl_s`` seconds. Only its SHA-256 is stored."""
        token = secrets.token_urlsafe(32)
        now = self._db.now()
        values = {
            "token_hash": _sha256(token),
            "user_id": user.id,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_s),
        }

        def work(conn: Connection) -> None:
            conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now))
            conn.execute(insert(console_sessions).values(values))

        self._db.run(work, write=True)
        return token

    def user_for_session(self, token: str) -> User | None:
        """The user a session token belongs to; None if it is unknown, expired, ended, or the
        account has been disabled since."""
        if not token:
            return None
        row = self._db.run(
            lambda conn: conn.execute(
                select(users, console_sessions.c.expires_at)
                .join(console_sessions, console_sessions.c.user_id == users.c.id)
                .where(console_sessions.c.token_hash == _sha256(token))
            ).first()
        )
        if row is None or row.disabled or row.expires_at <= self._db.now():
            return None
        return _user(row)

    def console_users_online(self) -> int:
        """How many enabled users hold an unexpired console session (signed in, not signed out)."""
        now = self._db.now()
        stmt = (
            select(func.count(func.distinct(console_sessions.c.user_id)))
            .join(users, console_sessions.c.user_id == users.c.id)
            .where(console_sessions.c.expires_at > now, users.c.disabled.is_(False))
        )
        return int(self._db.run(lambda conn: conn.execute(stmt).scalar_one()))

    def end_console_session(self, token: str) -> None:
        """Sign-out: the token stops working at once (unknown tokens are ignored)."""
        self._db.run(
            lambda conn: conn.execute(
                delete(console_sessions).where(console_sessions.c.token_hash == _sha256(token))
            ),
            write=True,
        )

    # -- API keys (HTTP API) -------------------------------------------------------------------

    def create_api_key(self, name: str, scope: str = "customer") -> tuple[ApiKey, str]:
        """A new key and its secret. Only the secret's SHA-256 is stored: show it once."""
        if scope not in KEY_SCOPES:
            raise InputError(f"scope must be one of {', '.join(KEY_SCOPES)}")
        name = check_name(name, "name")  # one line, no NUL or control characters, bounded
        secret = f"sl-{scope[:4]}-{secrets.token_urlsafe(32)}"
        key = ApiKey(uuid.uuid4().hex, name, scope, secret[:12], False, self._db.now())
        values = {**dataclasses.asdict(key), "key_hash": _sha256(secret)}
        self._db.run(lambda conn: conn.execute(insert(api_keys).values(values)), write=True)
        return key, secret

    def verify_api_key(self, secret: str) -> ApiKey | None:
        """The key a secret belongs to, if it exists and is not revoked. Records ``last_used_at``,
        at most once per ``KEY_USE_RESOLUTION_S`` per key so that busy keys do not turn every
        request into a write."""
        row = self._db.run(
            lambda conn: conn.execute(select(api_keys).where(api_keys.c.key_hash == _sha256(secret))).first()
        )
        if row is None or row.revoked:
            return None
        last_used = row.last_used_at
        now = datetime.now(UTC)
        if last_used is None or (now - last_used).total_seconds() >= KEY_USE_RESOLUTION_S:
            self._db.run(
                lambda conn: conn.execute(
                    update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=now)
                ),
                write=True,
            )
            last_used = now
        return _api_key(row, last_used)

    def list_api_keys(self) -> list[ApiKey]:
        rows = self._db.run(lambda conn: conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all())
        return [_api_key(r, r.last_used_at) for r in rows]

    def revoke_api_key(self, key_id: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked=True))
            if result.rowcount == 0:
                raise NotFoundError(f"no API key with id {key_id!r}")

        self._db.run(work, write=True)


def _user(row: Any) -> User:
    return User(row.id, row.username, row.role, row.disabled, row.created_at)


def _api_key(row: Any, last_used_at: datetime | None) -> ApiKey:
    return ApiKey(row.id, row.name, row.scope, row.prefix, row.revoked, row.created_at, last_used_at)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
