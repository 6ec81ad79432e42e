"""Console users and API keys, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from agent.errors import InputError, NotFoundError, StoreError
from agent.store import LogStore, check_password, console_sessions, hash_password


@pytest.fixture
def store(store_url: str) -> Iterator[LogStore]:
    with LogStore(store_url) as opened:
        yield opened


def test_password_hashing_is_salted_and_verifiable() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and "correct horse" not in first
    assert check_password("correct horse", first) and not check_password("wrong", first)
    assert not check_password("x", "garbage")


def test_users_authenticate_by_hashed_password(store: LogStore) -> None:
    user = store.create_user("ana", "s3cret-pass", role="admin")
    assert user.role == "admin"
    assert store.authenticate("ana", "s3cret-pass") == store.authenticate(" ana ", "s3cret-pass")
    assert store.authenticate("ana", "wrong-pass") is None
    assert store.authenticate("nobody", "s3cret-pass") is None
    with pytest.raises(StoreError, match="already exists"):
        store.create_user("ana", "another-pass")
    with pytest.raises(InputError):
        store.create_user("bo", "short")
    with pytest.raises(InputError):
        store.create_user("bo", "long-enough", role="owner")
    store.set_user_disabled("ana")
    assert store.authenticate("ana", "s3cret-pass") is None
    assert [u.username for u in store.list_users()] == ["ana"]


def test_api_keys_are_hashed_scoped_and_revocable(store: LogStore) -> None:
    key, secret = store.create_api_key("shop frontend", scope="customer")
    _admin, admin_secret = store.create_api_key("ops", scope="admin")
    assert secret.startswith("sl-cust-") and admin_secret.startswith("sl-admi")
    assert store.verify_api_key(secret).id == key.id  # type: ignore[union-attr]
    assert store.verify_api_key(admin_secret).scope == "admin"  # type: ignore[union-attr]
    assert store.verify_api_key(secret + "x") is None
    store.revoke_api_key(key.id)
    assert store.verify_api_key(secret) is None
    with pytest.raises(NotFoundError):
        store.revoke_api_key("missing")
    with pytest.raises(InputError):
        store.create_api_key("x", scope="root")
    assert {k.name for k in store.list_api_keys()} == {"shop frontend", "ops"}


def test_api_key_use_is_recorded_without_a_write_per_request(
    store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.store.accounts as accounts_module

    key, secret = store.create_api_key("shop frontend")
    assert key.last_used_at is None
    first = store.verify_api_key(secret)
    assert first is not None and first.last_used_at is not None
    listed = {k.id: k for k in store.list_api_keys()}[key.id]
    assert listed.last_used_at == first.last_used_at
    # Within the resolution window nothing is written: the stored time stays put.
    again = store.verify_api_key(secret)
    assert again is not None and again.last_used_at == first.last_used_at
    # Past it, the next use moves it forward.
    monkeypatch.setattr(accounts_module, "KEY_USE_RESOLUTION_S", 0)
    later = store.verify_api_key(secret)
    assert later is not None and later.last_used_at > first.last_used_at  # type: ignore[operator]


def test_console_sessions_survive_reopening_and_end_on_sign_out_expiry_or_disable(store_url: str) -> None:
    with LogStore(store_url) as store:
        ana = store.create_user("ana", "s3cret-pass")
        token = store.start_console_session(ana)
        other = store.start_console_session(ana)
        expired = store.start_console_session(ana, ttl_s=0)
    assert token != other and len(token) >= 40
    with LogStore(store_url) as store:  # a page reload in another process finds the session
        assert store.user_for_session(token) == ana
        assert store.user_for_session(expired) is None
        assert store.user_for_session(token + "x") is None and store.user_for_session("") is None
        store.end_console_session(token)
        assert store.user_for_session(token) is None and store.user_for_session(other) == ana
        store.set_user_disabled("ana")
        assert store.user_for_session(other) is None
        store.set_user_disabled("ana", disabled=False)
        assert store.user_for_session(other) == ana
        store.start_console_session(ana)  # starting a session sweeps the expired ones
        raw = store._db.run(lambda conn: conn.execute(select(console_sessions.c.token_hash)).scalars().all())
    assert other not in raw and len(raw) == 2  # hashes only: `other` and the new one
