"""LogStore behaviour. Every test taking ``store`` or ``store_url`` runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, inspect, text

import agent.store.reports as reports_module
from agent.config import AgentConfig
from agent.errors import InputError, NotFoundError, StoreError
from agent.store import LogStore, migrations
from agent.types import Citation, RetrievedChunk

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable "now" for the store, so tests can build data at known times."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def store(store_url: str) -> Iterator[LogStore]:
    with LogStore(store_url) as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_store(store_url: str, clock: Clock) -> Iterator[LogStore]:
    with LogStore(store_url, clock=clock) as opened:
        yield opened


def sql(url: str, statement: str) -> list[tuple]:
    """Run raw SQL outside the store (to inspect what it wrote)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            return [tuple(row) for row in conn.execute(text(statement))]
    finally:
        engine.dispose()


# -- opening and migrations -------------------------------------------------------------------


def test_migrations_run_once_are_recorded_and_new_ones_run(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    LogStore(store_url).close()
    names = [fn.__name__ for fn in migrations.MIGRATIONS]
    recorded = sql(store_url, "SELECT name, applied_at FROM _migrations ORDER BY name")
    assert [name for name, _ in recorded] == sorted(names)

    LogStore(store_url).close()  # re-open: nothing runs again
    assert sql(store_url, "SELECT name, applied_at FROM _migrations ORDER BY name") == recorded

    runs: list[str] = []

    def m999_test_extra(conn) -> None:  # type: ignore[no-untyped-def]
        runs.append("ran")
        conn.execute(text("CREATE TABLE extra_for_test (x INTEGER)"))

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_test_extra])
    LogStore(store_url).close()
    LogStore(store_url).close()
    assert runs == ["ran"]
    assert "m999_test_extra" in {name for (name,) in sql(store_url, "SELECT name FROM _migrations")}
    engine = create_engine(store_url)
    try:
        assert inspect(engine).has_table("extra_for_test")
    finally:
        engine.dispose()


def test_a_failing_migration_leaves_nothing_behind(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    LogStore(store_url).close()

    def m998_broken(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        conn.execute(text("SELECT no_such_column FROM half_done"))

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m998_broken])
    with pytest.raises(StoreError, match="cannot open the log store"):
        LogStore(store_url)
    engine = create_engine(store_url)
    try:
        assert not inspect(engine).has_table("half_done")
    finally:
        engine.dispose()
    assert "m998_broken" not in {name for (name,) in sql(store_url, "SELECT name FROM _migrations")}


def test_default_store_lives_in_the_data_home_in_wal_mode(home: Path) -> None:
    with LogStore() as store:  # the home fixture sets SUPPORTLOOP_HOME
        assert store.url == f"sqlite:///{home / 'supportloop.db'}"
        store.create_conversation("c1")
    assert (home / "supportloop.db").stat().st_mode & 0o077 == 0  # customer data: owner only
    assert sql(f"sqlite:///{home / 'supportloop.db'}", "PRAGMA journal_mode") == [("wal",)]
    with LogStore.from_config(AgentConfig(home=home / "other")) as store:
        assert store.url.endswith("other/supportloop.db")
        assert store.counts()["conversations"] == 0


def test_bad_urls_give_actionable_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="use sqlite:///"):
        LogStore("mysql://u@h/db")
    with pytest.raises(StoreError, match="in-memory"):
        LogStore("sqlite://")
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the log store"):
        LogStore(f"sqlite:///{not_a_db}")
    # An unreachable server: the message names the store but never the password.
    with pytest.raises(StoreError, match="cannot open the log store") as caught:
        LogStore("postgresql://someone:hunter2@127.0.0.1:9/nowhere")
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.postgres
def test_url_password_is_masked(pg_store_url: str) -> None:
    url = pg_store_url.replace("postgres@", "postgres:hunter2@", 1)  # the test server trusts anyone
    with LogStore(url) as store:
        assert "hunter2" not in store.url and "hunter2" not in repr(store)
        assert store.counts()["conversations"] == 0


