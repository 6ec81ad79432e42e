"""Conversation-aware retrieval on a real slice of DSTC11 (read from ../shared/data, never copied).

The slice: every document of twelve hotels and restaurants, and the conversations whose gold
documents all belong to them. Embeddings are the test hashing ones (fast, offline), so the gain
measured here comes from entity tracking and hybrid ranking, not from the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge import KnowledgeConfig
from knowledge.evaluate import run_eval_retrieval
from tests.conftest import require

from .conftest import SHARED_DATA

DSTC11 = SHARED_DATA / "dstc11"
ENTITIES = 12


@pytest.fixture(scope="module")
def dstc11_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require((DSTC11 / "knowledge_docs.jsonl").exists(), f"shared data not found at {DSTC11}")
    docs = [json.loads(line) for line in (DSTC11 / "knowledge_docs.jsonl").open(encoding="utf-8")]
    names = sorted({d["entity_name"] for d in docs})[::12][:ENTITIES]
    kept = [d for d in docs if d["entity_name"] in names]
    ids = {d["doc_id"] for d in kept}
    conversations = [
        c
        for c in map(json.loads, (DSTC11 / "conversations.jsonl").open(encoding="utf-8"))
        if set(c["gold_doc_ids"]) <= ids
    ]
    out = tmp_path_factory.mktemp("dstc11-slice")
    (out / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept), encoding="utf-8")
    (out / "queries.jsonl").write_text("".join(json.dumps(c) + "\n" for c in conversations), encoding="utf-8")
    return out / "docs.jsonl", out / "queries.jsonl"


def test_entity_tracking_beats_the_last_turn_alone(dstc11_slice, fake_embeddings) -> None:
    docs, queries = dstc11_slice
    ours = run_eval_retrieval(
        KnowledgeConfig(entity_fields=("entity_name",)), docs, queries, embeddings=fake_embeddings
    )
    last_turn = run_eval_retrieval(
        KnowledgeConfig(history_weight=0.0), docs, queries, embeddings=fake_embeddings
    )
    assert ours["documents"] >= 250 and ours["queries"] >= 60
    # Measured: 0.70 against 0.25 (hashing embeddings; with MiniLM the full benchmark reaches 0.9).
    assert ours["hit@5"] >= 0.65
    assert last_turn["hit@5"] <= ours["hit@5"] - 0.3
