import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from agent.cli import COMMANDS, cli


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
