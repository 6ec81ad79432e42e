"""The HTTP API's routes, one ``APIRouter`` per area, included by ``create_app`` in the order of
``ROUTERS`` (which is also the order of the OpenAPI paths)::

    chat.py           POST /v1/chat/completions (streamed or not)
    conversations.py  POST /v1/feedback, GET /v1/conversations, GET /v1/conversations/{id}
    models.py         GET /v1/models, GET /v1/models/{id}
    admin.py          /v1/admin/keys (list, create, revoke), GET /v1/admin/kpis
    ops.py            GET /healthz, /readyz, /metrics

Every router keeps the event loop free: store and registry look-ups run on anyio's thread pool
(``run_in_threadpool``), agent turns on the service's turn pool (``deploy/services.py``). The
checks every route shares (key, rate limit, body) are in ``deploy/dependencies.py``.
"""

from __future__ import annotations

from deploy.routes import admin, chat, conversations, models, ops

ROUTERS = (chat.router, conversations.router, models.router, admin.router, ops.router)
