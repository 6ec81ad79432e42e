"""``DELETE /v1/admin/conversations/{id}``: an admin erases a customer's conversation over the API
(the same store call as ``supportloop logs erase``), with the validation of the other routes."""

from __future__ import annotations

from tests.deploy.conftest import FILTER_QUESTION


def _conversation(api, secret: str, cid: str) -> str:
    answer = api.openai(secret).chat.completions.create(
        model="production",
        messages=[{"role": "user", "content": FILTER_QUESTION}],
        extra_body={"conversation_id": cid},
    )
    return answer.choices[0].message.content


def test_admin_erases_a_conversation_and_the_answer_says_what_was_removed(api) -> None:
    shop = api.customer("shop")
    _conversation(api, shop, "erase-me")
    _conversation(api, shop, "keep-me")
    with api.http(api.admin_key) as http:
        answer = http.delete("/v1/admin/conversations/erase-me")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["object"] == "erasure" and body["turns"] == 2 and body["already"] is False
        assert "erase-me" not in answer.text  # the record keeps only the id's hash
        assert http.get("/v1/conversations/erase-me").status_code == 404
        assert http.get("/v1/conversations/keep-me").status_code == 200
        assert http.delete("/v1/admin/conversations/erase-me").json()["already"] is True
        assert http.delete("/v1/admin/conversations/nobody").status_code == 404
    assert len(api.store.erasures()) == 1


def test_erasure_refuses_customer_keys_and_bad_ids_and_writes_nothing(api) -> None:
    shop = api.customer("shop")
    _conversation(api, shop, "c1")
    with api.http(shop) as http:
        refused = http.delete("/v1/admin/conversations/c1")
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    with api.http(api.admin_key) as http:
        bad = http.delete("/v1/admin/conversations/bad%20id!")
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "conversation_id"
    assert api.store.erasures() == [] and len(api.store.get_conversation("c1").turns) == 2