def test_closed_store_refuses_work(store_url: str) -> None:
    store = LogStore(store_url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.counts()


# -- conversations and turns ------------------------------------------------------------------


def test_conversation_and_turns_round_trip(store: LogStore) -> None:
    conv = store.create_conversation("conv-1", owner="key-1", metadata={"locale": "en"}, channel="api")
    assert conv.id == "conv-1" and conv.status == "open" and conv.metadata == {"locale": "en"}
    chunks = [RetrievedChunk("c1", "doc-a", 0.91, "faq.md"), RetrievedChunk("c2", "doc-b", 0.42)]
    cites = [Citation("doc-a", "faq.md", "Filters last 6 months.", index=1, score=0.91, chunk_id="c1")]
    asked = store.add_turn("conv-1", "customer", "How often should I change the filter?")
    answered = store.add_turn(
        "conv-1",
        "agent",
        "Every 6 months [1].",
        model_version="v3",
        adapter="lora-7",
        retrieved=chunks,
        citations=cites,
        latency_ms=812.5,
        prompt_tokens=311,
        completion_tokens=9,
        metadata={"unhelpful": False},
    )
    human = store.add_turn("conv-1", "human", "Also check the pre-filter.", author="sam")

    loaded = store.get_conversation("conv-1")
    assert [t.id for t in loaded.turns] == [asked.id, answered.id, human.id]
    assert loaded.turns == (asked, answered, human)  # what add_turn returned is what is stored
    agent_turn = loaded.turns[1]
    assert agent_turn.retrieved == tuple(chunks) and agent_turn.citations == tuple(cites)
    assert (agent_turn.prompt_tokens, agent_turn.completion_tokens, agent_turn.latency_ms) == (311, 9, 812.5)
    assert (agent_turn.model_version, agent_turn.adapter) == ("v3", "lora-7")
    assert agent_turn.metadata == {"unhelpful": False}
    assert loaded.turns[2].author == "sam"
    assert all(t.created_at is not None and t.created_at.tzinfo is not None for t in loaded.turns)
    assert loaded.updated_at == human.created_at
    assert store.turns("conv-1") == list(loaded.turns)
    assert store.get_turn(answered.id or "") == answered
    assert len(str(store.create_conversation().id)) == 32  # uuid4 hex


def test_turn_order_is_exact_even_with_equal_timestamps(timed_store: LogStore) -> None:
    conv = timed_store.create_conversation()
    for n in range(12):  # the clock never moves: only seq can order these
        timed_store.add_turn(conv.id, "customer" if n % 2 == 0 else "agent", f"message {n}")
    assert [t.text for t in timed_store.turns(conv.id)] == [f"message {n}" for n in range(12)]


def test_customer_message_is_committed_when_add_turn_returns(store_url: str) -> None:
    with LogStore(store_url) as writer, LogStore(store_url) as reader:
        writer.create_conversation("c")
        turn = writer.add_turn("c", "customer", "my purifier beeps")
        assert [t.id for t in reader.turns("c")] == [turn.id]
        assert reader.get_turn(turn.id or "").text == "my purifier beeps"


def test_turn_validation(store: LogStore) -> None:
    store.create_conversation("c")
    with pytest.raises(InputError, match="unknown role"):
        store.add_turn("c", "robot", "hi")
    with pytest.raises(NotFoundError, match="no conversation 'missing'"):
        store.add_turn("missing", "customer", "hi")
    with pytest.raises(InputError, match="NUL"):
        store.add_turn("c", "customer", "a\x00b")
    with pytest.raises(NotFoundError):
        store.get_turn("nope")
    with pytest.raises(NotFoundError):
        store.turns("missing")
    with pytest.raises(NotFoundError):
        store.get_conversation("missing")
    assert store.counts()["turns"] == 0


def test_conversation_ids_and_get_or_create(store: LogStore) -> None:
    store.create_conversation("c1")
    with pytest.raises(StoreError, match="already exists") as caught:
        store.create_conversation("c1")
    assert not isinstance(caught.value, NotFoundError)
    with pytest.raises(InputError):
        store.create_conversation("x" * 300)
    store.add_turn("c1", "customer", "hello")
    assert [t.text for t in store.ensure_conversation("c1").turns] == ["hello"]
    created = store.ensure_conversation("c2", channel="cli")
    assert created.id == "c2" and created.turns == ()
    assert store.counts()["conversations"] == 2


def test_owner_isolation(store: LogStore) -> None:
    store.create_conversation("mine", owner="key-a")
    store.create_conversation("theirs", owner="key-b")
    store.create_conversation("local")  # no owner: created outside the HTTP API
    for cid in ("mine", "theirs", "local"):
        store.add_turn(cid, "customer", f"warranty question from {cid}")

    assert store.get_conversation("mine", owner="key-a").id == "mine"
    for cid in ("theirs", "local"):
        with pytest.raises(NotFoundError):
            store.get_conversation(cid, owner="key-a")
        with pytest.raises(NotFoundError):  # cannot take over another owner's id either
            store.ensure_conversation(cid, owner="key-a")
    assert store.get_conversation("theirs").id == "theirs"  # no owner given: trusted caller
    assert [s.id for s in store.list_conversations(owner="key-a")] == ["mine"]
    assert {r.conversation_id for r in store.search("warranty", owner="key-a")} == {"mine"}
    assert {r.conversation_id for r in store.search("warranty")} == {"mine", "theirs", "local"}
    assert store.list_conversations(owner="key-a")[0].owner == "key-a"


# -- feedback ---------------------------------------------------------------------------------


def test_feedback_round_trip_and_validation(store: LogStore) -> None:
    store.create_conversation("c")
    store.add_turn("c", "customer", "hi")
    reply = store.add_turn("c", "agent", "hello")
    rid = reply.id or ""
    thumbs = store.add_feedback(rid, thumbs=1)
    review = store.add_feedback(
        rid,
        rating=4,
        comment="ok",
        correction="Hello! How can I help?",
        labels=["tone", " tone ", "greeting", ""],
        reviewer="rita",
        mark_for_training=True,
    )
    assert review.labels == ("tone", "greeting") and review.created_at is not None
    assert store.feedback_for_turn(rid) == [thumbs, review]
    assert store.feedback_for_conversation("c") == [thumbs, review]

    for bad in ({"thumbs": 0}, {"rating": 6}, {"rating": 0}, {}, {"labels": "tone"}):
        with pytest.raises(InputError):
            store.add_feedback(rid, **bad)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="no turn"):
        store.add_feedback("no-such-turn", thumbs=1)
    assert store.counts()["feedback"] == 2


