"""Entity fields inferred from the documents' metadata: the pure rule, its use by the knowledge
base (kept with the index, an explicit setting wins), and ``kb stats``."""

from __future__ import annotations

import json

import pytest

from knowledge import Document, KnowledgeBase
from knowledge.chunking import clean_metadata
from knowledge.entities import infer_entity_fields
from tests.conftest import require

from .conftest import DSTC11

PRODUCTS = [
    f"Kettle Model {name}"
    for name in ["Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ivy", "Juniper"]
]


def _catalogue(per_product: int = 3) -> list[dict[str, object]]:
    """Three documents per product, with the usual other fields of a support knowledge base."""
    rows: list[dict[str, object]] = []
    for p, product in enumerate(PRODUCTS):
        for i in range(per_product):
            rows.append(
                {
                    "product": product,
                    "product_code": f"K-{p:03d}",  # the same grouping as product, less wordy
                    "doc_type": ["faq", "manual", "review"][i % 3],  # few values
                    "domain": "kitchen" if p % 2 else "home",  # fewer still
                    "sku": f"SKU-{p}-{i}",  # unique per document
                    "url": f"https://example.com/kettles/{p}/{i}",  # unique per document
                    "rating": (p + i) % 5,  # not text
                    "tags": json.dumps(["kettle", f"tag{p}"]),  # a JSON-encoded list
                }
            )
    return rows


def test_picks_the_name_field_and_nothing_else() -> None:
    assert infer_entity_fields(_catalogue()) == ("product",)


def test_ignores_fields_with_few_values() -> None:
    assert infer_entity_fields([{"audience": f"group {i % 6}"} for i in range(60)]) == ()
    assert infer_entity_fields([{"audience": f"group {i % 8}"} for i in range(60)]) == ("audience",)


def test_keeps_the_finest_of_nested_groupings() -> None:
    # Ten product lines of three products, three documents each: the lines group the products.
    rows = [
        {"line": f"Line {chr(65 + p // 3)}", "product": f"Kettle {p}"} for p in range(30) for _ in range(3)
    ]
    assert infer_entity_fields(rows) == ("product",)
    # Topics that cut across the products are another way of naming the documents: kept too.
    crossed = [{**row, "topic": f"topic {i % 9}"} for i, row in enumerate(rows)]
    assert infer_entity_fields(crossed) == ("product", "topic")


def test_ignores_ids_unique_per_document_and_long_or_missing_values() -> None:
    assert infer_entity_fields([{"ref": f"doc {i}"} for i in range(40)]) == ()
    long = "a sentence far too long to be the name of anything that a customer would say at all"
    assert infer_entity_fields([{"summary": f"{long} {i % 10}"} for i in range(40)]) == ()
    assert infer_entity_fields([]) == ()
    assert infer_entity_fields([{}, {}]) == ()


def test_a_field_only_some_documents_carry_still_counts() -> None:
    rows = _catalogue() + [{"doc_type": "policy"} for _ in range(30)]
    assert infer_entity_fields(rows) == ("product",)


def test_dstc11_metadata_gives_entity_name() -> None:
    path = DSTC11 / "knowledge_docs.jsonl"
    require(path.exists(), f"shared data not found at {DSTC11}")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    metadata = [clean_metadata({k: v for k, v in r.items() if k not in ("text", "doc_id")}) for r in rows]
    assert infer_entity_fields(metadata) == ("entity_name",)


# -- the knowledge base ---------------------------------------------------------------------------


def _documents(products: list[str] = PRODUCTS) -> list[Document]:
    docs = []
    for p, product in enumerate(products):
        texts = [
            f"The {product} boils a litre in {p + 2} minutes.",
            f"The {product} has a {p + 1} year warranty.",
            f"Descale the {product} every {p + 3} weeks.",
        ]
        for i, text in enumerate(texts):
            meta = {"product": product, "doc_type": ["faq", "manual", "review"][i]}
            docs.append(Document(f"{p}-{i}", f"kb.jsonl#{p}-{i}", text, metadata=meta, file="kb.jsonl"))
    return docs


def test_unconfigured_search_tracks_the_inferred_field(make_kb) -> None:
    kb = make_kb(persist=False)
    kb.ingest_documents(_documents())
    assert kb.entity_fields() == (("product",), "inferred")
    history = [("customer", "I bought the Kettle Model Hazel last week."), ("agent", "Great choice!")]
    hits = kb.search("how long is the warranty?", k=3, history=history)
    assert hits[0].metadata["product"] == "Kettle Model Hazel"
    assert hits[0].doc_id == "7-1"


def test_an_explicit_setting_wins_and_inference_can_be_off(make_kb) -> None:
    configured = make_kb(persist=False, entity_fields=("doc_type",))
    configured.ingest_documents(_documents())
    assert configured.entity_fields() == (("doc_type",), "configured")
    assert configured.snapshot().entity_values.keys() == {"doc_type"}
    off = make_kb(persist=False, entity_inference=False)
    off.ingest_documents(_documents())
    assert off.entity_fields() == ((), "off")
    assert off.snapshot().matcher is None


def test_inferred_fields_are_kept_with_the_index(make_kb, monkeypatch: pytest.MonkeyPatch) -> None:
    make_kb().ingest_documents(_documents())
    reopened: KnowledgeBase = make_kb()
    assert reopened.index.entity_fields() == ("product",)

    def no_scan(self: KnowledgeBase) -> tuple[str, ...]:
        raise AssertionError("the stored inference should be read, not redone")

    monkeypatch.setattr(KnowledgeBase, "_infer_entity_fields", no_scan)
    assert reopened.entity_fields() == (("product",), "inferred")
    assert reopened.snapshot().entity_values.keys() == {"product"}


def test_removing_documents_infers_again(make_kb) -> None:
    kb = make_kb()
    kb.ingest_documents(_documents())
    for p in range(3, len(PRODUCTS)):  # three products left: too few values to be names
        for i in range(3):
            kb.remove(f"kb.jsonl#{p}-{i}")
    assert kb.index.entity_fields() == ()
    assert kb.entity_fields() == ((), "inferred")


def test_an_index_without_stored_inference_infers_on_open(make_kb) -> None:
    kb = make_kb()
    kb.ingest_documents(_documents())
    kb.index._set_metadata("supportloop_entity_fields", None)  # as built before inference existed
    reopened = make_kb()
    assert reopened.index.entity_fields() is None
    assert reopened.entity_fields() == (("product",), "inferred")
    reopened.ingest_documents([])  # the next ingest stores it, even with nothing to change
    assert reopened.index.entity_fields() == ("product",)


def test_stats_say_which_fields_and_whence(make_kb) -> None:
    kb = make_kb()
    kb.ingest_documents(_documents())
    stats = kb.stats()
    assert stats["entity_fields"] == ["product"] and stats["entity_fields_origin"] == "inferred"
