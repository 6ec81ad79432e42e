"""Metrics on a hand-checked toy set, query parsing, and the eval runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge import KnowledgeConfig, LoaderError
from knowledge.evaluate import (
    hit_at_k,
    load_documents,
    load_queries,
    reciprocal_rank,
    run_eval_retrieval,
    summarize,
)

from .conftest import write_jsonl

# Hand-checked: ranked lists (best first) with their gold ids.
TOY = [
    (["a", "b", "c", "d", "e", "f"], {"a"}),  # rank 1: hit@1 1, hit@5 1, rr 1
    (["b", "a", "c", "d", "e"], {"a", "z"}),  # rank 2: hit@1 0, hit@5 1, rr 1/2
    (["b", "c", "d", "e", "f", "a"], {"a"}),  # rank 6: hit@1 0, hit@5 0, rr 1/6
    (["b", "c", "d"], {"x"}),  # absent: 0, 0, 0
    (["b", "b", "c", "a"], {"a"}),  # duplicates collapse: a is 3rd distinct -> rr 1/3, hit@5 1
    (["q"], set()),  # no gold: skipped
]


def test_hit_at_k_and_reciprocal_rank() -> None:
    assert hit_at_k(["a", "b"], {"b"}, 1) == 0.0
    assert hit_at_k(["a", "b"], {"b"}, 2) == 1.0
    assert reciprocal_rank(["a", "b", "c"], {"c", "b"}) == 0.5
    assert reciprocal_rank([], {"a"}) == 0.0


def test_summary_of_the_toy_set() -> None:
    result = summarize(TOY, ks=(1, 5))
    assert result["queries"] == 5 and result["skipped"] == 1
    assert result["hit@1"] == pytest.approx(1 / 5)
    assert result["hit@5"] == pytest.approx(3 / 5)
    assert result["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 6 + 0 + 1 / 3) / 5)


def test_summary_of_nothing() -> None:
    assert summarize([]) == {"hit@1": 0.0, "hit@5": 0.0, "mrr": 0.0, "queries": 0, "skipped": 0}


def test_queries_from_conversations_and_questions(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {
                "id": "c1",
                "turns": [
                    {"role": "customer", "text": "Hi"},
                    {"role": "agent", "text": "Hello"},
                    {"role": "customer", "text": "Is it clean?"},
                ],
                "gold_doc_ids": ["d1"],
            },
            {"question": "Any parking?", "gold_doc_ids": ["d2", "d3"]},
        ],
    )
    first, second = load_queries(path)
    assert (first.id, first.query, first.history, first.gold) == (
        "c1",
        "Is it clean?",
        (("customer", "Hi"), ("agent", "Hello")),
        ("d1",),
    )
    assert (second.query, second.history, second.gold) == ("Any parking?", (), ("d2", "d3"))
    assert len(load_queries(path, limit=1)) == 1


def test_bad_query_lines_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok", "gold_doc_ids": []}\n{"turns": [{"role": "agent", "text": "x"}]}\n')
    with pytest.raises(LoaderError, match=r"q.jsonl:2: the conversation must end on a customer turn"):
        load_queries(path)
    path.write_text("{oops\n")
    with pytest.raises(LoaderError, match=r"q.jsonl:1: invalid JSON"):
        load_queries(path)


def test_bad_document_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": "b"}\n')
    with pytest.raises(LoaderError, match=r"d.jsonl:2: missing or empty 'text'"):
        load_documents(path)


def test_eval_runner_on_a_toy_corpus(tmp_path: Path, fake_embeddings) -> None:
    docs = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"doc_id": "park-a", "text": "Alpha Inn has free parking.", "entity_name": "ALPHA INN"},
            {"doc_id": "wifi-a", "text": "Alpha Inn has free wifi.", "entity_name": "ALPHA INN"},
            {"doc_id": "park-b", "text": "Beta Lodge has free parking.", "entity_name": "BETA LODGE"},
            {"doc_id": "wifi-b", "text": "Beta Lodge has free wifi.", "entity_name": "BETA LODGE"},
        ],
    )
    turns = [{"role": "customer", "text": "Tell me about Beta Lodge"}, {"role": "agent", "text": "Sure."}]
    queries = write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {
                "turns": [*turns, {"role": "customer", "text": "Do they have parking?"}],
                "gold_doc_ids": ["park-b"],
            },
            {"question": "wifi at alpha inn", "gold_doc_ids": ["wifi-a"]},
        ],
    )
    config = KnowledgeConfig(entity_fields=("entity_name",))
    result = run_eval_retrieval(config, docs, queries, k=3, embeddings=fake_embeddings)
    assert result["hit@1"] == 1.0 and result["mrr"] == 1.0 and result["queries"] == 2
    assert {"hit@5", "hit@3", "latency_p50_ms", "latency_p95_ms", "documents"} <= set(result)
    json.dumps(result)


def test_config_rejects_bad_sizes_and_weights() -> None:
    from knowledge import ConfigError

    with pytest.raises(ConfigError, match="chunk_overlap"):
        KnowledgeConfig(chunk_size=100, chunk_overlap=100)
    with pytest.raises(ConfigError, match="dense_weight"):
        KnowledgeConfig(dense_weight=1.5)
    assert KnowledgeConfig(entity_fields="entity_name").entity_fields == ("entity_name",)  # type: ignore[arg-type]
    assert KnowledgeConfig(persist_dir="~/x").persist_dir == Path("~/x").expanduser()  # type: ignore[arg-type]


def test_importing_the_package_and_its_cli_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, knowledge, knowledge.cli; "
        "print(sorted(m for m in ('torch', 'chromadb', 'langchain_core', 'numpy', 'sentence_transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