# -- escalations and status -------------------------------------------------------------------


def test_escalate_answer_and_resolve(store: LogStore) -> None:
    store.create_conversation("c")
    store.add_turn("c", "customer", "I want a person")
    handoff = store.add_turn("c", "agent", "Connecting you to the team.")
    store.create_conversation("other")
    other_turn = store.add_turn("other", "customer", "unrelated")
    with pytest.raises(NotFoundError):  # the turn must belong to the conversation
        store.escalate("c", "customer_request", turn_id=other_turn.id)
    with pytest.raises(InputError):
        store.escalate("c", "  ")
    with pytest.raises(NotFoundError):
        store.escalate("missing", "customer_request")

    store.escalate("c", "customer_request", turn_id=handoff.id)
    conv = store.get_conversation("c")
    assert (conv.status, conv.escalation_reason, conv.escalated) == ("escalated", "customer_request", True)
    [open_one] = store.escalations()
    assert open_one["conversation_id"] == "c" and open_one["turn_id"] == handoff.id
    assert open_one["reason"] == "customer_request" and open_one["resolved_at"] is None

    answer = store.add_turn("c", "human", "Hi, Sam here. Refund issued.", author="sam")
    store.resolve_escalation("c", resolved_by="sam", note="refunded")
    conv = store.get_conversation("c")
    assert conv.status == "resolved" and conv.escalation_reason == "customer_request"  # history kept
    assert conv.turns[-1] == answer
    assert store.escalations() == []
    [closed] = store.escalations(open_only=False)
    assert closed["resolved_by"] == "sam" and closed["note"] == "refunded"
    assert closed["resolved_at"] >= closed["created_at"]
    with pytest.raises(StoreError, match="no open escalation"):
        store.resolve_escalation("c")


