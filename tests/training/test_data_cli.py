"""``supportloop data compile`` through the real entry point (click's CliRunner)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from agent.cli import cli
from agent.errors import DataError
from training.data import load_rows


def run(*args: str):
    return CliRunner().invoke(cli, ["data", "compile", *args])


def write_conversations(path: Path, n: int = 12) -> Path:
    rows = [
        {
            "id": f"c{i}",
            "turns": [
                {"role": "customer", "text": f"Question {i}?"},
                {"role": "agent", "text": f"Answer {i}."},
            ],
            "thumbs": 1 if i % 2 else -1,
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_compile_a_small_file_prints_counts_and_the_manifest(home, tmp_path):
    out = tmp_path / "out"
    result = run(str(write_conversations(tmp_path / "c.jsonl")), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert "SFT" in result.output and str(out) in result.output
    manifest = json.loads(result.output.strip().splitlines()[-1])
    assert manifest["out_dir"] == str(out)
    counts = manifest["counts"]
    assert counts["kto"]["train"] + counts["kto"]["val"] == 12
    assert counts["sft"]["train"] + counts["sft"]["val"] == 6  # thumbs-down answers are not imitated
    assert len(load_rows(out / "kto_train.jsonl")) == counts["kto"]["train"]
    assert json.loads((out / "manifest.json").read_text())["counts"] == counts


def test_default_output_folder_is_in_the_data_home(home, tmp_path):
    result = run(str(write_conversations(tmp_path / "c.jsonl")), "--turns", "last", "--val-fraction", "0.5")
    assert result.exit_code == 0, result.output
    (run_dir,) = (home / "runs").iterdir()
    assert run_dir.name.startswith("data-") and (run_dir / "sft_train.jsonl").is_file()


def test_split_salt_redraws_the_split_and_is_in_the_manifest(home, tmp_path):
    source = write_conversations(tmp_path / "c.jsonl", n=40)
    manifests = []
    for extra in ((), ("--split-salt", "fold-2")):
        result = run(
            str(source),
            "--out",
            str(tmp_path / f"out{len(extra)}"),
            "--val-fraction",
            "0.5",
            "--json",
            *extra,
        )
        assert result.exit_code == 0, result.output
        manifests.append(json.loads(result.output.strip().splitlines()[-1]))
    assert [m["split_salt"] for m in manifests] == [None, "fold-2"]
    val = [{r["conversation_id"] for r in load_rows(tmp_path / f"out{n}" / "kto_val.jsonl")} for n in (0, 2)]
    assert val[0] != val[1]


def test_dstc11_slice_with_knowledge_docs(home, tmp_path, shared_data):
    source = shared_data / "dstc11" / "conversations.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()[:40]
    sliced = tmp_path / "dstc11.jsonl"
    sliced.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs = shared_data / "dstc11" / "knowledge_docs.jsonl"
    out = tmp_path / "out"
    result = run(str(sliced), "--docs", str(docs), "--out", str(out), "--turns", "last", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output.strip().splitlines()[-1])
    assert manifest["conversations"] == 40 and manifest["missing_doc_ids"] == 0
    rows = load_rows(out / "sft_train.jsonl") + load_rows(out / "sft_val.jsonl")
    assert len(rows) == 40
    first = json.loads(lines[0])
    row = next(r for r in rows if r["conversation_id"] == first["id"])
    assert row["completion"][0]["content"] == first["gold_response"]
    assert "Hobsons House" in row["prompt"][-1]["content"]  # its gold reviews are in the passages
    assert row["prompt"][-1]["content"].endswith(f"Customer: {first['turns'][-1]['text']}")


def test_malformed_input_is_reported_with_file_and_line(home, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"turns": [{"role": "customer", "text": "hi"}]}\n{oops\n', encoding="utf-8")
    result = run(str(path), "--out", str(tmp_path / "out"))
    assert isinstance(result.exception, DataError)
    assert "broken.jsonl:2: invalid JSON" in str(result.exception)
    result = run(str(path), "--out", str(tmp_path / "out"), "--skip-invalid", "--json")
    assert result.exit_code == 0, result.output
    assert "broken.jsonl:2" in json.loads(result.output.strip().splitlines()[-1])["skipped"][0]


def test_entry_point_turns_errors_into_one_line_and_exit_code(home, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text("{oops\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "data", "compile", str(path)], capture_output=True, text=True
    )
    assert done.returncode == DataError.exit_code
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:1: invalid JSON")


def test_nothing_to_compile_is_a_usage_error(home):
    result = run()
    assert result.exit_code == 2 and "--from-logs" in result.output


def test_from_logs_exports_reviewed_conversations(home, tmp_path):
    from agent.store import LogStore

    with LogStore(home=home) as store:
        store.create_conversation("logged")
        store.add_turn("logged", "customer", "Is the Aero 500 loud?")
        turn = store.add_turn("logged", "agent", "It is silent.")
        store.add_feedback(turn.id, correction="It runs at 24 dB on sleep mode.", reviewer="kim")
    out = tmp_path / "out"
    result = run("--from-logs", "--out", str(out), "--val-fraction", "0", "--json")
    assert result.exit_code == 0, result.output
    (pref,) = load_rows(out / "pref_train.jsonl")
    assert pref["chosen"][0]["content"] == "It runs at 24 dB on sleep mode."


def test_importing_the_cli_module_is_cheap():
    heavy = "('torch', 'transformers', 'trl', 'datasets')"
    code = f"import sys, training.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_retrieve_uses_the_knowledge_base_for_passages(home, tmp_path, monkeypatch):
    import knowledge
    from agent.cli import CliState

    hit = knowledge.Hit("pairing", "wifi.md", "Hold Wi-Fi for 5 s.", 0.9, "c1", 0.9, title="Wi-Fi")

    class FakeKnowledgeBase:
        def __init__(self, config):
            assert config == "knowledge-config"

        def search(self, query, k=4, history=()):
            assert query == "How do I pair it?" and history == []
            return [hit]

    monkeypatch.setattr(knowledge, "KnowledgeBase", FakeKnowledgeBase, raising=False)
    monkeypatch.setattr(CliState, "knowledge_config", lambda self: "knowledge-config")
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps(
            {
                "turns": [
                    {"role": "customer", "text": "How do I pair it?"},
                    {"role": "agent", "text": "See [1]."},
                ]
            }
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run(str(path), "--retrieve", "--out", str(out), "--val-fraction", "0")
    assert result.exit_code == 0, result.output
    (row,) = load_rows(out / "sft_train.jsonl")
    assert "[1] (Wi-Fi) Hold Wi-Fi for 5 s." in row["prompt"][-1]["content"]
