"""`supportloop train ranker`: pairs mined from past conversations, checks before anything is
written, and a real (small) training run on the sample that the agent can load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from agent.errors import DataError
from agent.knowledge import SAMPLE_DOCS
from training import ranker as training_ranker
from training.ranker import mine_pairs, read_conversations, split_pairs, train_ranker

SAMPLE_CONVERSATIONS = SAMPLE_DOCS.parent / "conversations.jsonl"


@dataclass
class Hit:
    doc_id: str
    text: str


class FakeKB:
    """Two pages; ``search`` returns the chunk sharing most words with the query."""

    CHUNKS = (
        Hit("warranty", "Warranty\nThe warranty lasts 2 years. It covers the motor."),
        Hit("returns", "Returns\nYou can return a purifier within 30 days. Return shipping is free."),
    )

    def __init__(self, chunks=CHUNKS) -> None:
        self.chunks = list(chunks)

    def count(self) -> int:
        return len(self.chunks)

    def search(self, text: str, k: int = 2, history=(), distinct: bool = True):
        words = set(text.lower().split())
        return sorted(self.chunks, key=lambda h: -len(words & set(h.text.lower().split())))[:k]

    def embed(self, texts):
        return np.asarray([[1.0, float(len(t))] for t in texts]) / np.linalg.norm([1.0, 1.0])


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _conversation(i: int, question: str, answer: str, doc: str | None = None) -> dict:
    row = {
        "id": f"c{i}",
        "turns": [{"role": "customer", "text": question}, {"role": "agent", "text": answer}],
    }
    if doc:
        row["gold_doc_ids"] = [doc]
    return row


def test_each_answered_message_is_paired_with_the_chunk_its_answer_came_from(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.jsonl",
        [
            _conversation(1, "how long is the warranty", "The warranty lasts 2 years.", "warranty"),
            {
                "id": "c2",
                "turns": [
                    {"role": "customer", "text": "can I send it back"},
                    {"role": "agent", "text": "Yes, you can return a purifier within 30 days."},
                    {"role": "customer", "text": "who pays the shipping"},
                    {"role": "agent", "text": "Return shipping is free."},
                ],
            },
            _conversation(
                3, "my email is jane.doe@example.com, is the warranty 2 years", "The warranty lasts 2 years."
            ),
            # The page named does not hold the answer: no pair rather than a wrong one.
            _conversation(
                4, "how long is the warranty", "The warranty lasts 2 years.", "returns-only-elsewhere"
            ),
        ],
    )
    pairs = mine_pairs(read_conversations([path]), FakeKB(), FakeKB().embed)
    assert [(p.conversation, p.chunk.split("\n")[0]) for p in pairs] == [
        ("c1", "Warranty"),
        ("c2", "Returns"),
        ("c2", "Returns"),
        ("c3", "Warranty"),
    ]
    assert pairs[2].message == "can I send it back who pays the shipping"  # a follow-up after its question
    assert "jane.doe@example.com" not in pairs[3].message  # redacted before it is trained on
    train, held = split_pairs(pairs, 0.5, seed=0)
    assert {p.conversation for p in train}.isdisjoint({p.conversation for p in held})
    assert len(train) + len(held) == len(pairs)


def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch) -> None:
    good = _write(tmp_path / "c.jsonl", [_conversation(1, "warranty?", "The warranty lasts 2 years.")])
    out = tmp_path / "ranker"
    with pytest.raises(DataError, match="--validation"):
        train_ranker([good], FakeKB(), out, validation=1.0)
    with pytest.raises(DataError, match="index is empty"):
        train_ranker([good], FakeKB(chunks=()), out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_conversation(1, "a", "b")) + "\n{oops\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        train_ranker([bad], FakeKB(), out)
    with pytest.raises(DataError, match="only 1 customer messages"):
        train_ranker([good], FakeKB(), out)
    few = _write(tmp_path / "few.jsonl", [_conversation(0, "warranty?", "The warranty lasts 2 years.")] * 2)
    monkeypatch.setattr(training_ranker, "MIN_PAIRS", 2)
    with pytest.raises(DataError, match="leaves no conversation to train on"):
        train_ranker([few], FakeKB(), out, validation=0.9)
    trl = _write(tmp_path / "trl.jsonl", [{"prompt": "a", "completion": "b"}])
    with pytest.raises(DataError, match="not on prepared TRL rows"):
        train_ranker([trl], FakeKB(), out)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        train_ranker([good], FakeKB(), taken)
    assert not out.exists() and (taken / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.jsonl",
        "c.jsonl",
        "few.jsonl",
        "taken",
        "trl.jsonl",
    ]


@pytest.mark.slow
def test_a_ranker_trained_on_sample_conversations_is_measured_and_served(tmp_path: Path, monkeypatch) -> None:
    from agent.ranker import check_ranker, load_ranker
    from knowledge import KnowledgeBase, KnowledgeConfig

    kb = KnowledgeBase(KnowledgeConfig(persist_dir=tmp_path / "index"))
    kb.ingest([SAMPLE_DOCS])
    rows = [json.loads(line) for line in SAMPLE_CONVERSATIONS.read_text().splitlines()][:40]
    data = _write(tmp_path / "history.jsonl", rows)
    out = tmp_path / "ranker"
    manifest = train_ranker([data], kb, out, epochs=1, validation=0.25, seed=3)
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "ranker.json",
    ]
    assert json.loads((out / "ranker.json").read_text()) == manifest
    assert manifest["data"]["conversations_read"] == 40
    assert manifest["data"]["train_pairs"] + manifest["data"]["validation_pairs"] == manifest["data"]["pairs"]
    metrics = manifest["metrics"]
    assert metrics["validation_pairs"] == manifest["data"]["validation_pairs"] > 0
    for key in ("shown_recall_index_model", "shown_recall_ranker"):
        assert 0.0 <= metrics[key] <= 1.0
    assert check_ranker(out) == out
    vectors = load_ranker(str(out))(["is return shipping free?"])
    assert vectors.shape == (1, 384)
    assert manifest["data"]["pairs"] >= training_ranker.MIN_PAIRS