def test_set_status(store: LogStore) -> None:
    store.create_conversation("c")
    with pytest.raises(InputError, match="unknown status"):
        store.set_status("c", "done")
    with pytest.raises(InputError, match="needs a reason"):
        store.set_status("c", "escalated")
    with pytest.raises(NotFoundError):
        store.set_status("missing", "closed")
    store.set_status("c", "escalated", reason="billing")
    assert store.escalations()[0]["reason"] == "billing"
    store.set_status("c", "resolved", reason="handled by phone")
    assert store.escalations() == [] and store.get_conversation("c").status == "resolved"
    assert store.list_conversations()[0].status == "resolved"
    store.set_status("c", "open")
    store.set_status("c", "closed")
    assert store.get_conversation("c").status == "closed"


# -- review console queries -------------------------------------------------------------------


def build_review_fixture(store: LogStore, clock: Clock) -> dict[str, str]:
    """Four conversations on three days, differing in exactly the things the filters look at."""
    ids = {}
    # a: day 1, v1, customer rating 5, reviewed (labels), never escalated
    ids["a"] = store.create_conversation("a").id
    store.add_turn("a", "customer", "How do I reset the filter light? " + "x" * 300)
    a_reply = store.add_turn("a", "agent", "Hold the button 3 s.", model_version="v1")
    store.add_feedback(a_reply.id or "", rating=5, thumbs=1)
    store.add_feedback(a_reply.id or "", labels=["good"], reviewer="rita")
    clock.advance(days=1)
    # b: day 2, v2, rating 2, escalated, only customer feedback: unreviewed
    ids["b"] = store.create_conversation("b").id
    store.add_turn("b", "customer", "It smells burnt")
    b_reply = store.add_turn("b", "agent", "Unplug it now.", model_version="v2")
    store.add_feedback(b_reply.id or "", rating=2, thumbs=-1)
    store.escalate("b", "safety")
    clock.advance(days=1)
    # c: day 3, v1 and v2, no ratings, resolved, unreviewed
    ids["c"] = store.create_conversation("c").id
    store.add_turn("c", "system", "session started")
    store.add_turn("c", "customer", "Where is my order?")
    store.add_turn("c", "agent", "Checking.", model_version="v1")
    store.add_turn("c", "agent", "It ships today.", model_version="v2")
    store.set_status("c", "resolved")
    clock.advance(hours=1)
    # d: day 3, no agent turn, owned, reviewed only by mark-for-training
    ids["d"] = store.create_conversation("d", owner="key-1").id
    d_turn = store.add_turn("d", "customer", "hello?")
    store.add_feedback(d_turn.id or "", mark_for_training=True)
    clock.advance(hours=1)
    return ids


def ids_of(summaries: list) -> list[str]:  # type: ignore[type-arg]
    return [s.id for s in summaries]


def test_list_conversations_filters(timed_store: LogStore, clock: Clock) -> None:
    store = timed_store
    build_review_fixture(store, clock)
    day2 = T0 + timedelta(days=1)
    assert ids_of(store.list_conversations()) == ["d", "c", "b", "a"]  # most recently active first
    assert ids_of(store.list_conversations(since=day2)) == ["d", "c", "b"]
    assert ids_of(store.list_conversations(until=day2)) == ["a"]
    assert ids_of(store.list_conversations(since=day2, until=day2 + timedelta(days=1))) == ["b"]
    assert ids_of(store.list_conversations(model_version="v1")) == ["c", "a"]
    assert ids_of(store.list_conversations(model_version="v2")) == ["c", "b"]
    assert ids_of(store.list_conversations(model_version="v9")) == []
    assert ids_of(store.list_conversations(min_rating=4)) == ["a"]
    assert ids_of(store.list_conversations(max_rating=2)) == ["b"]
    assert ids_of(store.list_conversations(min_rating=1, max_rating=5)) == ["b", "a"]
    assert ids_of(store.list_conversations(escalated=True)) == ["b"]
    assert ids_of(store.list_conversations(escalated=False)) == ["d", "c", "a"]
    assert ids_of(store.list_conversations(unreviewed=True)) == ["c", "b"]
    assert ids_of(store.list_conversations(unreviewed=False)) == ["d", "a"]
    assert ids_of(store.list_conversations(status="resolved")) == ["c"]
    assert ids_of(store.list_conversations(owner="key-1")) == ["d"]
    assert ids_of(store.list_conversations(escalated=False, unreviewed=True)) == ["c"]
    assert ids_of(store.list_conversations(limit=2)) == ["d", "c"]
    assert ids_of(store.list_conversations(limit=2, offset=2)) == ["b", "a"]
    for bad in ({"limit": 0}, {"offset": -1}, {"min_rating": 9}, {"status": "weird"}):
        with pytest.raises(InputError):
            store.list_conversations(**bad)  # type: ignore[arg-type]


