"""Strict types on every route with a body, as OpenAI's API is: a string where a boolean or a
number belongs (or a number where a string does) is a 400 naming the field, and nothing is
stored. Before issue 22, pydantic's lax mode turned ``"stream": "true"`` into a stream,
``"rating": "5"`` into a rating and ``"thumbs": "1"`` into a thumbs-up."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.conftest import FILTER_QUESTION
from tests.hardening.conftest import table_digest

ASK = [{"role": "user", "content": FILTER_QUESTION}]

CHAT = {
    "stream-string": ({"stream": "true"}, "stream"),
    "stream-int": ({"stream": 1}, "stream"),
    "n-string": ({"n": "1"}, "n"),
    "n-float": ({"n": 1.0}, "n"),
    "max_tokens-string": ({"max_tokens": "10"}, "max_tokens"),
    "max_completion_tokens-float": ({"max_completion_tokens": 10.5}, "max_completion_tokens"),
    "temperature-string": ({"temperature": "0.5"}, "temperature"),
    "top_p-bool": ({"top_p": True}, "top_p"),
    "seed-string": ({"seed": "7"}, "seed"),
    "logprobs-string": ({"logprobs": "false"}, "logprobs"),
    "include_usage-string": ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options"),
    "model-number": ({"model": 5}, "model"),
    "conversation_id-number": ({"conversation_id": 42}, "conversation_id"),
    "user-number": ({"user": 42}, "user"),
    "metadata-value-number": ({"metadata": {"a": 1}}, "metadata"),
    "content-number": ({"messages": [{"role": "user", "content": 42}]}, "messages"),
    "role-number": ({"messages": [{"role": 1, "content": "hi"}]}, "messages"),
}


@pytest.mark.parametrize("change,param", list(CHAT.values()), ids=list(CHAT))
def test_chat_completions_types_are_strict(api, change: dict[str, Any], param: str) -> None:
    with api.http(api.customer("shop")) as http:
        answer = http.post("/v1/chat/completions", json={"messages": ASK, **change})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].split(".")[0] == param
    assert api.store.counts()["conversations"] == 0


FEEDBACK = {
    "thumbs-string": ({"thumbs": "1"}, "thumbs"),
    "thumbs-bool": ({"thumbs": True}, "thumbs"),
    "rating-string": ({"rating": "5"}, "rating"),
    "rating-float": ({"rating": 5.0}, "rating"),
    "mark_for_training-string": ({"mark_for_training": "true"}, "mark_for_training"),
    "comment-number": ({"comment": 3}, "comment"),
    "labels-string": ({"labels": "wrong"}, "labels"),
    "turn_id-number": ({"turn_id": 12}, "turn_id"),
}
KEYS = {
    "name-number": ({"name": 7}, "name"),
    "scope-bool": ({"name": "ok", "scope": True}, "scope"),
}


def test_feedback_and_key_types_are_strict(make_api, home) -> None:
    api = make_api(auth_cache_s=3600.0)  # keys' last_used_at written once, before the digest
    with api.http(api.customer("shop")) as http:
        reply = http.post("/v1/chat/completions", json={"messages": ASK})
    turn_id = reply.json()["supportloop"]["turn_id"]
    with api.http(api.admin_key) as http:
        assert http.get("/v1/conversations").status_code == 200
    before = table_digest(home / "supportloop.db")
    answers = []
    with api.http(api.admin_key) as http:
        for change, param in FEEDBACK.values():
            answers.append((http.post("/v1/feedback", json={"turn_id": turn_id, **change}), param))
        for change, param in KEYS.values():
            answers.append((http.post("/v1/admin/keys", json=change), param))
    for answer, param in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"].split(".")[0] == param
    assert table_digest(home / "supportloop.db") == before
