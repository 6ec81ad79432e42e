"""API keys: no key or a bad one is 401; a customer-app key sees, continues and rates only its
own conversations (another key's is 404, as if missing); admin endpoints refuse it (403)."""

from __future__ import annotations

import openai
import pytest

from tests.deploy.conftest import FILTER_QUESTION

ADMIN_ENDPOINTS = [
    ("GET", "/v1/admin/keys", None),
    ("POST", "/v1/admin/keys", {"name": "sneaky", "scope": "admin"}),
    ("DELETE", "/v1/admin/keys/whatever", None),
    ("GET", "/v1/admin/kpis", None),
]


def _ask(api, secret: str, **kwargs):
    return api.openai(secret).chat.completions.create(
        model="production", messages=[{"role": "user", "content": FILTER_QUESTION}], **kwargs
    )


def test_no_key_or_a_bad_key_is_401_in_the_openai_error_shape(api) -> None:
    with api.http() as http:
        for method, path in [
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/conversations"),
            ("GET", "/v1/models"),
        ]:
            answer = http.request(method, path, json={})
            assert answer.status_code == 401, path
            error = answer.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError) as caught:
        _ask(api, "sl-cust-not-a-real-key")
    assert caught.value.body["code"] == "invalid_api_key"
    assert api.store.counts()["conversations"] == 0


def test_a_customer_key_cannot_read_continue_or_rate_another_keys_conversation(api) -> None:
    alice, mallory = api.customer("alice-app"), api.customer("mallory-app")
    reply = _ask(api, alice)
    cid, turn_id = (
        reply.model_extra["supportloop"]["conversation_id"],
        reply.model_extra["supportloop"]["turn_id"],
    )
    with api.http(mallory) as http:
        assert http.get(f"/v1/conversations/{cid}").status_code == 404
        assert http.get("/v1/conversations").json()["data"] == []
        assert http.post("/v1/feedback", json={"turn_id": turn_id, "thumbs": -1}).status_code == 404
    with pytest.raises(openai.NotFoundError):
        _ask(api, mallory, extra_body={"conversation_id": cid})
    with pytest.raises(openai.NotFoundError):
        _ask(api, mallory, stream=True, extra_headers={"X-Conversation-Id": cid})
    assert len(api.store.turns(cid)) == 2  # nothing was logged into alice's conversation
    assert api.store.feedback_for_turn(turn_id) == []
    with api.http(alice) as http:
        assert http.get(f"/v1/conversations/{cid}").status_code == 200
    with api.http(api.admin_key) as http:  # the admin sees everything
        assert http.get(f"/v1/conversations/{cid}").status_code == 200
        assert [c["id"] for c in http.get("/v1/conversations").json()["data"]] == [cid]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
def test_admin_endpoints_refuse_customer_keys(api, method: str, path: str, body) -> None:
    with api.http(api.customer("shop")) as http:
        answer = http.request(method, path, json=body)
    assert answer.status_code == 403
    assert answer.json()["error"]["type"] == "permission_error"
    assert len(api.store.list_api_keys()) == 2  # ops + shop: nothing was created


def test_admin_creates_lists_and_revokes_keys(api) -> None:
    with api.http(api.admin_key) as http:
        created = http.post("/v1/admin/keys", json={"name": "mobile-app", "scope": "customer"})
        assert created.status_code == 201
        secret, key_id = created.json()["key"], created.json()["id"]
        listed = http.get("/v1/admin/keys").json()["data"]
        assert {k["name"] for k in listed} == {"ops", "mobile-app"}
        assert all("key" not in k and "key_hash" not in k for k in listed)
        assert _ask(api, secret).choices[0].message.content
        kpis = http.get("/v1/admin/kpis").json()
        assert kpis["counts"]["conversations"] == 1 and kpis["data"][0]["agent_turns"] == 1
        assert http.delete(f"/v1/admin/keys/{key_id}").json()["revoked"] is True
        assert http.delete("/v1/admin/keys/nope").status_code == 404
    with pytest.raises(openai.AuthenticationError):
        _ask(api, secret)


def test_revocation_elsewhere_takes_effect_after_the_auth_cache(make_api) -> None:
    api = make_api(auth_cache_s=0.0)
    secret = api.customer("shop")
    _ask(api, secret)
    api.store.revoke_api_key(api.key_ids["shop"])  # e.g. `supportloop keys revoke` on another host
    with pytest.raises(openai.AuthenticationError):
        _ask(api, secret)
