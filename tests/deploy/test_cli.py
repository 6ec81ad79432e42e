"""``supportloop keys`` and ``supportloop serve``: the secret on the last line, and a real
server process (two workers) that answers with a key made by the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.errors import ConfigError
from agent.store import LogStore
from tests.postgres_fixture import free_port


def _keys(*args: str):
    result = CliRunner().invoke(cli, ["keys", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_prints_the_secret_on_its_last_line_then_list_and_revoke(home: Path) -> None:
    secret = _keys("create", "--name", "web shop", "--scope", "customer").strip().splitlines()[-1]
    admin = _keys("create", "--name", "ops", "--scope", "admin").strip().splitlines()[-1]
    with LogStore(home=home) as store:
        key = store.verify_api_key(secret)
        assert key is not None and (key.name, key.scope) == ("web shop", "customer")
        assert store.verify_api_key(admin).scope == "admin"
    listed = json.loads(_keys("list", "--json"))
    assert {k["name"] for k in listed} == {"web shop", "ops"} and secret not in json.dumps(listed)
    assert "revoked" in _keys("revoke", key.id)
    with LogStore(home=home) as store:
        assert store.verify_api_key(secret) is None
    bad = CliRunner().invoke(cli, ["keys", "create", "--name", "x", "--scope", "root"])
    assert bad.exit_code != 0 and "customer" in bad.output


def test_serve_rejects_an_unknown_setting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTLOOP_API__RATE_LIMT", "5")
    result = CliRunner().invoke(cli, ["serve"])
    assert isinstance(result.exception, ConfigError) and "RATE_LIMT" in str(result.exception)


@pytest.mark.timeout(120)
def test_supportloop_serve_answers_with_a_key_from_the_command_line(home: Path) -> None:
    secret = _keys("create", "--name", "app", "--scope", "customer").strip().splitlines()[-1]
    port = free_port()
    env = {**os.environ, "SUPPORTLOOP_API__PRELOAD": "false", "SUPPORTLOOP_HOME": str(home)}
    command = [
        sys.executable,
        "-c",
        "from agent.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "supportloop serve did not come up"
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {secret}"}
        models = httpx.get(f"{url}/v1/models", headers=headers, timeout=10)
        assert models.status_code == 200 and models.json()["data"][0]["id"] == "production"
        assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 401
        assert httpx.get(f"{url}/readyz", timeout=10).json()["error"]["code"] == "loading"  # preload off
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}/v1 (2 worker(s)" in output
