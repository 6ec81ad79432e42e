"""``supportloop ingest`` reads only regular files inside what it was given: a symlink out of the
folder is skipped and reported (before issue 22 it was indexed, and ``search`` returned the
linked file), and a FIFO or device is "not a regular file", not "no such file"."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from knowledge import KnowledgeConfig
from knowledge.cli import ingest, search
from knowledge.loaders import discover
from tests.knowledge.conftest import HashingEmbeddings

SECRET = "zq-root-credential-7731"

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symlinks and FIFOs (POSIX)")


class State:
    def __init__(self, index: Path):
        self.index = index

    def knowledge_config(self) -> KnowledgeConfig:
        return KnowledgeConfig(persist_dir=self.index)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("knowledge.embeddings.load_embeddings", lambda *a, **kw: HashingEmbeddings())
    state = State(tmp_path / "index")

    def invoke(command, *args: object):
        return CliRunner().invoke(command, [str(a) for a in args], obj=state, catch_exceptions=False)

    return invoke


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A folder with one real document, a symlink to a file outside it, a symlinked folder
    outside it, a link inside it, a dangling link and a FIFO, all with supported names."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd.md").write_text(f"# System\n\nroot password: {SECRET}\n", encoding="utf-8")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "filters.md").write_text("# Filters\n\nReplace the filter every 6 months.\n", encoding="utf-8")
    (folder / "leak.md").symlink_to(outside / "passwd.md")
    (folder / "outside-dir").symlink_to(outside, target_is_directory=True)
    (folder / "same.md").symlink_to("filters.md")
    (folder / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    os.mkfifo(folder / "pipe.md")
    return folder


def test_ingest_skips_and_reports_a_symlink_out_of_the_folder(run, docs: Path) -> None:
    result = run(ingest, docs, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["documents"]["added"] == 1 and report["documents"]["failed"] == 0
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert "outside" in skipped["leak.md"]
    assert "not a regular file" in skipped["pipe.md"]
    assert "broken symlink" in skipped["dangling.md"]
    found = run(search, SECRET, "--json")
    assert SECRET not in found.stdout
    plain = run(ingest, docs)
    assert "1 unchanged" in plain.output and "skipped: " in plain.output and "leak.md" in plain.output


def test_a_glob_does_not_follow_a_symlinked_folder_out(docs: Path) -> None:
    refs, failures = discover([f"{docs}/**/*.md"])
    assert all(SECRET not in ref.path.read_text(encoding="utf-8") for ref in refs)
    assert any(f.skipped and "passwd.md" in f.path for f in failures)


@pytest.mark.parametrize("special", ["fifo", "/dev/null"])
def test_a_special_file_given_directly_is_not_a_regular_file(run, docs: Path, special: str) -> None:
    path = docs / "pipe.md" if special == "fifo" else Path(special)
    result = run(ingest, path)
    assert result.exit_code == 1
    assert "not a regular file" in result.output and "no such file" not in result.output
    assert "Traceback" not in result.output
