"""deploy's public API is explicit and pinned, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import deploy


def test_deploy_exports() -> None:
    assert deploy.__all__ == sorted(
        [
            "AgentPool",
            "ApiError",
            "BatchingGenerator",
            "Metrics",
            "RateLimiter",
            "ServerSettings",
            "app_from_env",
            "create_app",
            "load_settings",
        ]
    )
    for name in deploy.__all__:
        assert getattr(deploy, name) is not None


def test_the_cli_module_imports_no_web_or_ml_library() -> None:
    code = "import sys, deploy.cli; print(sorted(m for m in ('fastapi', 'uvicorn', 'torch', 'openai') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_deploy_server_still_exports_what_moved_out() -> None:
    from deploy import dependencies, middleware, server, services

    assert server.create_app is deploy.create_app and server.app_from_env is deploy.app_from_env
    assert server.AgentPool is services.AgentPool is deploy.AgentPool
    for name in ("AgentFactory", "ConversationLocks", "KeyCache", "Service", "default_agent_factory"):
        assert getattr(server, name) is getattr(services, name)
    assert (server.authenticate, server.require_admin) == (
        dependencies.authenticate,
        dependencies.require_admin,
    )
    assert (server.BodyLimit, server.RecordMetrics) == (middleware.BodyLimit, middleware.RecordMetrics)
    assert sorted(server.__all__) == server.__all__
