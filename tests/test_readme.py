"""What the README shows is run here, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_names_the_two_commands_and_they_exist_in_the_makefile() -> None:
    assert "make run" in README and "make test" in README
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_cli_table_matches_the_cli() -> None:
    from click.testing import CliRunner

    from agent.cli import cli

    listed = CliRunner().invoke(cli, ["--help"]).output
    for command in re.findall(r"^\| `supportloop (\w+)", README, flags=re.M):
        assert f"  {command} " in listed, command


@pytest.mark.slow
def test_readme_python_snippet_runs_on_the_real_default_model(
    home: Path, default_model_dir: Path, capsys
) -> None:
    (block,) = python_blocks()
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip()
    from agent.store import LogStore

    store = LogStore(home=home)
    turns = store.turns("order-1042")
    assert [t.role for t in turns] == ["customer", "agent", "customer", "agent"]
    assert store.feedback_for_turn(turns[1].id)[0].rating == 5
