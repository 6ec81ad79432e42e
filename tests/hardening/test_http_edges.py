"""The HTTP API at its edges: every bad input is a 400 in the OpenAI error shape, refused before
anything is stored; errors disclose no database URL or path; ``/readyz`` checks that the store
can write. Each test failed on the code before issue 22 (no response, a 500, a stored turn, a
leaked path or a ready answer from a read-only store)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.deploy.conftest import FILTER_QUESTION, wait_until
from tests.hardening.conftest import table_digest

EMPTY = {"conversations": 0, "turns": 0, "feedback": 0, "escalations": 0}


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "production", "messages": [{"role": "user", "content": content}], **extra}


def _post_raw(http: httpx.Client, path: str, body: str) -> httpx.Response:
    """POST a JSON text as is (for escapes httpx's encoder would not produce, like lone surrogates)."""
    return http.post(path, content=body.encode("utf-8"), headers={"content-type": "application/json"})


def _assert_400(answer: httpx.Response, param: str | None = None) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and isinstance(error["message"], str)
    if param is not None:
        assert error["param"] == param, error
    return error


# -- 1. conversation ids --------------------------------------------------------------------------

BAD_IDS = {
    "crlf": "abc\r\nX-Injected: 1",
    "lf": "abc\nd",
    "non-latin-1": "заказ-42",
    "emoji": "order-☕",
    "latin-1-accent": "café",
    "space": "a b",
    "slash": "../../etc/passwd",
    "too-long": "a" * 129,
    "nul": "a\x00b",
}


@pytest.mark.parametrize("bad", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_a_bad_conversation_id_in_the_body_is_400_and_nothing_is_stored(api, bad: str) -> None:
    with api.http(api.customer("shop")) as http:
        answer = http.post("/v1/chat/completions", json=_chat(FILTER_QUESTION, conversation_id=bad))
        streamed = http.post(
            "/v1/chat/completions", json=_chat(FILTER_QUESTION, conversation_id=bad, stream=True)
        )
    for response in (answer, streamed):
        error = _assert_400(response, "conversation_id")
        assert bad not in error["message"]  # never echoed
        assert "x-conversation-id" not in response.headers
    assert api.store.counts() == EMPTY


def test_a_bad_conversation_id_header_is_400_and_nothing_is_stored(api) -> None:
    with api.http(api.customer("shop")) as http:
        utf8 = http.post(
            "/v1/chat/completions",
            json=_chat(FILTER_QUESTION),
            headers={"x-conversation-id": "заказ".encode()},
        )
        spaced = http.post(
            "/v1/chat/completions", json=_chat(FILTER_QUESTION), headers={"x-conversation-id": "a b"}
        )
    _assert_400(utf8, "conversation_id")
    _assert_400(spaced, "conversation_id")
    assert api.store.counts() == EMPTY


def test_a_valid_conversation_id_is_served_and_echoed(api) -> None:
    cid = "shop-42:order_7.a"
    with api.http(api.customer("shop")) as http:
        answer = http.post("/v1/chat/completions", json=_chat(FILTER_QUESTION, conversation_id=cid))
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-conversation-id"] == cid
    assert api.store.counts()["turns"] == 2


# -- 2. NUL and invalid text in messages ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(_chat("hel\x00lo")),
        json.dumps(_chat("hello", conversation_id="fresh-1") | {"stream": True}).replace(
            '"hello"', '"hel\\u0000lo"'
        ),
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "first\x00"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": FILTER_QUESTION},
                ]
            }
        ),
        '{"messages": [{"role": "user", "content": "lone \\ud800 surrogate"}]}',
    ],
    ids=["nul", "nul-streamed", "nul-in-history", "lone-surrogate"],
)
def test_a_message_that_cannot_be_stored_is_400_and_leaves_no_conversation(api, body: str) -> None:
    with api.http(api.customer("shop")) as http:
        answer = _post_raw(http, "/v1/chat/completions", body)
    _assert_400(answer)
    assert api.store.counts() == EMPTY


# -- 3. paging numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["offset=100000000000000000000", "offset=9223372036854775808", "limit=100000000000000000000"],
    ids=["offset-1e20", "offset-2^63", "limit-1e20"],
)
def test_huge_paging_numbers_are_400_not_500(api, query: str) -> None:
    with api.http(api.admin_key) as http:
        answer = http.get(f"/v1/conversations?{query}")
    error = _assert_400(answer)
    assert error["param"] in ("offset", "limit")


def test_a_large_but_valid_offset_is_an_empty_page(api) -> None:
    with api.http(api.admin_key) as http:
        answer = http.get("/v1/conversations?offset=1000000")
    assert answer.status_code == 200 and answer.json()["data"] == []


# -- 4. no disclosure ----------------------------------------------------------------------------


def test_a_404_names_no_database_url_or_path(api, home: Path) -> None:
    secret = api.customer("shop")
    with api.http(secret) as http:
        answers = [
            http.post("/v1/feedback", json={"turn_id": "0123456789abcdef", "thumbs": 1}),
            http.get("/v1/conversations/0123456789abcdef"),
        ]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        message = answer.json()["error"]["message"]
        for leak in ("sqlite", "postgresql", str(home), "supportloop.db", "/tmp", str(home.parent)):
            assert leak not in message, message


# -- 5. bounded fields ---------------------------------------------------------------------------


