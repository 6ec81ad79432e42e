"""No duplicate turns on retry (issue 22): a request sent again with the same ``Idempotency-Key``
(or ``X-Request-Id``) is answered from the first one, streamed or not, finished, failed or still
running; and every 5xx that may follow a logged turn says ``x-should-retry: false``, so the
official client does not send it again. Each failed on the code before (a second pair of turns
per retry, and a plain 500 the client retried)."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest

from agent.generator import ScriptedGenerator
from tests.deploy.conftest import FILTER_ANSWER, FILTER_QUESTION

ASK = {"model": "production", "messages": [{"role": "user", "content": FILTER_QUESTION}]}


def _roles(api: Any) -> list[str]:
    (conversation,) = api.store.list_conversations()
    return [t.role for t in api.store.turns(conversation.id)]


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Request-Id"])
def test_the_same_key_twice_stores_one_turn_and_returns_the_same_reply(api, header: str) -> None:
    api.generator.enqueue(FILTER_ANSWER, "a different answer the retry must not get")
    with api.http(api.customer("shop")) as http:
        first = http.post("/v1/chat/completions", json=ASK, headers={header: "req-7f3a"})
        again = http.post("/v1/chat/completions", json=ASK, headers={header: "req-7f3a"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.json()["choices"][0]["message"]["content"] == FILTER_ANSWER
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.headers["x-conversation-id"] == first.headers["x-conversation-id"]
    assert _roles(api) == ["customer", "agent"]


def test_a_streamed_request_retried_gets_its_reply_again_as_a_stream(api) -> None:
    api.generator.enqueue(FILTER_ANSWER)
    client = api.openai(api.customer("shop"))
    headers = {"Idempotency-Key": "stream-1"}
    runs = [
        list(
            client.chat.completions.create(
                **ASK, stream=True, stream_options={"include_usage": True}, extra_headers=headers
            )
        )
        for _ in range(2)
    ]
    texts = ["".join(c.choices[0].delta.content or "" for c in chunks if c.choices) for chunks in runs]
    assert texts == [FILTER_ANSWER, FILTER_ANSWER]
    finals = [next(c for c in chunks if c.choices and c.choices[0].finish_reason) for chunks in runs]
    assert finals[0].model_extra["supportloop"] == finals[1].model_extra["supportloop"]
    assert runs[1][-1].usage == runs[0][-1].usage
    assert _roles(api) == ["customer", "agent"]


def test_the_same_key_with_another_body_is_400_and_stores_nothing_more(api) -> None:
    with api.http(api.customer("shop")) as http:
        assert (
            http.post("/v1/chat/completions", json=ASK, headers={"Idempotency-Key": "k1"}).status_code == 200
        )
        other = {**ASK, "messages": [{"role": "user", "content": "And the warranty?"}]}
        reused = http.post("/v1/chat/completions", json=other, headers={"Idempotency-Key": "k1"})
        bad = http.post("/v1/chat/completions", json=ASK, headers={"Idempotency-Key": "no spaces\tplease"})
    assert reused.status_code == 400 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "idempotency-key"
    assert _roles(api) == ["customer", "agent"]


def test_keys_are_per_api_key(api) -> None:
    api.generator.enqueue("Replace the HEPA filter every 6 months [1].", FILTER_ANSWER)
    answers = []
    for name in ("shop", "other-shop"):
        with api.http(api.customer(name)) as http:
            answers.append(http.post("/v1/chat/completions", json=ASK, headers={"Idempotency-Key": "same"}))
    assert [a.status_code for a in answers] == [200, 200]
    assert "idempotent-replayed" not in answers[1].headers
    assert (
        answers[0].json()["supportloop"]["conversation_id"]
        != answers[1].json()["supportloop"]["conversation_id"]
    )


def test_concurrent_retries_of_a_running_request_get_its_reply_once(make_api) -> None:
    generator = ScriptedGenerator([FILTER_ANSWER])
    generator.delay_s = 0.05  # the first request is still generating when the retries arrive
    api = make_api(generator=generator)
    client = api.openai(api.customer("shop"), max_retries=5)
    results: list[Any] = []

    def send() -> None:
        results.append(client.chat.completions.create(**ASK, extra_headers={"Idempotency-Key": "busy-1"}))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert {r.choices[0].message.content for r in results} == {FILTER_ANSWER}
    assert len({r.model_extra["supportloop"]["turn_id"] for r in results}) == 1
    assert _roles(api) == ["customer", "agent"]


class Failing(ScriptedGenerator):
    def stream(self, messages, options, cancel=None):
        self.calls = getattr(self, "calls", 0) + 1
        raise RuntimeError("the model crashed")


def test_a_5xx_after_the_turn_was_logged_is_not_retried_and_its_key_replays_the_error(make_api) -> None:
    generator = Failing()
    api = make_api(generator=generator)
    client = api.openai(api.customer("shop"), max_retries=3)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(**ASK)
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert generator.calls == 1  # the client did not retry
    with pytest.raises(openai.InternalServerError) as again:
        client.chat.completions.create(**ASK, extra_headers={"Idempotency-Key": "crash-1"})
    with pytest.raises(openai.InternalServerError) as replayed:
        client.chat.completions.create(**ASK, extra_headers={"Idempotency-Key": "crash-1"})
    assert replayed.value.response.headers["idempotent-replayed"] == "true"
    assert replayed.value.body == again.value.body
    assert generator.calls == 2
    customer_turns = [
        t for c in api.store.list_conversations() for t in api.store.turns(c.id) if t.role == "customer"
    ]
    assert len(customer_turns) == 2  # one per request, none per retry
