"""The running server, driven by the official ``openai`` client, unchanged: replies, the
``supportloop`` extra field with citations, conversations continued by id, and the log."""

from __future__ import annotations

import openai
import pytest

from tests.deploy.conftest import FILTER_ANSWER, FILTER_QUESTION


def test_non_streaming_reply_citations_and_logged_turn(api) -> None:
    api.generator.enqueue(FILTER_ANSWER)
    client = api.openai(api.customer("shop"))
    raw = client.chat.completions.with_raw_response.create(
        model="production", messages=[{"role": "user", "content": FILTER_QUESTION}]
    )
    response = raw.parse()
    assert response.object == "chat.completion" and response.model == "production"
    assert response.choices[0].message.role == "assistant"
    assert response.choices[0].message.content == FILTER_ANSWER
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.completion_tokens > 0 and response.usage.prompt_tokens > 0

    extra = response.model_extra["supportloop"]
    assert [c["doc_id"] for c in extra["citations"]] == ["filters"]
    assert extra["citations"][0]["source"] == "filters.md" and extra["citations"][0]["index"] == 1
    assert extra["escalated"] is False and extra["refused"] is False
    cid = extra["conversation_id"]
    assert raw.headers["x-conversation-id"] == cid

    conversation = api.store.get_conversation(cid)
    assert (conversation.owner, conversation.channel) == (api.key_ids["shop"], "api")
    customer, agent = conversation.turns
    assert (customer.role, customer.text) == ("customer", FILTER_QUESTION)
    assert (agent.role, agent.text, agent.id) == ("agent", FILTER_ANSWER, extra["turn_id"])
    assert agent.citations[0].doc_id == "filters" and agent.model_version == "scripted"


