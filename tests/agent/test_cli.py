import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import COMMANDS, cli, main

# The knowledge base is opened before the model loads, so a broken index fails these fast.
KNOWLEDGE_COMMANDS = [["search", "filter"], ["ask", "How often should I change the filter?"]]


def test_help_lists_command_groups_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "from agent.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'chromadb', 'langchain_core', 'sqlalchemy') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    for name in ("chat", "ask", "config", "logs", "eval"):
        assert f"  {name} " in out


def test_every_listed_command_imports() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    for name in listed:
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output, sub.exception)
    assert set(COMMANDS) >= listed - {"eval"}


def test_config_show_prints_effective_config(home: Path) -> None:
    Path("supportloop.yaml").write_text("persona:\n  company: Acme\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["persona"]["company"] == "Acme"
    assert data["home"] == str(home)


def test_library_errors_become_one_line(home: Path) -> None:
    Path("supportloop.yaml").write_text("nonsense: 1\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "config", "show"], capture_output=True, text=True, cwd=Path.cwd()
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "nonsense" in proc.stderr
    assert "Traceback" not in proc.stderr


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.lower().startswith("error: ")]


@pytest.mark.parametrize("command", KNOWLEDGE_COMMANDS, ids=lambda c: c[0])
def test_a_corrupted_knowledge_index_is_a_one_line_error(home: Path, command: list[str]) -> None:
    (home / "index").mkdir()
    (home / "index" / "chroma.sqlite3").write_bytes(b"not a database\n" * 512)
    proc = subprocess.run([sys.executable, "-m", "agent.cli", *command], capture_output=True, text=True)
    assert proc.returncode != 0
    (line,) = _error_lines(proc.stderr)
    assert f"cannot open the Chroma index at {home / 'index'}" in line


@pytest.mark.parametrize("command", KNOWLEDGE_COMMANDS, ids=lambda c: c[0])
def test_a_failing_chroma_call_is_a_one_line_error(
    home: Path, command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chromadb.api.models.Collection import Collection

    def fail(self: Collection) -> int:
        raise RuntimeError("disk I/O error\n  while reading the segment")

    monkeypatch.setattr(Collection, "count", fail)
    with pytest.raises(SystemExit) as exited:
        main(command)
    assert exited.value.code != 0
    (line,) = _error_lines(capsys.readouterr().err)
    where = f"collection 'supportloop' at {home / 'index'}"
    assert line.endswith(f"cannot read {where}: disk I/O error while reading the segment")


def test_logs_export_redacts_pii_with_the_compile_policy(home: Path, tmp_path: Path) -> None:
    from agent.config import load_config
    from agent.store import LogStore

    with LogStore.from_config(load_config()) as store:
        store.create_conversation("c1", owner="maria.garcia@example.com")
        store.add_turn("c1", "customer", "Hi, I'm John Smith, card 4111 1111 1111 1111 cvv 123")
        answer = store.add_turn("c1", "agent", "Thanks John, the filter ships to SW1A 1AA.")
        store.add_feedback(answer.id or "", thumbs=-1, correction="Thanks Mr. Smith, it ships to SW1A 1AA.")
        store.escalate("c1", "Customer Maria Garcia, DOB 14/03/1985, asked for a manager")
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(cli, ["logs", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    # Random ids and microsecond timestamps may hold "123" or "1985" by chance: read past them.
    words = re.sub(r'"(?:\w*id|\w*_at)": "[^"]*"', "", text)
    for secret in ("John", "Smith", "4111", "123", "SW1A", "Maria", "Garcia", "1985", "maria.garcia@"):
        assert secret not in words, secret
    (row,) = [json.loads(line) for line in text.splitlines()]
    assert [t["text"] for t in row["turns"]] == [
        "Hi, I'm [PERSON], card [CARD] cvv [CVV]",
        "Thanks [PERSON], the filter ships to [POSTCODE].",
    ]
    assert row["owner"] == "[EMAIL]"
    assert row["escalations"][0]["reason"] == "Customer [PERSON], DOB [DOB], asked for a manager"
