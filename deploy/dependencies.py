"""What every route needs before its own work: the app's ``Service``, the caller's API key and
the parsed request body.

Invariants:

* **Order of checks** (after the body size, ``deploy/middleware.py``): key (401) -> rate limit
  (429, per key) -> request shape (400, ``parse_body``). Admin endpoints answer 403 to customer
  keys (``require_admin``).
* A bad body is a 400 in the OpenAI error shape that names the first bad field in ``param``;
  so is an id in the path that breaks ``agent.validation``'s identifier rule (``valid_id``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from agent import validation
from agent.errors import InputError
from deploy.errors import ApiError
from deploy.ratelimit import retry_after_header

if TYPE_CHECKING:
    from agent.store import ApiKey
    from deploy.services import Service

_M = TypeVar("_M", bound=BaseModel)


def get_service(request: Request) -> Service:
    """The app's ``Service`` (``app.state.service``, set by ``create_app``)."""
    service: Service = request.app.state.service
    return service


async def authenticate(request: Request) -> ApiKey:
    """The request's API key (``Authorization: Bearer KEY``), after the per-key rate limit."""
    service = get_service(request)
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(
            401,
            "no API key: send 'Authorization: Bearer <key>' (an admin creates keys with "
            "`supportloop keys create --name NAME --scope customer`)",
            code="missing_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="supportloop"'},
        )
    key = await run_in_threadpool(service.keys.verify, secret)
    if key is None:
        raise ApiError(
            401,
            "the API key is invalid or revoked",
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="supportloop", error="invalid_token"'},
        )
    wait = service.limiter.acquire(key.id)
    if wait is not None:
        service.metrics.inc("rate_limited_total")
        per_minute = service.settings.rate_limit_per_minute
        raise ApiError(
            429,
            f"rate limit reached for this key ({per_minute:g} requests per minute); retry in {wait:.1f} s",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return key


async def require_admin(key: ApiKey = Depends(authenticate)) -> ApiKey:
    if key.scope != "admin":
        raise ApiError(403, "this endpoint needs an admin key", code="admin_key_required")
    return key


async def parse_body(request: Request, model: type[_M]) -> _M:
    """The JSON body as ``model`` (an empty body is ``{}``); a bad one is a 400 naming its field."""
    body = await request.body()
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first['msg']}" if where else first["msg"]
        raise ApiError(
            400, f"invalid request: {message}", param=where or None, code="invalid_request"
        ) from exc


def valid_id(value: str, param: str) -> str:
    """``value`` if it is an identifier (``agent.validation``); else a 400 naming ``param``."""
    try:
        return validation.check_identifier(value, param)
    except InputError as exc:
        raise ApiError(400, str(exc), param=param, code="invalid_id") from None
