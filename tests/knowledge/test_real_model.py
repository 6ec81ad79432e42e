"""The real packaged all-MiniLM-L6-v2 with a persistent index: the default path end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    from knowledge.embeddings import SentenceEmbeddings, default_model_path

    try:
        default_model_path()
    except Exception as exc:  # the package is a declared dependency; say so if it is missing
        pytest.fail(str(exc))
    return SentenceEmbeddings()


def test_default_embeddings_are_normalised_and_semantic(minilm) -> None:
    vectors = minilm.encode(["How long is the warranty?", "The warranty lasts two years.", "Pizza toppings"])
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert minilm.embed_query("same") == pytest.approx(minilm.embed_documents(["same"])[0], abs=1e-5)


def test_persistent_index_with_the_real_model(tmp_path: Path, docs_dir: Path, minilm) -> None:
    config = KnowledgeConfig(persist_dir=tmp_path / "index")
    kb = KnowledgeBase(config, embeddings=minilm)
    report = kb.ingest([docs_dir])
    assert report.added == 6 and report.failed == 2
    hits = kb.search("How many days does delivery take?", k=3)
    assert hits[0].doc_id == "faq-1"
    assert 0.3 < hits[0].relevance <= 1.0
    assert kb.search("What does a blinking red light mean?", k=1)[0].doc_id == "leds"
    # Relevance is absolute: an unrelated question scores far lower than a related one.
    unrelated = kb.search("Who won the football world cup in 1998?", k=1)[0].relevance
    assert unrelated < hits[0].relevance - 0.2
    chunks = kb.count()
    kb.close()

    reopened = KnowledgeBase(config, embeddings=minilm)
    assert reopened.count() == chunks
    assert reopened.ingest([docs_dir]).chunks_added == 0
    assert reopened.stats()["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
