"""supportloop's HTTP API and deployment: an OpenAI-compatible service over the ``Agent``.

Public API (imported lazily so that ``import deploy`` and ``supportloop --help`` stay fast)::

    from deploy import create_app, load_settings
    app = create_app()                      # the configured agent, store and limits
    app = create_app(agent_factory=lambda model: my_agent, store=my_store, config=my_config)

``supportloop serve`` runs it under uvicorn; containers, compose, vLLM, accelerate and Kubernetes
files live beside this package (see ``deploy/README.md``). Nothing in supportloop imports
``deploy``: it is a leaf that depends on ``agent`` only.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "deploy.server",
    "app_from_env": "deploy.server",
    "AgentPool": "deploy.services",
    "ServerSettings": "deploy.settings",
    "load_settings": "deploy.settings",
    "ApiError": "deploy.errors",
    "BatchingGenerator": "deploy.batching",
    "Metrics": "deploy.metrics",
    "RateLimiter": "deploy.ratelimit",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deploy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