def test_conversation_summaries(timed_store: LogStore, clock: Clock) -> None:
    build_review_fixture(timed_store, clock)
    by_id = {s.id: s for s in timed_store.list_conversations()}
    a, b, c, d = by_id["a"], by_id["b"], by_id["c"], by_id["d"]
    assert a.first_message is not None and a.first_message.startswith("How do I reset the filter light?")
    assert len(a.first_message) == reports_module.FIRST_MESSAGE_CHARS and a.first_message.endswith("…")
    assert c.first_message == "Where is my order?"  # the system note is not the customer's message
    assert (a.model_versions, c.model_versions, d.model_versions) == (("v1",), ("v1", "v2"), ())
    assert (a.min_rating, b.min_rating, c.min_rating) == (5, 2, None)
    assert (a.reviewed, b.reviewed, c.reviewed, d.reviewed) == (True, False, False, True)
    assert (b.status, b.escalation_reason) == ("escalated", "safety")
    assert (a.turn_count, c.turn_count, d.owner) == (2, 4, "key-1")
    assert a.created_at == T0 and a.updated_at == T0
    json.dumps(a.to_dict())


def test_reviewed_conversations(timed_store: LogStore, clock: Clock) -> None:
    build_review_fixture(timed_store, clock)
    reviewed = list(timed_store.reviewed_conversations())
    assert [conv.id for conv, _ in reviewed] == ["a", "d"]  # oldest first
    conv_a, feedback_a = reviewed[0]
    assert [t.role for t in conv_a.turns] == ["customer", "agent"]
    assert [(f.rating, f.reviewer) for f in feedback_a] == [(5, None), (None, "rita")]  # all feedback
    # since: reviews made at or after it. Rita's review of "a" is older, "d" was marked later.
    later = T0 + timedelta(days=2, minutes=30)
    assert [conv.id for conv, _ in timed_store.reviewed_conversations(since=later)] == ["d"]
    clock.advance(days=1)
    timed_store.add_feedback(timed_store.turns("b")[1].id or "", correction="Unplug it and call us.")
    since = clock.now - timedelta(seconds=1)
    assert [conv.id for conv, _ in timed_store.reviewed_conversations(since=since)] == ["b"]


def test_iterators_page_through_many_conversations(store: LogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports_module, "_PAGE", 3)  # several pages from a handful of rows
    made = []
    for n in range(8):
        conv = store.create_conversation(f"c{n}")
        turn = store.add_turn(conv.id, "customer", f"question {n}")
        store.add_feedback(turn.id or "", labels=["x"])
        made.append(conv.id)
    assert sorted(row["id"] for row in store.export()) == sorted(made)
    assert sorted(conv.id for conv, _ in store.reviewed_conversations()) == sorted(made)
    assert sorted(row["id"] for row in store.export(conversation_ids=[*made, "missing"])) == sorted(made)


def test_export_is_json_ready_and_complete(timed_store: LogStore, clock: Clock) -> None:
    build_review_fixture(timed_store, clock)
    timed_store.add_turn(
        "b",
        "agent",
        "See [1].",
        retrieved=[RetrievedChunk("k1", "manual", 0.7, "manual.pdf")],
        citations=[Citation("manual", "manual.pdf", "Unplug first.", index=1, chunk_id="k1")],
        metadata={"passages": [{"doc_id": "manual"}]},
    )
    rows = list(timed_store.export())
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    decoded = json.loads(json.dumps(rows))  # plain JSON types only: no default= needed
    b = decoded[1]
    assert b["status"] == "escalated" and b["escalations"][0]["reason"] == "safety"
    assert [t["seq"] for t in b["turns"]] == [1, 2, 3]
    assert b["turns"][2]["retrieved"] == [
        {"chunk_id": "k1", "doc_id": "manual", "score": 0.7, "source": "manual.pdf"}
    ]
    assert b["turns"][2]["citations"][0]["snippet"] == "Unplug first."
    assert b["turns"][2]["metadata"] == {"passages": [{"doc_id": "manual"}]}
    assert b["feedback"][0]["rating"] == 2 and b["created_at"].endswith("+00:00")
    assert decoded[3]["owner"] == "key-1"
    assert [r["id"] for r in timed_store.export(conversation_ids=["c", "a"])] == ["a", "c"]
    assert list(timed_store.export(conversation_ids=[])) == []
    # since: conversations active at or after it ("b" just got a turn)
    assert [r["id"] for r in timed_store.export(since=clock.now)] == ["b"]


