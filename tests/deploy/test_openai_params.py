"""The OpenAI request parameters (issue 21), driven by the official ``openai`` client (sync, async,
streaming) and by LangChain's ``ChatOpenAI`` pointed at the server: ``max_tokens`` and
``max_completion_tokens`` cut the reply with ``finish_reason: "length"``, ``stop`` ends it before
the sequence, sampling values are range-checked, fields that change the output contract are a 400
in OpenAI's shape (never a plain-text 200), ``user``/``seed``/``metadata``/``stream_options`` are
accepted, and a 401 names its scheme in ``WWW-Authenticate``. Each failed on the code before."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from agent.prompt import stop_prefix_length
from tests.deploy.conftest import FILTER_ANSWER, FILTER_QUESTION

LONG_ANSWER = "Replace the HEPA filter every 6 months [1]. The replacement part is HF-500 [1]."
ASK = [{"role": "user", "content": FILTER_QUESTION}]


def _create(client: Any, **params: Any) -> Any:
    return client.chat.completions.create(model="production", messages=ASK, **params)


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_a_clients_max_tokens_cuts_the_reply_with_finish_reason_length(make_api, name: str) -> None:
    api = make_api(grounding=False)  # unchecked, so the cut text comes back exactly as generated
    api.generator.enqueue(LONG_ANSWER)
    response = _create(api.openai(api.customer("shop")), **{name: 4})
    assert response.choices[0].message.content == "Replace the HEPA filter"
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 4
    turn = api.store.get_turn(response.model_extra["supportloop"]["turn_id"])
    assert turn.text == "Replace the HEPA filter" and turn.completion_tokens == 4


def test_max_tokens_streamed_and_capped_by_the_servers_limit(make_api) -> None:
    api = make_api(grounding=False)
    client = api.openai(api.customer("shop"))
    api.generator.enqueue(LONG_ANSWER)
    chunks = list(_create(client, max_tokens=3, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Replace the HEPA"
    assert next(c for c in chunks if c.choices and c.choices[0].finish_reason).choices[0].finish_reason == (
        "length"
    )
    api.generator.enqueue(LONG_ANSWER)  # a limit above the server's own is the server's
    whole = _create(client, max_tokens=10**9)
    assert whole.choices[0].message.content == LONG_ANSWER
    assert whole.choices[0].finish_reason == "stop"


def test_a_grounded_reply_cut_by_max_tokens_keeps_whole_sentences_and_says_length(api) -> None:
    api.generator.enqueue(LONG_ANSWER)
    response = _create(api.openai(api.customer("shop")), max_tokens=10)
    assert response.choices[0].message.content == "Replace the HEPA filter every 6 months [1]."
    assert response.choices[0].finish_reason == "length"


def test_stop_ends_the_reply_before_the_sequence_sync_and_streamed(make_api) -> None:
    api = make_api(grounding=False)
    client = api.openai(api.customer("shop"))
    api.generator.enqueue(LONG_ANSWER)
    response = _create(client, stop=["The replacement", "never"])
    assert response.choices[0].message.content == "Replace the HEPA filter every 6 months [1]."
    assert response.choices[0].finish_reason == "stop"
    api.generator.enqueue(LONG_ANSWER)
    chunks = list(_create(client, stop="HF-500", stream=True))
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas).rstrip() == "Replace the HEPA filter every 6 months [1]. The replacement part is"
    assert not any("HF" in d for d in deltas)
    logged = api.store.turns(response.model_extra["supportloop"]["conversation_id"])[-1]
    assert logged.text == "Replace the HEPA filter every 6 months [1]."


def test_the_end_of_a_stream_that_could_begin_a_stop_sequence_is_held_back() -> None:
    assert stop_prefix_length("the part is H", ["HF-500"]) == 1
    assert stop_prefix_length("the part is HF-5", ["HF-500", "x"]) == 4
    assert stop_prefix_length("the part is", ["HF-500"]) == 0
    assert stop_prefix_length("anything", []) == 0


def test_async_client_with_every_accepted_parameter(api) -> None:
    async def run() -> tuple[Any, list[Any]]:
        client = openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key=api.customer("shop"), max_retries=0)
        params: dict[str, Any] = {
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 7,
            "user": "customer-42",
            "metadata": {"ticket": "T-1"},
            "presence_penalty": 0.0,
            "frequency_penalty": 0.5,
            "response_format": {"type": "text"},
            "n": 1,
        }
        api.generator.enqueue(FILTER_ANSWER, FILTER_ANSWER)
        plain = await client.chat.completions.create(model="production", messages=ASK, **params)
        stream = await client.chat.completions.create(
            model="production",
            messages=ASK,
            stream=True,
            stream_options={"include_usage": True},
            **params,
        )
        chunks = [chunk async for chunk in stream]
        await client.close()
        return plain, chunks

    plain, chunks = asyncio.run(run())
    assert plain.choices[0].message.content == FILTER_ANSWER
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == FILTER_ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize(
    "params,param",
    [
        ({"temperature": 3}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": -5}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
    ],
)
def test_out_of_range_values_are_400_in_the_openai_shape(api, params: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _create(api.openai(api.customer("shop")), **params)
    assert caught.value.body["param"] == param and caught.value.body["type"] == "invalid_request_error"
    assert api.store.counts()["turns"] == 0


TOOL = {"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}}
CONTRACT = {
    "tools": {"tools": [TOOL]},
    "tool_choice": {"tool_choice": "auto"},
    "functions": {"extra_body": {"functions": [TOOL["function"]]}},
    "function_call": {"extra_body": {"function_call": "auto"}},
    "response_format": {"response_format": {"type": "json_object"}},
    "n": {"n": 2},
    "logprobs": {"logprobs": True},
    "top_logprobs": {"logprobs": True, "top_logprobs": 2},
    "modalities": {"extra_body": {"modalities": ["text", "audio"]}},
}


@pytest.mark.parametrize("param", list(CONTRACT))
def test_fields_that_change_the_output_contract_are_400_not_a_plain_text_200(api, param: str) -> None:
    client = api.openai(api.customer("shop"))
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            _create(client, stream=stream, **CONTRACT[param])
        body = caught.value.body
        expected = "logprobs" if param == "top_logprobs" else param
        assert (body["param"], body["code"]) == (expected, "unsupported_parameter")
        assert body["type"] == "invalid_request_error"
    assert api.store.counts()["conversations"] == 0


def test_a_401_carries_www_authenticate(api) -> None:
    with api.http() as http:
        missing = http.post("/v1/chat/completions", json={"messages": ASK})
    with api.http("sl-not-a-key") as http:
        wrong = http.get("/v1/models")
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer realm=")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    with pytest.raises(openai.AuthenticationError):
        _create(api.openai("sl-not-a-key"))


def test_langchain_chat_openai_pointed_at_the_server(make_api) -> None:
    from langchain_openai import ChatOpenAI

    api = make_api(grounding=False)
    secret = api.customer("langchain")
    chat = ChatOpenAI(
        base_url=f"{api.url}/v1", api_key=secret, model="production", max_retries=0, temperature=0.3
    )
    api.generator.enqueue(LONG_ANSWER, LONG_ANSWER, LONG_ANSWER)
    message = chat.invoke(FILTER_QUESTION)
    assert message.content == LONG_ANSWER
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.usage_metadata["output_tokens"] > 0

    cut = chat.bind(stop=["The replacement"]).invoke(FILTER_QUESTION)
    assert cut.content == "Replace the HEPA filter every 6 months [1]."

    short = ChatOpenAI(
        base_url=f"{api.url}/v1", api_key=secret, model="production", max_retries=0, max_tokens=2
    )
    streamed = list(short.stream(FILTER_QUESTION))
    assert "".join(str(c.content) for c in streamed) == "Replace the"
    assert any(c.response_metadata.get("finish_reason") == "length" for c in streamed)

    with pytest.raises(openai.BadRequestError, match="tools"):
        chat.bind_tools([{"type": "function", "function": TOOL["function"]}]).invoke(FILTER_QUESTION)
    assert len(api.store.list_conversations(owner=api.key_ids["langchain"])) == 3
