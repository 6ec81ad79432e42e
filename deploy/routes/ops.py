"""Operations: ``GET /healthz`` (liveness), ``GET /readyz`` (readiness), ``GET /metrics``
(Prometheus text format).

``/healthz`` and ``/readyz`` need no key (probes carry none); ``/metrics`` needs an admin key when
``metrics_require_key`` is set. ``/readyz`` is ready once the production model is loaded and the
log store can write (a write probe rolled back, and free disk for SQLite:
``LogStore.check_writable``); otherwise a 503 whose ``error.code`` says why
(``store_unavailable``, ``model_load_failed`` or ``loading``), with no URL or path in it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from deploy.dependencies import authenticate, get_service, require_admin
from deploy.errors import error_body, public_message
from deploy.metrics import CONTENT_TYPE

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Any:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Any:
    service = get_service(request)
    store_problem = await run_in_threadpool(service.store_problem)
    if service.pool.ready and store_problem is None:
        return {"status": "ready", "models_loaded": len(service.pool.loaded())}
    if store_problem is not None:
        reason, code = store_problem, "store_unavailable"
    elif service.pool.load_error:
        reason, code = (
            f"loading the production model failed: {public_message(service.pool.load_error)}",
            "model_load_failed",
        )
    else:
        reason, code = "the production model is still loading", "loading"
    return JSONResponse({"status": "unavailable", **error_body(503, reason, code=code)}, status_code=503)


@router.get("/metrics")
async def metrics(request: Request) -> Any:
    service = get_service(request)
    if service.settings.metrics_require_key:
        await require_admin(await authenticate(request))
    text = await run_in_threadpool(service.metrics.render)  # reads the workers' files
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
