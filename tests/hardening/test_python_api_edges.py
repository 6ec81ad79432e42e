"""The Python API at its edges: ``Agent.stream``/``reply`` check the conversation id and the
message before anything is written, and the store refuses unbounded fields and offsets itself,
whichever edge called it. Before issue 22 a message with NUL left an empty conversation behind,
a bad id was stored as given, and a huge offset overflowed inside SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import InputError
from tests.hardening.conftest import table_digest

QUESTION = "How often do I replace the HEPA filter?"


@pytest.mark.parametrize(
    ("conversation_id", "text"),
    [
        ("ok-1", "nul \x00 in the message"),
        ("ok-2", "lone \udc80 surrogate"),
        ("ok-3", "   "),
        ("a\r\nb", QUESTION),
        ("заказ", QUESTION),
        ("x" * 129, QUESTION),
        ("", QUESTION),
    ],
    ids=["nul", "surrogate", "blank", "crlf-id", "non-latin-1-id", "long-id", "empty-id"],
)
def test_agent_refuses_before_writing(make_agent, home: Path, conversation_id: str, text: str) -> None:
    agent = make_agent()
    agent.reply("warm-up", QUESTION)  # the store exists, with rows to compare
    before = table_digest(home / "supportloop.db")
    with pytest.raises(InputError):
        agent.reply(conversation_id, text)
    with pytest.raises(InputError):
        list(agent.stream(conversation_id, text))
    assert table_digest(home / "supportloop.db") == before


def test_store_bounds_feedback_and_key_names(make_agent, home: Path) -> None:
    agent = make_agent()
    reply = agent.reply("c1", QUESTION)
    store = agent.store
    before = table_digest(home / "supportloop.db")
    refused = [
        {"labels": ["x" * 900_000]},
        {"labels": [f"l{n}" for n in range(51)]},
        {"labels": "one string"},
        {"comment": "c" * 5_001},
        {"correction": "nul\x00"},
        {"thumbs": 1, "reviewer": "line\nbreak"},
    ]
    for fields in refused:
        with pytest.raises(InputError):
            store.add_feedback(reply.turn_id, **fields)
    for name in ("ops\x00", "tab\tname", "x" * 256, " "):
        with pytest.raises(InputError):
            store.create_api_key(name)
    with pytest.raises(InputError):
        store.list_conversations(offset=2**63)
    assert table_digest(home / "supportloop.db") == before
    saved = store.add_feedback(reply.turn_id, labels=[" wrong-price ", "wrong-price", ""])
    assert saved.labels == ("wrong-price",)


def test_check_writable_refuses_a_full_disk(make_agent, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from agent.errors import StoreError

    store = make_agent().store
    store.check_writable()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 4096))
    with pytest.raises(StoreError, match="full"):
        store.check_writable()


def test_check_writable_on_both_backends(store_url: str, home: Path) -> None:
    """A read-only session (SQLite ``query_only``; PostgreSQL ``READ ONLY`` transactions, as on a
    hot standby) is refused; a writable one passes and the probe leaves no row behind."""
    from sqlalchemy import event

    from agent.errors import StoreError
    from agent.store import LogStore

    store = LogStore(store_url, home=home)
    try:
        store.check_writable()
        assert store.counts()["conversations"] == 0
        engine = store._db.engine

        def read_only(dbapi_conn, _record) -> None:
            if store.dialect == "sqlite":
                dbapi_conn.execute("PRAGMA query_only = ON")
            else:
                with dbapi_conn.cursor() as cursor:
                    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                dbapi_conn.commit()

        event.listen(engine, "connect", read_only)
        engine.dispose()
        with pytest.raises(StoreError):
            store.check_writable()
        event.remove(engine, "connect", read_only)
        engine.dispose()
        store.check_writable()
    finally:
        store.close()
