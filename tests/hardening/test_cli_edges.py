"""The command line at its edges: ``ask`` and ``chat`` refuse a bad question or conversation id
with one line and exit code 2 before the index or the model loads and before anything is
written; ``config show`` masks secrets. Each test failed on the code before issue 22 (the model
was loaded first and an empty conversation stored; the PostgreSQL password was printed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli, main

INVALID_UTF8 = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")  # what Python makes of such argv


@pytest.fixture
def nothing_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the agent (index, model, store) fails the test: refusals must come first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the agent was loaded before the input was checked")

    monkeypatch.setattr("agent.runtime.Agent.from_config", refuse)


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("question", "needle"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("x" * 2_001, "2,000"),
        ("nul \x00 inside", "NUL"),
        (INVALID_UTF8, "UTF-8"),
    ],
    ids=["empty", "whitespace", "too-long", "nul", "invalid-utf8"],
)
def test_ask_refuses_a_bad_question_before_loading_or_writing(
    home: Path, nothing_loads: None, capsys: pytest.CaptureFixture[str], question: str, needle: str
) -> None:
    err = _refused(capsys, ["ask", question])
    assert needle in err
    assert not (home / "supportloop.db").exists()
    assert not (home / "index").exists()


@pytest.mark.parametrize("command", ["ask", "chat"])
@pytest.mark.parametrize("bad", ["a b", "x\r\ny", "заказ", "a" * 129, "../etc"])
def test_a_bad_conversation_id_is_refused_before_loading(
    home: Path, nothing_loads: None, capsys: pytest.CaptureFixture[str], command: str, bad: str
) -> None:
    argv = [command, "--conversation-id", bad] + (["How do I reset it?"] if command == "ask" else [])
    err = _refused(capsys, argv)
    assert "--conversation-id" in err and bad not in err
    assert not (home / "supportloop.db").exists()


def test_ask_with_invalid_utf8_bytes_in_argv_is_one_line(home: Path) -> None:
    """The real path: bytes on the command line, decoded by Python, refused by ``ask``."""
    env = {**os.environ, "SUPPORTLOOP_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "ask", b"caf\xe9 \xff"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not (home / "supportloop.db").exists()


def test_config_show_masks_passwords_and_keys(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTLOOP_STORE_URL", "postgresql://user:s3cret-pw@db.internal/support")
    monkeypatch.setenv("SUPPORTLOOP_GENERATION__BASE_URL", "https://llm.internal/v1?api_key=sk-live-123")
    monkeypatch.setenv("SUPPORTLOOP_GUARDRAILS__SECRETS", '["canary-7781"]')
    shown = CliRunner().invoke(cli, ["config", "show"])
    as_json = CliRunner().invoke(cli, ["config", "show", "--json"])
    for result in (shown, as_json):
        assert result.exit_code == 0, result.output
        for secret in ("s3cret-pw", "sk-live-123", "canary-7781"):
            assert secret not in result.output
    data = json.loads(as_json.output)
    assert data["store_url"] == "postgresql://user:***@db.internal/support"
    assert data["database_url"] == "postgresql://user:***@db.internal/support"
    assert data["generation"]["base_url"] == "https://llm.internal/v1?api_key=***"
    assert data["generation"]["api_key_env"] == "OPENAI_API_KEY"  # a name, not a secret
    assert data["guardrails"]["secrets"] == ["***"]