def test_streaming_reply_ends_with_citations_usage_and_done(api) -> None:
    answer = (
        FILTER_ANSWER + " The replacement part is HF-500 and it costs $39 in our store, shipped free to you."
    )
    api.generator.enqueue(answer)
    client = api.openai(api.customer("shop"))
    chunks = list(
        client.chat.completions.create(
            model="production",
            messages=[{"role": "user", "content": FILTER_QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # really streamed
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert final.choices[0].finish_reason == "stop"
    extra = final.model_extra["supportloop"]
    assert [c["doc_id"] for c in extra["citations"]] == ["filters"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    turns = api.store.turns(extra["conversation_id"])
    assert [t.role for t in turns] == ["customer", "agent"]
    assert turns[1].text == text and turns[1].id == extra["turn_id"]


def test_conversation_continues_by_body_field_or_header(api) -> None:
    client = api.openai(api.customer("shop"))
    first = client.chat.completions.create(
        model="production", messages=[{"role": "user", "content": FILTER_QUESTION}]
    )
    cid = first.model_extra["supportloop"]["conversation_id"]
    second = client.chat.completions.create(
        model="production",
        messages=[{"role": "user", "content": "And how long is the warranty?"}],
        extra_body={"conversation_id": cid},
    )
    third = client.chat.completions.create(
        model="production",
        messages=[{"role": "user", "content": "Does it cover the motor?"}],
        extra_headers={"X-Conversation-Id": cid},
    )
    assert second.model_extra["supportloop"]["conversation_id"] == cid
    assert third.model_extra["supportloop"]["conversation_id"] == cid
    turns = api.store.turns(cid)
    assert [t.role for t in turns] == ["customer", "agent"] * 3
    assert turns[2].text == "And how long is the warranty?"
    # The history the model saw came from the log, not from the (stateless) request.
    assert FILTER_QUESTION in " ".join(m["content"] for m in api.generator.prompts[-1])

    with pytest.raises(openai.BadRequestError, match="differ"):
        client.chat.completions.create(
            model="production",
            messages=[{"role": "user", "content": "hello?"}],
            extra_body={"conversation_id": cid},
            extra_headers={"X-Conversation-Id": "another"},
        )


def test_client_history_of_a_new_conversation_is_logged_before_the_answer(api) -> None:
    client = api.openai(api.customer("shop"))
    response = client.chat.completions.create(
        model="production",
        messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "Hi, I have an Aero purifier."},
            {"role": "assistant", "content": "Hello! How can I help with your Aero?"},
            {"role": "user", "content": [{"type": "text", "text": FILTER_QUESTION}]},
        ],
    )
    turns = api.store.turns(response.model_extra["supportloop"]["conversation_id"])
    assert [t.role for t in turns] == ["system", "customer", "agent", "customer", "agent"]
    assert turns[1].metadata == {"source": "request_history"} and turns[3].text == FILTER_QUESTION
    prompt = api.generator.prompts[-1]
    assert "Hi, I have an Aero purifier." in " ".join(m["content"] for m in prompt)
    assert "pirate" not in " ".join(m["content"] for m in prompt)  # the persona is the config's


def test_models_are_registry_versions_and_unknown_ones_are_404(api) -> None:
    client = api.openai(api.customer("shop"))
    assert {"production", "base"} <= {m.id for m in client.models.list()}
    assert client.models.retrieve("base").id == "base"
    reply = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": FILTER_QUESTION}]
    )
    assert reply.model == "base"
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": FILTER_QUESTION}]
        )
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"


def test_feedback_on_own_turn_is_stored(api) -> None:
    secret = api.customer("shop")
    reply = api.openai(secret).chat.completions.create(
        model="production", messages=[{"role": "user", "content": FILTER_QUESTION}]
    )
    turn_id = reply.model_extra["supportloop"]["turn_id"]
    with api.http(secret) as http:
        answer = http.post(
            "/v1/feedback", json={"turn_id": turn_id, "thumbs": 1, "rating": 5, "comment": "great"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["object"] == "feedback" and answer.json()["rating"] == 5
        bad = http.post("/v1/feedback", json={"turn_id": turn_id, "rating": 9})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "rating"
        staff_only = http.post("/v1/feedback", json={"turn_id": turn_id, "mark_for_training": True})
        assert staff_only.status_code == 403
    (saved,) = api.store.feedback_for_turn(turn_id)
    assert (saved.thumbs, saved.rating, saved.comment, saved.reviewer) == (1, 5, "great", None)


def test_conversation_read_endpoints(api) -> None:
    secret = api.customer("shop")
    reply = api.openai(secret).chat.completions.create(
        model="production", messages=[{"role": "user", "content": FILTER_QUESTION}]
    )
    cid = reply.model_extra["supportloop"]["conversation_id"]
    with api.http(secret) as http:
        listed = http.get("/v1/conversations").json()
        assert listed["object"] == "list" and [c["id"] for c in listed["data"]] == [cid]
        one = http.get(f"/v1/conversations/{cid}").json()
    assert one["object"] == "conversation" and one["id"] == cid
    assert [t["role"] for t in one["turns"]] == ["customer", "agent"]
    assert set(one["turns"][1]) == {"id", "role", "text", "created_at", "citations"}  # no internals
    with api.http(api.admin_key) as http:
        full = http.get(f"/v1/conversations/{cid}").json()
    assert full["turns"][1]["metadata"]["passages"][0]["doc_id"] == "filters"


def test_a_streamed_hand_off_arrives_as_text_and_flags_the_escalation(api) -> None:
    client = api.openai(api.customer("shop"))
    chunks = list(
        client.chat.completions.create(
            model="production",
            messages=[{"role": "user", "content": "I want to talk to a human, please."}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    extra = next(c for c in chunks if c.choices and c.choices[0].finish_reason).model_extra["supportloop"]
    assert extra["escalated"] is True and extra["escalation_reason"] == "customer_request"
    assert "support team" in text
    assert api.store.get_conversation(extra["conversation_id"]).status == "escalated"


def test_the_readme_quick_start_runs_against_a_real_server(api, capsys) -> None:
    import re

    from tests.conftest import REPO

    readme = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    block = block.replace("http://127.0.0.1:8000/v1", f"{api.url}/v1").replace(
        "sl-cust-...", api.customer("docs")
    )
    api.generator.enqueue(FILTER_ANSWER)
    exec(compile(block, "deploy/README.md", "exec"), {})
    first, follow_up = capsys.readouterr().out.split("\n", 1)
    assert first == FILTER_ANSWER
    assert "support team" in follow_up  # the keyword test knowledge base knows no prices: a hand-off
    (conversation,) = api.store.list_conversations(owner=api.key_ids["docs"])
    assert conversation.turn_count == 4


def test_feedback_takes_a_reason_and_personal_data_redacts_the_turn(api) -> None:
    secret = api.customer("shop")
    reply = api.openai(secret).chat.completions.create(
        model="production", messages=[{"role": "user", "content": FILTER_QUESTION}]
    )
    turn_id = reply.model_extra["supportloop"]["turn_id"]
    with api.http(secret) as http:
        bad = http.post("/v1/feedback", json={"turn_id": turn_id, "thumbs": -1, "reason": "boring"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "reason"
        assert api.store.feedback_for_turn(turn_id) == []
        ok = http.post("/v1/feedback", json={"turn_id": turn_id, "thumbs": -1, "reason": "personal_data"})
        assert ok.status_code == 200, ok.text
    (saved,) = api.store.feedback_for_turn(turn_id)
    assert saved.labels == ("reason:personal_data",)
    assert api.store.get_turn(turn_id).text == "[redacted: personal data]"
