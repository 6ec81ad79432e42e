"""The console session cookie route (``ui.session_cookie``) on a bare Starlette app: the cookie is
HttpOnly (Secure over HTTPS), a code works once, and bad requests set no cookie."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from ui import session_cookie
from ui.session_cookie import EXCHANGE_PATH, HEADER, SESSION_COOKIE, issue

HEADERS = {HEADER: "1"}


@pytest.fixture
def client() -> TestClient:
    return TestClient(Starlette(routes=session_cookie.routes()))


def test_a_code_sets_an_httponly_strict_cookie_once(client: TestClient) -> None:
    code = issue("tok-en_1", 3600)
    first = client.post(EXCHANGE_PATH, json={"code": code}, headers=HEADERS)
    assert first.status_code == 204
    header = first.headers["set-cookie"]
    assert header.startswith(f"{SESSION_COOKIE}=tok-en_1;")
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Max-Age=3600" in header
    assert "Secure" not in header  # plain HTTP
    again = client.post(EXCHANGE_PATH, json={"code": code}, headers=HEADERS)
    assert again.status_code == 400 and "set-cookie" not in again.headers


def test_secure_over_https_and_behind_a_tls_proxy() -> None:
    https = TestClient(Starlette(routes=session_cookie.routes()), base_url="https://testserver")
    response = https.post(EXCHANGE_PATH, json={"code": issue("t", 60)}, headers=HEADERS)
    assert "; Secure" in response.headers["set-cookie"]
    proxied = TestClient(Starlette(routes=session_cookie.routes()))
    forwarded = {**HEADERS, "X-Forwarded-Proto": "https"}
    response = proxied.post(EXCHANGE_PATH, json={"code": issue("t", 60)}, headers=forwarded)
    assert "; Secure" in response.headers["set-cookie"]


def test_sign_out_clears_the_cookie(client: TestClient) -> None:
    response = client.post(EXCHANGE_PATH, json={"code": issue("", 0)}, headers=HEADERS)
    assert response.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=; Path=/; Max-Age=0;")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"code": "never-issued"}, HEADERS),
        ({"nothing": 1}, HEADERS),
        (["not", "an", "object"], HEADERS),
        ({"code": "VALID"}, {}),  # no custom header: what a cross-site form post looks like
    ],
)
def test_bad_requests_set_no_cookie(client: TestClient, body: object, headers: dict[str, str]) -> None:
    if body == {"code": "VALID"}:
        body = {"code": issue("t", 60)}
    response = client.post(EXCHANGE_PATH, json=body, headers=headers)
    assert response.status_code in (400, 403) and "set-cookie" not in response.headers
    assert client.get(EXCHANGE_PATH).status_code == 405


def test_an_expired_code_sets_no_cookie(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code = issue("t", 60)
    real = session_cookie.time.monotonic
    monkeypatch.setattr(session_cookie.time, "monotonic", lambda: real() + session_cookie.CODE_TTL_S + 1)
    response = client.post(EXCHANGE_PATH, json={"code": code}, headers=HEADERS)
    assert response.status_code == 400 and "set-cookie" not in response.headers


def test_the_page_script_carries_the_code_never_the_token() -> None:
    code = issue("secret-token", 60)
    script = session_cookie.exchange_script(code)
    assert code in script and "secret-token" not in script and "document.cookie" not in script
    with pytest.raises(ValueError):
        issue("a';alert(1);'", 60)
