"""Ingestion: idempotent re-ingest, updates that leave nothing stale, removal, persistence."""

from __future__ import annotations

from pathlib import Path

from knowledge import Document, KnowledgeBase

from .conftest import write_jsonl


def _texts(kb: KnowledgeBase) -> list[str]:
    return kb.snapshot().texts


def test_folder_ingest_reports_added_and_failed(make_kb, docs_dir: Path) -> None:
    kb = make_kb()
    report = kb.ingest([docs_dir])
    assert (report.added, report.updated, report.unchanged, report.failed) == (6, 0, 0, 2)
    assert {Path(f.path).name for f in report.failures} == {"broken.pdf", "latin1.txt"}
    assert report.chunks_added == kb.count() > 6
    assert kb.stats()["documents"] == 6
    assert kb.stats()["sources"] == 5  # the JSON Lines file counts once


def test_reingest_of_unchanged_files_embeds_nothing(make_kb, docs_dir: Path, fake_embeddings) -> None:
    kb = make_kb()
    first = kb.ingest([docs_dir])
    embedded = fake_embeddings.texts_embedded
    second = kb.ingest([docs_dir])
    assert (second.added, second.updated, second.unchanged) == (0, 0, first.added)
    assert (second.chunks_added, second.chunks_removed, second.chunks_unchanged) == (0, 0, first.chunks_added)
    assert fake_embeddings.texts_embedded == embedded


def test_changed_file_replaces_its_chunks(make_kb, docs_dir: Path) -> None:
    kb = make_kb()
    kb.ingest([docs_dir])
    before = kb.count()
    (docs_dir / "warranty.md").write_text("# Warranty\n\nThree years now, no exclusions.\n", encoding="utf-8")
    report = kb.ingest([docs_dir])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 5)
    assert report.chunks_added == 1 and report.chunks_removed == 3
    assert kb.count() == before - 2
    texts = " ".join(_texts(kb))
    assert (
        "Three years now" in texts
        and "two-year warranty" not in texts
        and "vinegar is not covered" not in texts
    )
    hits = kb.search("warranty exclusions descaling vinegar", k=10)
    assert all("two-year" not in h.text for h in hits)


def test_rows_dropped_from_a_jsonl_file_are_removed(make_kb, tmp_path: Path) -> None:
    kb = make_kb()
    path = write_jsonl(tmp_path / "faq.jsonl", [{"id": "a", "text": "Alpha."}, {"id": "b", "text": "Beta."}])
    kb.ingest([path])
    write_jsonl(path, [{"id": "a", "text": "Alpha."}, {"id": "c", "text": "Gamma."}])
    report = kb.ingest([path])
    assert (report.added, report.unchanged, report.removed) == (1, 1, 1)
    assert sorted(h.doc_id for h in kb.search("alpha beta gamma", k=10)) == ["a", "c"]


def test_remove_a_file_source_and_a_whole_jsonl_file(make_kb, docs_dir: Path) -> None:
    kb = make_kb()
    kb.ingest([docs_dir])
    total = kb.count()
    removed = kb.remove("warranty.md")
    assert removed == 3 and kb.count() == total - 3
    assert kb.remove("warranty.md") == 0
    assert kb.remove("faq.jsonl#7") == 1
    assert kb.remove("faq.jsonl") == 1
    assert "faq.jsonl" not in kb.sources() and "warranty.md" not in kb.sources()
    assert all(h.source != "warranty.md" for h in kb.search("warranty claims", k=10))


def test_index_persists_across_instances(make_kb, docs_dir: Path) -> None:
    first = make_kb()
    first.ingest([docs_dir])
    count = first.count()
    first.close()
    again = make_kb()
    assert again.count() == count
    assert again.ingest([docs_dir]).chunks_added == 0
    assert again.search("how long does shipping take", k=1)[0].doc_id == "faq-1"


def test_ingest_documents_and_duplicate_sources(kb: KnowledgeBase) -> None:
    docs = [Document("a", "a", "one"), Document("b", "a", "two"), Document("c", "c", "three")]
    report = kb.ingest_documents(docs)
    assert report.added == 2 and report.failed == 1
    assert "same source" in report.failures[0].reason


def test_report_as_dict_has_documents_and_chunks(kb: KnowledgeBase) -> None:
    report = kb.ingest_documents([Document("a", "a.md", "hello")]).as_dict()
    assert report["documents"] == {"added": 1, "updated": 0, "unchanged": 0, "removed": 0, "failed": 0}
    assert report["chunks"]["added"] == 1


def test_in_memory_bases_do_not_share_state(make_kb) -> None:
    one, two = make_kb(persist=False), make_kb(persist=False)
    one.ingest_documents([Document("a", "a.md", "hello")])
    assert (one.count(), two.count()) == (1, 0)


def test_collection_built_with_another_model_is_refused(make_kb, fake_embeddings, tmp_path: Path) -> None:
    import pytest

    from knowledge import ConfigError, KnowledgeConfig

    make_kb().ingest_documents([Document("a", "a.md", "hello")])

    class Other(type(fake_embeddings)):  # type: ignore[misc]
        model_id = "another-model"

    with pytest.raises(ConfigError, match="built with embedding model"):
        KnowledgeBase(KnowledgeConfig(persist_dir=tmp_path / "index"), embeddings=Other()).count()


def test_invalid_collection_name_is_a_config_error(make_kb) -> None:
    import pytest

    from knowledge import ConfigError

    with pytest.raises(ConfigError, match="invalid collection name"):
        make_kb(collection="a b").count()


def test_a_document_without_text_is_reported(kb: KnowledgeBase) -> None:
    report = kb.ingest_documents([Document("e", "e.md", "  "), Document("f", "f.md", "full")])
    assert report.added == 1 and [f.path for f in report.failures] == ["e.md"]