def _agent_turn(api) -> str:
    with api.http(api.customer("shop")) as http:
        answer = http.post("/v1/chat/completions", json=_chat(FILTER_QUESTION))
    assert answer.status_code == 200
    return answer.json()["supportloop"]["turn_id"]


@pytest.mark.parametrize(
    "feedback",
    [
        {"labels": ["x" * 100_000]},
        {"labels": [f"l{n}" for n in range(51)]},
        {"labels": ["ok\x00"]},
        {"comment": "c" * 5_001},
        {"comment": "nul\x00"},
        {"thumbs": 1, "reviewer": "r" * 300},
    ],
    ids=["huge-label", "too-many-labels", "nul-label", "long-comment", "nul-comment", "long-reviewer"],
)
def test_unbounded_feedback_fields_are_400(api, feedback: dict[str, Any]) -> None:
    turn_id = _agent_turn(api)
    before = api.store.counts()
    with api.http(api.admin_key) as http:
        answer = http.post("/v1/feedback", json={"turn_id": turn_id, **feedback})
    _assert_400(answer)
    assert api.store.counts() == before


def test_an_api_key_name_with_nul_or_controls_is_400(api) -> None:
    before = len(api.store.list_api_keys())
    with api.http(api.admin_key) as http:
        for name in ("ops\x00", "line\nbreak", "x" * 256, "   "):
            _assert_400(http.post("/v1/admin/keys", json={"name": name}), "name")
    assert len(api.store.list_api_keys()) == before


# -- 8. readiness --------------------------------------------------------------------------------


def test_readyz_is_503_when_the_store_cannot_write(api) -> None:
    with api.http() as http:
        wait_until(lambda: http.get("/readyz").status_code == 200)
        engine = api.store._db.engine

        def read_only(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA query_only = ON")

        event.listen(engine, "connect", read_only)
        engine.dispose()  # new connections: read-only, as on a read-only volume
        try:
            answer = http.get("/readyz")
        finally:
            event.remove(engine, "connect", read_only)
            engine.dispose()
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "store_unavailable"
        assert "sqlite" not in answer.text and "supportloop.db" not in answer.text
        assert http.get("/readyz").status_code == 200  # writable again
    assert api.store.counts() == EMPTY  # the probe leaves nothing behind


def test_readyz_is_503_when_the_disk_is_full(api, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    with api.http() as http:
        wait_until(lambda: http.get("/readyz").status_code == 200)
        monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 4096))
        answer = http.get("/readyz")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "store_unavailable"


# -- 9. a refused request changes nothing --------------------------------------------------------


def test_refused_requests_leave_every_table_unchanged(make_api, home: Path) -> None:
    api = make_api(auth_cache_s=3600.0)
    secret = api.customer("shop")
    turn_id = _agent_turn(api)  # some rows to compare, and both keys' last_used_at recorded
    with api.http(api.admin_key) as http:
        assert http.get("/v1/conversations").status_code == 200
    before = table_digest(home / "supportloop.db")
    refused: list[httpx.Response] = []
    with api.http(secret) as http, api.http(api.admin_key) as admin:
        post = http.post
        refused += [
            post("/v1/chat/completions", json=_chat(FILTER_QUESTION, conversation_id="a\r\nb")),
            post("/v1/chat/completions", json=_chat(FILTER_QUESTION, conversation_id="заказ")),
            post("/v1/chat/completions", json=_chat(FILTER_QUESTION, conversation_id="x" * 200)),
            post("/v1/chat/completions", json=_chat("nul\x00")),
            post("/v1/chat/completions", json=_chat("   ")),
            post("/v1/chat/completions", json=_chat("x" * 2_001)),
            post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "q"}], "n": 2}),
            post("/v1/chat/completions", json={"messages": "not a list"}),
            _post_raw(http, "/v1/chat/completions", '{"messages": [{"role": "user", "content": "\\udfff"}]}'),
            _post_raw(http, "/v1/chat/completions", "[" * 100_000),
            post("/v1/chat/completions", json=_chat(FILTER_QUESTION, model="../../etc/passwd")),
            post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "a\x00"}, {"role": "user", "content": "q"}]},
            ),
            post("/v1/feedback", json={"turn_id": turn_id, "labels": ["x" * 10_000]}),
            post("/v1/feedback", json={"turn_id": turn_id, "comment": "a\x00"}),
            post("/v1/feedback", json={"turn_id": "no-such-turn", "thumbs": 1}),
            post("/v1/feedback", json={"turn_id": turn_id}),
            post("/v1/feedback", json={"turn_id": turn_id, "thumbs": 1, "reviewer": "me"}),
            http.get("/v1/conversations?offset=100000000000000000000"),
            http.get("/v1/conversations/nope"),
            admin.post("/v1/admin/keys", json={"name": "k\x00"}),
            admin.post("/v1/admin/keys", json={"name": "k", "scope": "root"}),
            admin.delete("/v1/admin/keys/no-such-key"),
        ]
    assert all(400 <= r.status_code < 500 for r in refused), [(r.status_code, r.text) for r in refused]
    assert table_digest(home / "supportloop.db") == before
    # The digest does see a write: an accepted request changes it.
    _agent_turn(api)
    time.sleep(0.05)
    assert table_digest(home / "supportloop.db") != before
