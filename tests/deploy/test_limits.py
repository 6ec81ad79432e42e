"""Limits and errors: 413 for big bodies, 400 for unusable messages (nothing logged), 429 with
Retry-After per key, 404/405 for unknown routes, and generation failures that clients must not
retry; every error in the OpenAI error shape."""

from __future__ import annotations

import openai
import pytest

from agent.errors import GenerationError
from agent.generator import ScriptedGenerator
from tests.deploy.conftest import FILTER_QUESTION


def _chat(content, **extra):
    return {"model": "production", "messages": [{"role": "user", "content": content}], **extra}


def test_request_body_over_the_limit_is_413(make_api) -> None:
    api = make_api(max_body_bytes=2_000)
    with api.http(api.customer("shop")) as http:
        answer = http.post("/v1/chat/completions", json=_chat("x" * 3_000))
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "request_too_large"

        def chunks():  # no Content-Length: the limit applies while the body is read
            yield b'{"model": "production", "messages": [{"role": "user", "content": "'
            yield b"x" * 3_000
            yield b'"}]}'

        streamed = http.post(
            "/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "request_too_large"
    assert api.store.counts()["turns"] == 0


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([{"role": "user", "content": "   "}], "message"),
        ([{"role": "user", "content": "x" * 2_001}], "2,000"),
        ([{"role": "assistant", "content": "hi"}], "last message"),
        ([{"role": "user", "content": "hi"}] * 101, "limit is 100"),
        ([], "messages"),
    ],
    ids=["empty", "oversize", "not-user", "too-many", "none"],
)
def test_unusable_messages_are_400_and_nothing_is_logged(api, messages, needle: str) -> None:
    client = api.openai(api.customer("shop"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="production", messages=messages)
    assert needle in caught.value.body["message"]
    assert api.store.counts() == {"conversations": 0, "turns": 0, "feedback": 0, "escalations": 0}


def test_malformed_json_is_400(api) -> None:
    with api.http(api.customer("shop")) as http:
        answer = http.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"


def test_rate_limit_per_key_is_429_with_retry_after(make_api) -> None:
    api = make_api(rate_limit_per_minute=6.0, rate_limit_burst=2)
    client = api.openai(api.customer("shop"))
    for _ in range(2):
        client.chat.completions.create(**_chat(FILTER_QUESTION))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(**_chat(FILTER_QUESTION))
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.body["code"] == "rate_limit_exceeded"
    # Another key has its own bucket.
    assert api.openai(api.customer("other")).chat.completions.create(**_chat(FILTER_QUESTION)).choices
    with api.http() as http:
        assert "supportloop_rate_limited_total 1" in http.get("/metrics").text


def test_unknown_routes_and_methods_use_the_error_shape(api) -> None:
    with api.http(api.customer("shop")) as http:
        missing = http.get("/v1/nothing-here")
        wrong = http.get("/v1/chat/completions")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert wrong.status_code == 405 and "message" in wrong.json()["error"]


class FailingGenerator(ScriptedGenerator):
    def stream(self, messages, options, cancel=None):
        raise GenerationError("the remote model at http://vllm:8000 failed: connection refused")
        yield  # pragma: no cover


def test_generation_failure_is_5xx_and_the_client_does_not_retry(make_api) -> None:
    api = make_api(FailingGenerator())
    client = api.openai(api.customer("shop"), max_retries=2)  # the client's default retries
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**_chat(FILTER_QUESTION))
    assert caught.value.status_code == 502 and caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.body["code"] == "generation_failed"
    (summary,) = api.store.list_conversations()
    roles = [t.role for t in api.store.turns(summary.id)]
    assert roles == ["customer", "system"]  # one attempt logged, not three

    stream = client.chat.completions.create(**_chat(FILTER_QUESTION), stream=True)
    with pytest.raises(openai.APIError, match="connection refused"):
        list(stream)
