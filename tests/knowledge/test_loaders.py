"""Loaders: every format, folders and globs, and bad documents reported by path with a reason."""

from __future__ import annotations

from pathlib import Path

from knowledge.chunking import chunk_document
from knowledge.loaders import FileRef, discover, load_file

from .conftest import minimal_pdf, write_jsonl


def _load(path: Path, source: str | None = None):
    return load_file(FileRef(path, source or path.name))


def test_markdown_keeps_headings_and_title(docs_dir: Path) -> None:
    result = _load(docs_dir / "warranty.md")
    (doc,) = result.documents
    assert (doc.doc_id, doc.source, doc.title, doc.format) == (
        "warranty",
        "warranty.md",
        "Warranty",
        "markdown",
    )
    trails = [c.text.split("\n\n")[0] for c in chunk_document(doc, 200, 0)]
    assert "Warranty > Claims" in trails and "Warranty > Exclusions" in trails


def test_markdown_front_matter_gives_title(tmp_path: Path) -> None:
    path = tmp_path / "intro.md"
    path.write_text("---\ntitle: Getting started\n---\nPlug the kettle in.\n", encoding="utf-8")
    (doc,) = _load(path).documents
    assert doc.title == "Getting started"
    assert doc.text == "Plug the kettle in."


def test_text_file(docs_dir: Path) -> None:
    (doc,) = _load(docs_dir / "guides" / "descaling.txt", "guides/descaling.txt").documents
    assert (doc.doc_id, doc.source, doc.format) == ("descaling", "guides/descaling.txt", "text")
    assert "citric acid" in doc.text


def test_html_drops_scripts_and_keeps_structure(docs_dir: Path) -> None:
    (doc,) = _load(docs_dir / "guides" / "leds.html").documents
    assert doc.title == "LED guide"
    assert "alert" not in doc.text and "color: red" not in doc.text
    assert "# LED indicators" in doc.text and "## Blue LED" in doc.text
    assert "Steady blue: keeping warm." in doc.text
    chunk = chunk_document(doc, 500, 0)[-1]
    assert chunk.text.startswith("LED guide > LED indicators > Blue LED")


def test_pdf_text_is_extracted(docs_dir: Path) -> None:
    (doc,) = _load(docs_dir / "manual.pdf").documents
    assert doc.doc_id == "manual"
    assert "1.7 litres" in doc.text


def test_corrupt_pdf_is_reported_with_reason(docs_dir: Path) -> None:
    result = _load(docs_dir / "broken.pdf")
    assert result.documents == []
    (failure,) = result.failures
    assert failure.path.endswith("broken.pdf")
    assert "not a readable PDF" in failure.reason


def test_pdf_without_text_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "blank.pdf"
    path.write_bytes(minimal_pdf(""))
    (failure,) = _load(path).failures
    assert "no extractable text" in failure.reason


def test_invalid_utf8_is_reported_with_offset(docs_dir: Path) -> None:
    (failure,) = _load(docs_dir / "latin1.txt").failures
    assert failure.path.endswith("latin1.txt")
    assert "not valid UTF-8" in failure.reason and "offset 3" in failure.reason


def test_jsonl_ids_metadata_and_sources(docs_dir: Path) -> None:
    result = _load(docs_dir / "faq.jsonl")
    assert result.failures == []
    first, second = result.documents
    assert (first.doc_id, first.source, first.file) == ("faq-1", "faq.jsonl#faq-1", "faq.jsonl")
    assert first.metadata == {"topic": "shipping", "tags": ["a", "b"]}
    assert (second.doc_id, second.source) == ("7", "faq.jsonl#7")
    assert second.metadata == {"topic": "returns", "rating": 4.5}
    # Chroma only stores scalars: lists are kept as JSON text.
    assert chunk_document(first)[0].metadata["tags"] == '["a", "b"]'


def test_jsonl_bad_lines_are_reported_by_line_and_the_rest_loads(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(
        b'{"id": "ok-1", "text": "fine"}\n'
        b"{not json}\n"
        b'{"id": "no-text"}\n'
        b'{"text": "no id"}\n'
        b"\n"
        b'{"id": "ok-1", "text": "duplicate"}\n'
        b'{"id": "bad-bytes", "text": "caf\xe9"}\n'
        b'["a list"]\n'
        b'{"doc_id": "ok-2", "id": "other", "text": "doc_id wins", "source": "crm"}\n'
    )
    result = _load(path)
    assert [d.doc_id for d in result.documents] == ["ok-1", "ok-2"]
    assert result.documents[1].metadata == {"id": "other", "meta_source": "crm"}
    reasons = {f.path.rsplit(":", 1)[1]: f.reason for f in result.failures}
    assert set(reasons) == {"2", "3", "4", "6", "7", "8"}
    assert "invalid JSON" in reasons["2"]
    assert "text" in reasons["3"] and "doc_id" in reasons["4"]
    assert "duplicate" in reasons["6"] and "UTF-8" in reasons["7"] and "object" in reasons["8"]
    assert all(f.path.startswith(str(path)) for f in result.failures)


def test_folder_is_recursive_and_skips_hidden_and_unsupported(docs_dir: Path) -> None:
    refs, failures = discover([docs_dir])
    assert failures == []
    assert sorted(r.source for r in refs) == [
        "broken.pdf",
        "faq.jsonl",
        "guides/descaling.txt",
        "guides/leds.html",
        "latin1.txt",
        "manual.pdf",
        "warranty.md",
    ]


def test_globs_and_missing_paths(docs_dir: Path, tmp_path: Path) -> None:
    refs, failures = discover([f"{docs_dir}/**/*.txt", docs_dir / "warranty.md", tmp_path / "nope.md"])
    assert sorted(r.source for r in refs) == ["guides/descaling.txt", "latin1.txt", "warranty.md"]
    assert [f.reason for f in failures] == ["no such file or directory"]
    assert failures[0].path.endswith("nope.md")


def test_same_file_given_twice_is_loaded_once(docs_dir: Path) -> None:
    refs, _ = discover([docs_dir / "warranty.md", docs_dir / "warranty.md"])
    assert len(refs) == 1


def test_unsupported_file_given_directly_is_reported(docs_dir: Path) -> None:
    (failure,) = _load(docs_dir / "notes.csv").failures
    assert "unsupported file type .csv" in failure.reason


def test_empty_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.write_text("\n\n", encoding="utf-8")
    (failure,) = _load(path).failures
    assert "no text" in failure.reason


def test_jsonl_helper_writes_valid_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"id": "é", "text": "ü"}])
    (doc,) = _load(path).documents
    assert (doc.doc_id, doc.text) == ("é", "ü")
