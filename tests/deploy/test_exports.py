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
