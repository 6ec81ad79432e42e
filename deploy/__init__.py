"""supportloop's HTTP API and deployment: an OpenAI-compatible service over the ``Agent``.

Public API (imported lazily so that ``import deploy`` and ``supportloop --help`` stay fast)::

    from deploy import create_app, load_settings
    app = create_app()                      # the configured agent, store and limits
    app = create_app(agent_factory=lambda model: my_agent, store=my_store, config=my_config)

``supportloop serve`` runs it under uvicorn; containers, compose, vLLM, accelerate and Kubernetes
files live beside this package (see ``deploy/README.md``). Nothing in supportloop imports
``deploy``: it is a leaf that depends on ``agent`` (and, like every package, on ``knowledge.lazy``
for its lazy exports).
"""

from __future__ import annotations

from knowledge.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
