"""The console session cookie, set by the server as ``HttpOnly`` so no script can read it.

Streamlit pages talk over a websocket and cannot set cookies, and a cookie written by page script
(``document.cookie``) is readable by any script on the page. So the page never sees the session
token: on sign-in (and sign-out) the Streamlit script registers the token here under a one-time
code and the page posts that code to ``EXCHANGE_PATH``, a route of ours on Streamlit's own server
(``ui/server.py``), whose response sets the cookie: ``HttpOnly; SameSite=Strict; Path=/``, and
``Secure`` when the request came over HTTPS (directly or through a proxy's
``X-Forwarded-Proto``). Streamlit still reads the cookie from the websocket handshake
(``st.context.cookies``), so a reload or a new tab finds the sign-in.

Invariants: a code is redeemed at most once and within ``CODE_TTL_S``; an unknown, used or
expired code, a request without the ``X-Supportloop-Session`` header (which a cross-site form
cannot send) or anything but a POST changes no cookie. Codes live in this process's memory:
Streamlit serves every session of an app from one process.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Any

SESSION_COOKIE = "supportloop_console"
EXCHANGE_PATH = "/_supportloop/console-session"
HEADER = "X-Supportloop-Session"
CODE_TTL_S = 60.0

_pending: dict[str, tuple[str, int, float]] = {}  # code -> (token, cookie max-age, deadline)
_lock = threading.Lock()


def issue(token: str, max_age: int) -> str:
    """A one-time code that sets the cookie to ``token`` for ``max_age`` s ("" and 0: clear it)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", token):  # token_urlsafe; never header or script text
        raise ValueError("unexpected session token")
    code = secrets.token_urlsafe(24)
    now = time.monotonic()
    with _lock:
        for stale in [c for c, (_, _, deadline) in _pending.items() if deadline <= now]:
            del _pending[stale]
        _pending[code] = (token, max(0, int(max_age)), now + CODE_TTL_S)
    return code


def redeem(code: str) -> tuple[str, int] | None:
    """The (token, max-age) a code stands for, once; None for an unknown, used or expired code."""
    with _lock:
        entry = _pending.pop(code, None)
    if entry is None or entry[2] <= time.monotonic():
        return None
    return entry[0], entry[1]


def set_cookie_header(token: str, max_age: int, *, secure: bool) -> str:
    value = f"{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return value + ("; Secure" if secure else "")


def exchange_script(code: str) -> str:
    """The page script that redeems ``code`` (it sees the code, never the token)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", code):
        raise ValueError("unexpected code")
    return (
        f"<script>fetch('{EXCHANGE_PATH}', {{method: 'POST', credentials: 'same-origin', "
        f"headers: {{'{HEADER}': '1', 'Content-Type': 'application/json'}}, "
        f"body: JSON.stringify({{code: '{code}'}})}});</script>"
    )


async def exchange(request: Any) -> Any:
    """POST ``{"code": ...}`` -> 204 with the ``Set-Cookie``; 400/403 and no cookie otherwise."""
    from starlette.responses import JSONResponse, Response

    if request.headers.get(HEADER) != "1":
        return JSONResponse({"error": f"missing {HEADER} header"}, status_code=403)
    try:
        body = await request.json()
        code = body["code"] if isinstance(body, dict) else None
    except (ValueError, KeyError):
        code = None
    found = redeem(code) if isinstance(code, str) else None
    if found is None:
        return JSONResponse({"error": "unknown, used or expired code"}, status_code=400)
    https = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.headers.append("Set-Cookie", set_cookie_header(*found, secure=https))
    return response


def routes() -> list[Any]:
    from starlette.routing import Route

    return [Route(EXCHANGE_PATH, exchange, methods=["POST"])]
