"""``supportloop users`` and ``supportloop ui``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.store import LogStore


def test_users_create_from_stdin_list_and_sign_in(home: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli, ["users", "create", "ada", "--role", "admin", "--password-stdin"], input="s3cret-pass\n"
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli, ["users", "list", "--json"])
    assert json.loads(listed.output.strip())["role"] == "admin"
    with LogStore(home=home) as store:
        assert store.authenticate("ada", "s3cret-pass") is not None
        assert store.authenticate("ada", "wrong") is None


def test_users_create_prompts_twice_and_refuses_bad_input(home: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli, ["users", "create", "riley", "--role", "reviewer"], input="long-password\nlong-password\n"
    )
    assert made.exit_code == 0, made.output
    again = runner.invoke(
        cli, ["users", "create", "riley", "--role", "reviewer", "--password-stdin"], input="x" * 9
    )
    assert again.exit_code != 0 and "already exists" in str(again.exception)
    short = runner.invoke(
        cli, ["users", "create", "sam", "--role", "reviewer", "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "at least 8 characters" in str(short.exception)
    bad_role = runner.invoke(cli, ["users", "create", "sam", "--role", "owner", "--password-stdin"])
    assert bad_role.exit_code == 2


def test_ui_runs_streamlit_on_the_app(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: calls.append((path, argv, env)))
    Path("custom.yaml").write_text("persona: {company: Acme}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", "custom.yaml", "ui", "--port", "8611"])
    assert result.exit_code == 0, result.output
    [(_, argv, env)] = calls
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("ui/server.py")
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags["--server.port"] == "8611" and flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false" and flags["--server.address"] == "127.0.0.1"
    assert env["SUPPORTLOOP_CONFIG"] == str(Path("custom.yaml").resolve())
    assert "users create NAME --role admin" in result.output  # no account yet: say how


def test_importing_ui_cli_is_cheap() -> None:
    code = "import ui.cli, sys; print([m for m in ('streamlit', 'sqlalchemy', 'torch') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ui_help(home: Any) -> None:
    result = CliRunner().invoke(cli, ["ui", "--help"])
    assert result.exit_code == 0 and "--port" in result.output