# -- full-text search -------------------------------------------------------------------------


def test_search_ranks_better_matches_first(store: LogStore) -> None:
    store.create_conversation("c1")
    store.create_conversation("c2")
    weak = store.add_turn(
        "c1",
        "agent",
        "Our stores are open every day. Shipping is free over 50 euros and delivery takes two days. "
        "Warranty covers two years; see the refund page for everything else about your purchase.",
    )
    strong = store.add_turn(
        "c2", "agent", "Refund policy: a refund is issued within 14 days; refunds go to the card."
    )
    store.add_turn("c2", "customer", "Thanks, bye")

    results = store.search("refund")
    assert [r.turn_id for r in results] == [strong.id, weak.id]
    assert results[0].rank > results[1].rank
    assert results[0].conversation_id == "c2" and results[0].role == "agent"
    assert "**" in results[0].snippet and "refund" in results[0].snippet.lower()
    assert [r.turn_id for r in store.search("refunds")] == [strong.id, weak.id]  # stemming
    assert [r.turn_id for r in store.search("refund", limit=1)] == [strong.id]


def test_search_is_full_text_not_substring(store: LogStore) -> None:
    store.create_conversation("c")
    turn = store.add_turn("c", "customer", "I was refunded twice for the Aero filter")
    store.add_turn("c", "agent", "The pre-filter is washable.")
    seen: list[str] = []
    event.listen(store._db.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    assert [r.turn_id for r in store.search("refund")] == [turn.id]  # stem match
    assert store.search("fund") == []  # LIKE '%fund%' would match "refunded"
    assert store.search("refunded aero") and store.search("refunded kitchen") == []  # terms are ANDed
    assert [r.turn_id for r in store.search('"aero filter"')] == [turn.id]  # phrase
    assert store.search('"filter aero"') == []
    assert len(store.search("washable or refunded")) == 2
    assert [r.turn_id for r in store.search("filter -washable")] == [turn.id]
    assert store.search("-washable") == [] and store.search("the was for") == []  # same on both backends
    assert not any(" like " in statement.lower() for statement in seen)


# Quotes, FTS5 operators and column filters, tsquery operators, SQL, NUL, stop words only, CJK.
ODD_QUERIES = [
    *['"', '""', 'a"b"c', "'", "';DROP TABLE turns;--", "\x00", "", "   ", "the", "é ü 中文"],
    *["AND(", "refund AND(", "NEAR(a b", "a OR", "OR", "AND", "NOT refund", "refund NOT", "-refund"],
    *["-", "--", "*", "refund*", "^x", "x:y", "col:refund", "(((", ")", "{refund}", "+refund", "a & !b | c"],
]


def test_search_never_raises_on_odd_input(store: LogStore) -> None:
    store.create_conversation("c")
    store.add_turn("c", "customer", "refund for a filter")
    for query in ODD_QUERIES:
        assert isinstance(store.search(query), list), query
    assert [r.snippet for r in store.search("+refund*")] == ["**refund** for a filter"]
    assert store.counts()["turns"] == 1


def test_search_finds_turns_the_moment_they_are_committed(store_url: str) -> None:
    with LogStore(store_url) as writer, LogStore(store_url) as reader:
        writer.create_conversation("c")
        turn = writer.add_turn("c", "customer", "the ionizer clicks loudly")
        assert [r.turn_id for r in reader.search("ionizer")] == [turn.id]


# -- dashboard --------------------------------------------------------------------------------


def test_kpis_match_a_hand_computed_fixture(timed_store: LogStore, clock: Clock) -> None:
    store = timed_store
    # Day 1. v1 answers c1 (thumbs up, rating 4; a reviewer's rating 1 is not CSAT), resolved
    # after 10 min without escalation: deflected.
    store.create_conversation("c1")
    store.add_turn("c1", "customer", "q")
    t1 = store.add_turn("c1", "agent", "a", model_version="v1")
    store.add_feedback(t1.id or "", thumbs=1, rating=4)
    store.add_feedback(t1.id or "", rating=1, reviewer="rita")
    clock.advance(minutes=10)
    store.set_status("c1", "resolved")
    # Day 1. v1 answers c2 twice (thumbs down on the second), escalated, resolved 30 min later.
    store.create_conversation("c2")
    store.add_turn("c2", "customer", "q")
    store.add_turn("c2", "agent", "a", model_version="v1")
    t2b = store.add_turn("c2", "agent", "b", model_version="v1")
    store.add_feedback(t2b.id or "", thumbs=-1, rating=2)
    store.escalate("c2", "unhelpful_streak")
    clock.advance(minutes=30)
    store.resolve_escalation("c2", resolved_by="sam")
    # Day 2. v2 answers c3 (thumbs up, rating 5), stays open.
    clock.now = T0 + timedelta(days=1)
    store.create_conversation("c3")
    store.add_turn("c3", "customer", "q")
    t3 = store.add_turn("c3", "agent", "a", model_version="v2")
    store.add_feedback(t3.id or "", thumbs=1, rating=5)
    # Day 2. c4: escalated before any agent answer.
    store.create_conversation("c4")
    store.add_turn("c4", "customer", "human please")
    store.escalate("c4", "customer_request")

    by_version = {row["model_version"]: row for row in store.kpis()}
    assert set(by_version) == {"v1", "v2", None}
    v1 = by_version["v1"]
    assert v1["conversations"] == 2 and v1["agent_turns"] == 3
    assert v1["thumbs_up_rate"] == pytest.approx(0.5) and v1["mean_rating"] == pytest.approx(3.0)
    assert v1["escalation_rate"] == pytest.approx(0.5) and v1["deflection_rate"] == pytest.approx(0.5)
    assert v1["mean_resolution_s"] == pytest.approx((600 + 1800) / 2)  # c1: 10 min; c2: 30 min
    v2 = by_version["v2"]
    assert (v2["conversations"], v2["agent_turns"], v2["thumbs_up_rate"], v2["mean_rating"]) == (
        1,
        1,
        1.0,
        5.0,
    )
    assert (v2["escalation_rate"], v2["deflection_rate"], v2["mean_resolution_s"]) == (0.0, 0.0, None)
    unanswered = by_version[None]
    assert (unanswered["conversations"], unanswered["agent_turns"], unanswered["escalation_rate"]) == (
        1,
        0,
        1.0,
    )
    assert unanswered["thumbs_up_rate"] is None and unanswered["mean_rating"] is None
    assert [row["model_version"] for row in store.kpis()] == ["v1", "v2", None]

    by_day = {row["day"]: row for row in store.kpis(by="day")}
    assert set(by_day) == {"2025-03-01", "2025-03-02"}
    assert by_day["2025-03-01"]["conversations"] == 2 and by_day["2025-03-02"]["conversations"] == 2
    assert by_day["2025-03-02"]["escalation_rate"] == pytest.approx(0.5)
    assert by_day["2025-03-01"]["thumbs_up_rate"] == pytest.approx(0.5)

    day2 = T0 + timedelta(days=1)
    assert [row["model_version"] for row in store.kpis(since=day2)] == ["v2", None]
    assert [row["model_version"] for row in store.kpis(until=day2)] == ["v1"]
    both = store.kpis(by="day,model_version")
    assert [(r["day"], r["model_version"]) for r in both] == [
        ("2025-03-01", "v1"),
        ("2025-03-02", "v2"),
        ("2025-03-02", None),
    ]
    clock.advance(days=5)
    store.set_status("c1", "resolved")  # resolving again keeps the first resolution time
    assert store.kpis()[0]["mean_resolution_s"] == pytest.approx(1200)
    with pytest.raises(InputError):
        store.kpis(by="week")
    assert store.counts() == {"conversations": 4, "turns": 8, "feedback": 4, "escalations": 2}
