"""Retrieval: the search contract, hybrid fusion, conversation-aware entity tracking, the LangChain retriever."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from knowledge import Document, Hit, KnowledgeBase
from knowledge.entities import EntityMatcher
from knowledge.retrieval import fuse

HOTELS = {
    "ALLENBELL": [
        "The rooms at Allenbell were spotless and cleaned every day.",
        "Allenbell offers free parking behind the building.",
        "Breakfast at Allenbell is served from 7am.",
    ],
    "A AND B GUEST HOUSE": [
        "The rooms at A and B Guest House were dusty and not clean.",
        "A and B Guest House has free wifi in every room.",
        "Parking at A and B Guest House costs extra.",
    ],
    "BRIDGE GUEST HOUSE": [
        "Bridge Guest House rooms are clean and quiet.",
        "Bridge Guest House does not allow pets.",
    ],
}


def _hotel_docs() -> list[Document]:
    docs = []
    for name, texts in HOTELS.items():
        for i, text in enumerate(texts):
            doc_id = f"{name.split()[0].lower()}:{i}"
            docs.append(
                Document(doc_id, f"kb.jsonl#{doc_id}", text, metadata={"entity_name": name}, file="kb.jsonl")
            )
    return docs


@pytest.fixture
def hotels(make_kb) -> KnowledgeBase:
    kb = make_kb(persist=False, entity_fields=("entity_name",))
    kb.ingest_documents(_hotel_docs())
    return kb


def test_empty_index_returns_nothing(kb: KnowledgeBase) -> None:
    assert kb.search("anything") == []
    assert kb.search("anything", history=[("customer", "hi")]) == []


def test_k_larger_than_the_index_returns_each_document_once(hotels: KnowledgeBase) -> None:
    hits = hotels.search("rooms", k=50)
    assert len(hits) == 8 == len({h.doc_id for h in hits})
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hits_are_typed_and_relevance_is_bounded(hotels: KnowledgeBase) -> None:
    hits = hotels.search("free parking", k=3)
    assert all(isinstance(h, Hit) for h in hits)
    assert all(0.0 <= h.relevance <= 1.0 for h in hits)
    assert hits[0].metadata["entity_name"] in HOTELS
    assert hits[0].source.startswith("kb.jsonl#") and hits[0].chunk_id


def test_chunks_not_distinct_can_come_from_one_document(make_kb) -> None:
    """``distinct=False`` gives the best chunks themselves: a long page can fill them all."""
    long_text = "\n\n".join(f"## Part {n}\n\nThe kettle part {n} holds {n} cups of water." for n in range(6))
    kb = make_kb(persist=False, chunk_size=80, chunk_overlap=0)
    kb.ingest_documents(
        [Document("kettle", "kettle.md", long_text), Document("tea", "tea.md", "Tea leaves.")]
    )
    assert [h.doc_id for h in kb.search("kettle cups of water", k=3)] == ["kettle", "tea"]
    chunks = kb.search("kettle cups of water", k=3, distinct=False)
    assert len(chunks) == 3 and {h.doc_id for h in chunks} == {"kettle"}
    assert len({h.chunk_id for h in chunks}) == 3
    assert [h.score for h in chunks] == sorted((h.score for h in chunks), reverse=True)


def test_blank_query_and_zero_k(hotels: KnowledgeBase) -> None:
    assert hotels.search("   ") == []
    assert hotels.search("rooms", k=0) == []


def test_unicode_documents_and_queries(kb: KnowledgeBase) -> None:
    kb.ingest_documents(
        [
            Document("fr", "fr.md", "Crème brûlée servie avec un café ☕ à volonté."),
            Document("zh", "zh.md", "我们的水壶有两年保修。"),
            Document("en", "en.md", "Plain English text about kettles."),
        ]
    )
    assert kb.search("creme brulee ☕", k=1)[0].doc_id == "fr"
    assert kb.search("水壶保修", k=1)[0].doc_id == "zh"
    assert kb.search("🙂🙂", k=3) is not None


def test_their_resolves_to_the_hotel_named_earlier(hotels: KnowledgeBase) -> None:
    history = [
        ("customer", "I'm looking for a guesthouse in the north."),
        ("agent", "The Allenbell is a lovely place there."),
    ]
    hits = hotels.search("are their rooms clean?", k=3, history=history)
    assert hits[0].doc_id == "allenbell:0"
    assert {h.metadata["entity_name"] for h in hits} == {"ALLENBELL"}
    # Without the conversation the question is ambiguous and another hotel comes first.
    assert hotels.search("are their rooms clean?", k=1)[0].doc_id != "allenbell:0"


def test_most_recently_named_entity_wins(hotels: KnowledgeBase) -> None:
    history = [
        ("customer", "Tell me about Allenbell."),
        ("agent", "Sure. What about the a and b guest house instead?"),
        ("customer", "Yes, A and B guest house sounds good."),
    ]
    hits = hotels.search("do they have parking?", k=1, history=history)
    assert hits[0].doc_id == "a:2"
    # The last customer turn names Allenbell: it takes priority over the history.
    assert hotels.search("does allenbel have parking?", k=1, history=history)[0].doc_id == "allenbell:1"


def test_entity_matcher_is_fuzzy_and_prefers_the_most_specific_name() -> None:
    matcher = EntityMatcher(
        {
            ("name", "NANDOS"): ["Nandos serves chicken in the city centre."],
            ("name", "NANDOS CITY CENTRE"): ["Nandos City Centre is in the city centre."],
            ("name", "ROSA'S BED AND BREAKFAST"): ["Rosa's bed and breakfast has a garden."],
            ("name", "CITY STOP RESTAURANT"): ["City Stop restaurant in the city centre."],
            ("name", "ALLENBELL"): ["Allenbell is a guesthouse."],
        }
    )
    assert matcher.find("I'd like rosas's bed and breakfast") == [("name", "ROSA'S BED AND BREAKFAST")]
    assert matcher.find("how about nandos?") == [("name", "NANDOS")]
    assert matcher.find("the nandos in the city centre please") == [("name", "NANDOS CITY CENTRE")]
    assert matcher.find("Nandos City Centre, please") == [("name", "NANDOS CITY CENTRE")]
    assert matcher.find("Is the Alenbell nice?") == [("name", "ALLENBELL")]
    # Generic words shared by many names or documents name nothing.
    assert matcher.find("a restaurant in the city centre with a bed") == []


def test_fusion_mixes_normalised_dense_and_lexical_scores() -> None:
    dense = np.array([0.9, 0.5, 0.1, 0.7], dtype=np.float32)
    lexical = np.array([0.0, 10.0, 5.0, 0.0], dtype=np.float32)
    fused = fuse(dense, lexical, np.array([0, 1, 2]), dense_weight=0.5)
    assert fused == pytest.approx([0.5, 0.75, 0.25, 0.0])


def test_hybrid_finds_an_exact_code_that_dense_alone_misses(make_kb) -> None:
    kb = make_kb(persist=False, dense_weight=0.5)
    kb.ingest_documents(
        [
            Document("e42", "errors.md", "Error E42 means the water tank is empty."),
            Document(
                "tank", "tank.md", "The water tank is empty, the water tank needs water: fill the water tank."
            ),
        ]
    )
    assert kb.search("what does E42 mean for my water tank", k=1)[0].doc_id == "e42"


def test_concurrent_searches_agree(hotels: KnowledgeBase) -> None:
    expected = [h.doc_id for h in hotels.search("free wifi", k=3)]
    results: list[list[str]] = []

    def worker() -> None:
        for _ in range(5):
            results.append([h.doc_id for h in hotels.search("free wifi", k=3)])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 20


def test_search_sees_documents_ingested_after_the_first_search(kb: KnowledgeBase) -> None:
    assert kb.search("kettle") == []
    kb.ingest_documents([Document("k", "k.md", "kettle")])
    assert [h.doc_id for h in kb.search("kettle")] == ["k"]
    kb.remove("k.md")
    assert kb.search("kettle") == []


def test_langchain_retriever(hotels: KnowledgeBase) -> None:
    retriever = hotels.as_retriever(k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("are their rooms clean?", history=[("agent", "Bridge Guest House is nice.")])
    assert len(docs) == 2 and all(isinstance(d, LCDocument) for d in docs)
    assert docs[0].metadata["doc_id"] == "bridge:0"
    assert {"doc_id", "source", "score", "relevance", "chunk_id"} <= set(docs[0].metadata)
    assert retriever.invoke("wifi")[0].metadata["doc_id"] == "a:1"


def test_rerank_by_best_sentence_lifts_a_diluted_passage(make_kb) -> None:
    long_text = "Opening hours are nine to five. " * 5 + "The kettle descaling uses citric acid."
    docs = [
        Document("long", "long.md", long_text),
        Document("short", "short.md", "Opening hours vary."),
        Document("other", "other.md", "Citric acid is sold separately in the shop."),
    ]
    plain = make_kb(persist=False)
    plain.ingest_documents(docs)
    reranked = make_kb(persist=False, rerank=True, rerank_depth=5, rerank_weight=2.0)
    reranked.ingest_documents(docs)
    assert plain.search("descaling with citric acid", k=1)[0].doc_id == "other"
    hits = reranked.search("descaling with citric acid", k=2)
    assert [h.doc_id for h in hits] == ["long", "other"]
    assert hits[0].score >= hits[1].score


def test_a_missing_rerank_model_is_a_config_error(make_kb, tmp_path) -> None:
    from knowledge import ConfigError

    kb = make_kb(persist=False, rerank=True, rerank_model=str(tmp_path / "no-such-model"))
    kb.ingest_documents([Document("a", "a.md", "hello world")])
    with pytest.raises(ConfigError, match="cannot load rerank model"):
        kb.search("hello")
