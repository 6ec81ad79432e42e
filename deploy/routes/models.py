"""``GET /v1/models``, ``GET /v1/models/{id}``: the registry's versions in the OpenAI list shape.

The first row is always ``production``, with the version it serves now (``supportloop.serves``);
every version follows, the production one flagged. Read from the registry on each request, so a
promotion shows without a restart.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from deploy.dependencies import authenticate, get_service
from deploy.errors import ApiError

if TYPE_CHECKING:
    from agent.store import ApiKey
    from deploy.services import Service

router = APIRouter()


@router.get("/v1/models")
async def models(request: Request, key: ApiKey = Depends(authenticate)) -> Any:
    return {"object": "list", "data": await run_in_threadpool(model_list, get_service(request))}


@router.get("/v1/models/{model_id}")
async def model(model_id: str, request: Request, key: ApiKey = Depends(authenticate)) -> Any:
    for row in await run_in_threadpool(model_list, get_service(request)):
        if row["id"] == model_id:
            return row
    raise ApiError(404, f"the model {model_id!r} does not exist", param="model", code="model_not_found")


def model_list(service: Service) -> list[dict[str, Any]]:
    """The rows of ``GET /v1/models`` (blocking: reads the registry)."""
    from agent.models import ModelRegistry

    registry = ModelRegistry(Path(service.config.home))
    production = registry.production_name()
    rows = [_model_row("production", 0, production=True, serves=production)]
    for version in registry.list():
        rows.append(
            _model_row(version.name, _epoch(version.created_at), production=version.name == production)
        )
    return rows


def _model_row(name: str, created: int, *, production: bool, serves: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": name, "object": "model", "created": created, "owned_by": "supportloop"}
    row["supportloop"] = {"production": production, **({"serves": serves} if serves else {})}
    return row


def _epoch(timestamp: str) -> int:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp())
    except ValueError:
        return 0
