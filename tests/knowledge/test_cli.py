"""The click commands, called directly with CliRunner (no entry module needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from knowledge import KnowledgeConfig
from knowledge.cli import eval_retrieval, ingest, kb, search

from .conftest import HashingEmbeddings, write_jsonl


class State:
    """Stands in for the entry module's context object."""

    def __init__(self, index: Path):
        self.index = index

    def knowledge_config(self) -> KnowledgeConfig:
        return KnowledgeConfig(persist_dir=self.index, entity_fields=("entity_name",))


class Unconfigured(State):
    def knowledge_config(self) -> KnowledgeConfig:
        return KnowledgeConfig(persist_dir=self.index)


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge.embeddings.load_embeddings", lambda *a, **kw: HashingEmbeddings())


@pytest.fixture
def run(tmp_path: Path):
    state = State(tmp_path / "index")

    def invoke(command, *args: str, obj: object = state):
        return CliRunner().invoke(command, [str(a) for a in args], obj=obj, catch_exceptions=False)

    return invoke


def test_ingest_prints_a_summary_and_failures(run, docs_dir: Path) -> None:
    result = run(ingest, docs_dir)
    assert result.exit_code == 0, result.output
    assert "documents: 6 added, 0 updated, 0 unchanged, 0 removed, 2 failed" in result.output
    assert "broken.pdf" in result.output and "not valid UTF-8" in result.output
    again = run(ingest, docs_dir, "--json")
    report = json.loads(again.stdout.strip().splitlines()[-1])
    assert report["documents"]["unchanged"] == 6 and report["chunks"]["added"] == 0


def test_ingest_of_a_missing_path_is_a_one_line_error(run, tmp_path: Path) -> None:
    result = run(ingest, tmp_path / "missing.md")
    assert result.exit_code == 1
    assert "Error: no such file or directory" in result.output and "Traceback" not in result.output


def test_search_json_has_the_contract_keys(run, docs_dir: Path) -> None:
    run(ingest, docs_dir)
    result = run(search, "how long does shipping take", "--k", "3", "--json")
    hits = json.loads(result.stdout)
    assert 1 <= len(hits) <= 3
    assert {"doc_id", "source", "score", "text", "relevance"} <= set(hits[0])
    assert hits[0]["doc_id"] == "faq-1"
    human = run(search, "warranty claims")
    assert "1. warranty" in human.output


def test_search_with_a_history_file(run, tmp_path: Path) -> None:
    docs = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"id": "a-park", "text": "Alpha Inn parking is free.", "entity_name": "ALPHA INN"},
            {"id": "b-park", "text": "Beta Lodge parking is free.", "entity_name": "BETA LODGE"},
        ],
    )
    run(ingest, docs)
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"turns": [{"role": "customer", "text": "What about Beta Lodge?"}]}))
    hits = json.loads(run(search, "is parking free there?", "--history", history, "--json").stdout)
    assert hits[0]["doc_id"] == "b-park"
    history.write_text("[1, 2]")
    assert "expected" in run(search, "x", "--history", history).output


def test_search_of_an_empty_index(run) -> None:
    assert json.loads(run(search, "anything", "--json").stdout) == []
    assert "no results" in run(search, "anything").output


def test_kb_stats_sources_and_remove(run, docs_dir: Path) -> None:
    run(ingest, docs_dir)
    stats = json.loads(run(kb, "stats", "--json").stdout)
    assert stats["documents"] == 6 and stats["sources"] == 5 and stats["chunks"] > 6
    assert stats["embedding_model"] == HashingEmbeddings.model_id
    assert "documents:" in run(kb, "stats").output
    assert "guides/descaling.txt" in run(kb, "sources").output.splitlines()
    removed = run(kb, "remove", "guides/descaling.txt")
    assert removed.exit_code == 0 and "removed 1 chunks" in removed.output
    missing = run(kb, "remove", "guides/descaling.txt")
    assert missing.exit_code == 1 and "no such source" in missing.output
    assert json.loads(run(kb, "stats", "--json").stdout)["documents"] == 5


def test_kb_stats_shows_the_entity_fields_and_whence(run, tmp_path: Path) -> None:
    rows = [
        {"id": f"{h}-{i}", "text": f"Hotel {name} detail {i}.", "entity_name": f"HOTEL {name}"}
        for h, name in enumerate(["ALDER", "BIRCH", "CEDAR", "DOGWOOD", "ELM", "FIR", "GINKGO", "HAZEL"])
        for i in range(2)
    ]
    run(ingest, write_jsonl(tmp_path / "hotels.jsonl", rows))
    assert "entity_fields:   entity_name (configured)" in run(kb, "stats").output
    unconfigured = Unconfigured(tmp_path / "index")  # the same index, no entity_fields setting
    assert "entity_fields:   entity_name (inferred)" in run(kb, "stats", obj=unconfigured).output
    stats = json.loads(run(kb, "stats", "--json", obj=unconfigured).stdout)
    assert stats["entity_fields"] == ["entity_name"] and stats["entity_fields_origin"] == "inferred"


def test_default_config_uses_the_data_home(run, docs_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SUPPORTLOOP_HOME", str(tmp_path / "home"))
    assert run(ingest, docs_dir / "warranty.md", obj=None).exit_code == 0
    assert (tmp_path / "home" / "index").is_dir()
    stats = json.loads(run(kb, "stats", "--json", obj=None).stdout)
    assert stats["persist_dir"] == str(tmp_path / "home" / "index")


def _eval_files(tmp_path: Path) -> tuple[Path, Path]:
    docs = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"doc_id": "p1", "text": "Alpha Inn has free parking.", "entity_name": "ALPHA INN"},
            {"doc_id": "p2", "text": "Beta Lodge has free parking.", "entity_name": "BETA LODGE"},
            {"doc_id": "w2", "text": "Beta Lodge has wifi.", "entity_name": "BETA LODGE"},
        ],
    )
    queries = write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {
                "turns": [
                    {"role": "customer", "text": "I'd like Beta Lodge."},
                    {"role": "agent", "text": "Good choice."},
                    {"role": "customer", "text": "Is parking free?"},
                ],
                "gold_doc_ids": ["p2"],
            },
            {"question": "wifi beta lodge", "gold_doc_ids": ["w2"]},
        ],
    )
    return docs, queries


def test_eval_retrieval_json_last_line(run, tmp_path: Path) -> None:
    docs, queries = _eval_files(tmp_path)
    result = run(
        eval_retrieval, "--docs", docs, "--queries", queries, "--entity-field", "entity_name", "--json"
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"hit@1", "hit@5", "mrr", "queries"} <= set(metrics)
    assert metrics["queries"] == 2 and metrics["hit@1"] == 1.0
    human = run(eval_retrieval, "--docs", docs, "--queries", queries, "--limit", "1")
    assert "hit@5:" in human.output and "queries:         1" in human.output


def test_eval_retrieval_into_a_kept_index(run, tmp_path: Path) -> None:
    docs, queries = _eval_files(tmp_path)
    kept = tmp_path / "kept"
    assert run(eval_retrieval, "--docs", docs, "--queries", queries, "--persist-dir", kept).exit_code == 0
    assert kept.is_dir() and any(kept.iterdir())


def test_eval_retrieval_bad_line_is_a_one_line_error(run, tmp_path: Path) -> None:
    docs, queries = _eval_files(tmp_path)
    queries.write_text('{"question": "ok", "gold_doc_ids": []}\nnot json\n')
    result = run(eval_retrieval, "--docs", docs, "--queries", queries)
    assert result.exit_code == 1
    assert f"Error: {queries}:2: invalid JSON" in result.output
