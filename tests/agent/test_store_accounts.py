"""Console users, sessions and API keys (``store.accounts``), on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from agent.errors import InputError, NotFoundError, StoreError
from agent.store import Accounts, LogStore, check_password, console_sessions, hash_password


@pytest.fixture
def store(store_url: str) -> Iterator[LogStore]:
    with LogStore(store_url) as opened:
        yield opened


@pytest.fixture
def accounts(store: LogStore) -> Accounts:
    return store.accounts


def test_password_hashing_is_salted_and_verifiable() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and "correct horse" not in first
    assert check_password("correct horse", first) and not check_password("wrong", first)
    assert not check_password("x", "garbage")


def test_users_authenticate_by_hashed_password(accounts: Accounts) -> None:
    user = accounts.create_user("ana", "s3cret-pass", role="admin")
    assert user.role == "admin"
    assert accounts.authenticate("ana", "s3cret-pass") == accounts.authenticate(" ana ", "s3cret-pass")
    assert accounts.authenticate("ana", "wrong-pass") is None
    assert accounts.authenticate("nobody", "s3cret-pass") is None
    with pytest.raises(StoreError, match="already exists"):
        accounts.create_user("ana", "another-pass")
    with pytest.raises(InputError):
        accounts.create_user("bo", "short")
    with pytest.raises(InputError):
        accounts.create_user("bo", "long-enough", role="owner")
    accounts.set_user_disabled("ana")
    assert accounts.authenticate("ana", "s3cret-pass") is None
    assert [u.username for u in accounts.list_users()] == ["ana"]


def test_api_keys_are_hashed_scoped_and_revocable(accounts: Accounts) -> None:
    key, secret = accounts.create_api_key("shop frontend", scope="customer")
    _admin, admin_secret = accounts.create_api_key("ops", scope="admin")
    assert secret.startswith("sl-cust-") and admin_secret.startswith("sl-admi")
    assert accounts.verify_api_key(secret).id == key.id  # type: ignore[union-attr]
    assert accounts.verify_api_key(admin_secret).scope == "admin"  # type: ignore[union-attr]
    assert accounts.verify_api_key(secret + "x") is None
    accounts.revoke_api_key(key.id)
    assert accounts.verify_api_key(secret) is None
    with pytest.raises(NotFoundError):
        accounts.revoke_api_key("missing")
    with pytest.raises(InputError):
        accounts.create_api_key("x", scope="root")
    assert {k.name for k in accounts.list_api_keys()} == {"shop frontend", "ops"}


def test_api_key_use_is_recorded_without_a_write_per_request(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.store.accounts as accounts_module

    key, secret = accounts.create_api_key("shop frontend")
    assert key.last_used_at is None
    first = accounts.verify_api_key(secret)
    assert first is not None and first.last_used_at is not None
    listed = {k.id: k for k in accounts.list_api_keys()}[key.id]
    assert listed.last_used_at == first.last_used_at
    # Within the resolution window nothing is written: the stored time stays put.
    again = accounts.verify_api_key(secret)
    assert again is not None and again.last_used_at == first.last_used_at
    # Past it, the next use moves it forward.
    monkeypatch.setattr(accounts_module, "KEY_USE_RESOLUTION_S", 0)
    later = accounts.verify_api_key(secret)
    assert later is not None and later.last_used_at > first.last_used_at  # type: ignore[operator]


def test_console_sessions_survive_reopening_and_end_on_sign_out_expiry_or_disable(store_url: str) -> None:
    with LogStore(store_url) as store:
        accounts = store.accounts
        ana = accounts.create_user("ana", "s3cret-pass")
        token = accounts.start_console_session(ana)
        other = accounts.start_console_session(ana)
        expired = accounts.start_console_session(ana, ttl_s=0)
    assert token != other and len(token) >= 40
    with LogStore(store_url) as store:  # a page reload in another process finds the session
        accounts = store.accounts
        assert accounts.user_for_session(token) == ana
        assert accounts.user_for_session(expired) is None
        assert accounts.user_for_session(token + "x") is None and accounts.user_for_session("") is None
        accounts.end_console_session(token)
        assert accounts.user_for_session(token) is None and accounts.user_for_session(other) == ana
        accounts.set_user_disabled("ana")
        assert accounts.user_for_session(other) is None
        accounts.set_user_disabled("ana", disabled=False)
        assert accounts.user_for_session(other) == ana
        accounts.start_console_session(ana)  # starting a session sweeps the expired ones
        raw = store._db.run(lambda conn: conn.execute(select(console_sessions.c.token_hash)).scalars().all())
    assert other not in raw and len(raw) == 2  # hashes only: `other` and the new one


def test_log_store_keeps_its_account_methods_as_delegations(store: LogStore) -> None:
    """Callers written before ``store.accounts`` (deploy, ui, benchmarks) keep working."""
    ana = store.create_user("ana", "s3cret-pass", role="admin")
    assert store.authenticate("ana", "s3cret-pass") == ana
    assert store.list_users() == [ana]
    token = store.start_console_session(ana, ttl_s=60)
    assert store.user_for_session(token) == ana
    store.end_console_session(token)
    assert store.user_for_session(token) is None
    store.set_user_disabled("ana")
    assert store.accounts.authenticate("ana", "s3cret-pass") is None
    key, secret = store.create_api_key("ops", "admin")
    assert store.verify_api_key(secret) is not None and [k.id for k in store.list_api_keys()] == [key.id]
    store.revoke_api_key(key.id)
    assert store.verify_api_key(secret) is None


def test_passwords_are_argon2id_at_or_above_owasp_minimums() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    params = dict(kv.split("=") for kv in stored.split("$")[3].split(","))
    # OWASP Password Storage Cheat Sheet: Argon2id with m >= 19 MiB, t >= 2, p = 1 (or a
    # stronger equivalent).
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2 and int(params["p"]) >= 1


def _legacy_scrypt(password: str) -> str:
    """A hash as stored before issue 21: scrypt at N=2^14."""
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_an_old_scrypt_hash_signs_in_and_is_rehashed_with_argon2id(accounts: Accounts) -> None:
    from sqlalchemy import select, update

    from agent.store.schema import users

    accounts.create_user("old", "an-old-password")
    legacy = _legacy_scrypt("an-old-password")
    assert check_password("an-old-password", legacy) and not check_password("wrong-password", legacy)
    db = accounts._db
    db.run(
        lambda c: c.execute(update(users).where(users.c.username == "old").values(password_hash=legacy)),
        write=True,
    )

    def stored() -> str:
        return str(
            db.run(
                lambda c: c.execute(select(users.c.password_hash).where(users.c.username == "old")).scalar()
            )
        )

    assert accounts.authenticate("old", "wrong-password") is None
    assert stored() == legacy  # a failed sign-in changes nothing
    assert accounts.authenticate("old", "an-old-password") is not None
    assert stored().startswith("$argon2id$")
    assert accounts.authenticate("old", "an-old-password") is not None  # and the new hash works
