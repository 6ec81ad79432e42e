"""Admin endpoints, each behind ``require_admin`` (403 for a customer key): API keys
(``GET``/``POST /v1/admin/keys``, ``DELETE /v1/admin/keys/{id}``), ``GET /v1/admin/kpis`` and
``DELETE /v1/admin/conversations/{id}`` (erasure, ``agent.store.erasure``).

Invariants: a key's secret is in the answer that creates it and nowhere else (a listed key shows
its prefix); a revoked key is refused by this process from the next request on (its key cache is
cleared), by other worker processes once their cache entry expires (``auth_cache_s``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from deploy import schemas
from deploy.dependencies import get_service, parse_body, require_admin, valid_id
from deploy.errors import ApiError

if TYPE_CHECKING:
    from agent.store import ApiKey

router = APIRouter()
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"


@router.get("/v1/admin/keys")
async def list_keys(request: Request, key: ApiKey = Depends(require_admin)) -> Any:
    keys = await run_in_threadpool(get_service(request).store.list_api_keys)
    return {"object": "list", "data": [_key_row(k) for k in keys]}


@router.post("/v1/admin/keys", status_code=201)
async def create_key(request: Request, key: ApiKey = Depends(require_admin)) -> Any:
    body = await parse_body(request, schemas.KeyRequest)
    created, secret = await run_in_threadpool(
        get_service(request).store.create_api_key, body.name, body.scope
    )
    return JSONResponse({**_key_row(created), "key": secret}, status_code=201)


@router.delete("/v1/admin/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, key: ApiKey = Depends(require_admin)) -> Any:
    service = get_service(request)
    valid_id(key_id, "key_id")
    await run_in_threadpool(service.store.revoke_api_key, key_id)
    service.keys.clear()
    return {"object": "api_key", "id": key_id, "revoked": True}


@router.delete("/v1/admin/conversations/{conversation_id}")
async def erase_conversation(
    conversation_id: str, request: Request, key: ApiKey = Depends(require_admin)
) -> Any:
    """Erase a customer's conversation (and what was derived from it); 404 if unknown."""
    service = get_service(request)
    valid_id(conversation_id, "conversation_id")
    async with service.locks.hold(conversation_id):  # never mid-turn: the turn would re-create it
        erasure = await run_in_threadpool(
            service.store.erase_conversation, conversation_id, erased_by=f"api:{key.name}"
        )
    return {"object": "erasure", **erasure.to_dict()}


@router.get("/v1/admin/kpis")
async def kpis(
    request: Request,
    key: ApiKey = Depends(require_admin),
    since: str | None = Query(None, pattern=TIMESTAMP, description="ISO 8601 date and time"),
    until: str | None = Query(None, pattern=TIMESTAMP, description="ISO 8601 date and time"),
    by: str = Query("model_version"),
) -> Any:
    store = get_service(request).store
    start, end = _timestamp(since, "since"), _timestamp(until, "until")
    rows = await run_in_threadpool(lambda: store.kpis(since=start, until=end, by=by))
    return {"object": "list", "data": rows, "counts": await run_in_threadpool(store.counts)}


def _timestamp(value: str | None, param: str) -> datetime | None:
    """An ISO 8601 timestamp (a number is not one, though pydantic would read it as epoch seconds)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, f"{param} is not a valid date and time", param=param, code="invalid_request"
        ) from None


def _key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "object": "api_key",
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "revoked": key.revoked,
        "created_at": key.created_at.isoformat() if key.created_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }
