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


def test_unchanged_files_are_skipped_without_loading(make_kb, docs_dir: Path, monkeypatch) -> None:
    import knowledge.base as base

    kb = make_kb()
    first = kb.ingest([docs_dir])
    loaded: list[str] = []
    real_load = base.load_file

    def counting_load(ref):
        loaded.append(Path(ref.path).name)
        return real_load(ref)

    monkeypatch.setattr(base, "load_file", counting_load)
    again = kb.ingest([docs_dir])
    # Only the two unreadable files are read again (they never count as ingested complete).
    assert sorted(loaded) == ["broken.pdf", "latin1.txt"] and again.failed == 2
    assert (again.unchanged, again.chunks_unchanged, again.chunks_added) == (6, first.chunks_added, 0)

    # A changed file is loaded again, alone; the others stay skipped.
    loaded.clear()
    write_jsonl(docs_dir / "faq.jsonl", [{"doc_id": "faq-1", "text": "Shipping takes two days."}])
    changed = kb.ingest([docs_dir])
    assert sorted(loaded) == ["broken.pdf", "faq.jsonl", "latin1.txt"]
    assert (changed.updated, changed.removed, changed.unchanged) == (1, 1, 4)
    assert "two days" in kb.search("how long does shipping take", k=1)[0].text


def test_the_skip_never_hides_a_removal_or_a_replacement(make_kb, docs_dir: Path) -> None:
    kb = make_kb()
    kb.ingest([docs_dir])
    total = kb.count()
    # A row removed by hand comes back on the next ingest of its (unchanged) file.
    assert kb.remove("faq.jsonl#7") == 1
    restored = kb.ingest([docs_dir])
    assert restored.added == 1 and kb.count() == total
    # So does a document that a caller replaced through ingest_documents.
    kb.ingest_documents([Document("warranty", "warranty.md", "Replaced by hand.", file="warranty.md")])
    assert kb.ingest([docs_dir]).updated == 1
    assert "two-year warranty" in " ".join(_texts(kb))
    kb.close()
    # Other chunking settings turn the same bytes into other chunks: nothing is skipped.
    finer = make_kb(chunk_size=40, chunk_overlap=0)
    report = finer.ingest([docs_dir])
    assert report.chunks_added > 0 and report.chunks_removed > 0 and finer.count() > total


def test_words_are_every_word_the_documents_have_and_follow_the_index(make_kb, tmp_path: Path) -> None:
    """``KnowledgeBase.words``: what the help pages name anywhere (the agent tells a thing they
    never mention from one the shown passages leave out); a new document adds its words."""
    docs = tmp_path / "words"
    docs.mkdir()
    (docs / "safety.md").write_text("# Safety\n\n## E6: Tip-Over Protection\n\nSet it upright.\n")
    kb = make_kb()
    kb.ingest([docs])
    words = kb.words()
    assert {"tip-over", "protection", "upright", "e6"} <= words and "widget" not in words
    assert kb.words() is words  # computed once per version of the index
    (docs / "app.md").write_text("# App\n\nAdd the widget to your home screen.\n")
    kb.ingest([docs])
    assert "widget" in kb.words()


def test_cased_names_are_the_words_the_documents_write_capitalised_and_follow_the_index(
    make_kb, tmp_path: Path
) -> None:
    """``KnowledgeBase.cased``: how the agent reads "what does e6 mean" (``agent.written``)."""
    docs = tmp_path / "cased"
    docs.mkdir()
    (docs / "safety.md").write_text(
        "# Safety\n\n## Tip-Over\n\nThe Aero shows E6 when tilted. Set it upright.\n"
    )
    kb = make_kb()
    kb.ingest([docs])
    cased = kb.cased()
    assert cased == {"e6": "E6"}  # "Aero" is written capitalised once: not read as a name yet
    assert kb.cased() is cased  # computed once per version of the index
    (docs / "app.md").write_text(
        "# App\n\nPair the Aero with the app, name the Aero, then open the Aero settings.\n"
    )
    kb.ingest([docs])
    assert kb.cased() == {"e6": "E6", "aero": "Aero"}
