"""Chunking: structure respected, headings carried, sizes bounded, content-hash ids stable."""

from __future__ import annotations

import dataclasses

import pytest

from knowledge.chunking import chunk_document, clean_metadata, markdown_sections
from knowledge.types import Document

MD = """# Kettle

Intro about the kettle.

## Cleaning

Descale monthly. Use citric acid.

```sh
# not a heading inside a fence
descale --now
```

### Deep clean

Soak overnight.

Setext heading
--------------

Under the setext heading.
"""


def _doc(text: str = MD, **kw) -> Document:
    return Document("kettle", "kettle.md", text, title="Kettle", format="markdown", **kw)


def test_sections_follow_heading_levels() -> None:
    paths = [s.headings for s in markdown_sections(MD)]
    assert paths == [
        ("Kettle",),
        ("Kettle", "Cleaning"),
        ("Kettle", "Cleaning", "Deep clean"),
        ("Kettle", "Setext heading"),
    ]


def test_every_chunk_carries_its_heading_trail() -> None:
    chunks = chunk_document(_doc(), chunk_size=400, chunk_overlap=0)
    assert [c.text.split("\n\n")[0] for c in chunks] == [
        "Kettle",
        "Kettle > Cleaning",
        "Kettle > Cleaning > Deep clean",
        "Kettle > Setext heading",
    ]
    assert "# not a heading inside a fence" in chunks[1].text
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_title_is_prefixed_when_not_the_first_heading() -> None:
    doc = Document("faq", "faq.md", "## Shipping\n\nThree days.", title="FAQ", format="markdown")
    (chunk,) = chunk_document(doc)
    assert chunk.text == "FAQ > Shipping\n\nThree days."


def test_long_text_is_split_at_sentences_within_the_size() -> None:
    body = " ".join(f"Sentence number {i} is here." for i in range(60))
    chunks = chunk_document(Document("d", "d.txt", body), chunk_size=200, chunk_overlap=50)
    assert len(chunks) > 5
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    # Overlap: the next chunk opens with the last sentence of the previous one.
    last_sentence = chunks[0].text.rsplit(". ", 1)[-1]
    assert chunks[1].text.startswith(last_sentence.rstrip("."))


def test_a_long_table_is_cut_between_rows_each_piece_under_its_header() -> None:
    """A spec table longer than a chunk keeps its lines, and every piece repeats the header row,
    so "| Price | $199 | $329 |" in the second piece still says which column is which model."""
    rows = "\n".join(f"| Row {i} | {i} cm | {i + 1} cm |" for i in range(30))
    text = f"# Specs\n\n## Table\n\n| | Aero 300 | Aero 500 |\n|---|---|---|\n{rows}\n\nAfter the table."
    chunks = chunk_document(Document("s", "s.md", text, title="Specs", format="markdown"), 300, 100)
    tables = [c.text for c in chunks if "| Row" in c.text]
    assert len(tables) > 2
    for chunk in tables:
        table = chunk.split("\n\n")[1]  # the trail, the table, maybe the next paragraph
        assert table.startswith(
            "| | Aero 300 | Aero 500 |\n|---|---|---|\n| Row "
        )  # no overlap tail before it
        assert all(line.startswith("|") and line.endswith("|") for line in table.splitlines())
        assert len(chunk) <= 300 + len("Specs > Table\n\n")
    assert sorted(line for c in tables for line in c.splitlines() if "Row" in line) == sorted(
        rows.splitlines()
    )


def test_a_long_list_is_cut_between_items() -> None:
    items = "\n".join(f"- Item {i}: the purifier does thing number {i}." for i in range(20))
    chunks = chunk_document(Document("l", "l.md", f"# List\n\n{items}", format="markdown"), 200, 0)
    assert len(chunks) > 3
    for chunk in chunks:
        lines = chunk.text.split("\n\n", 1)[1].splitlines()
        assert all(line.startswith("- Item") and line.count("Item") == 1 for line in lines)


def test_a_word_longer_than_the_chunk_is_cut() -> None:
    chunks = chunk_document(Document("d", "d.txt", "x" * 450), chunk_size=200, chunk_overlap=0)
    assert [len(c.text) for c in chunks] == [200, 200, 50]


def test_ids_are_stable_and_follow_content() -> None:
    first = [c.chunk_id for c in chunk_document(_doc())]
    assert first == [c.chunk_id for c in chunk_document(_doc())]
    assert len(set(first)) == len(first)
    edited = chunk_document(_doc(MD.replace("Soak overnight.", "Soak for an hour.")))
    changed = [a != b.chunk_id for a, b in zip(first, edited, strict=True)]
    assert changed == [False, False, True, False]


def test_ids_change_with_metadata_and_source() -> None:
    base = chunk_document(_doc(metadata={"lang": "en"}))[0].chunk_id
    assert chunk_document(_doc(metadata={"lang": "fr"}))[0].chunk_id != base
    moved = dataclasses.replace(_doc(metadata={"lang": "en"}), source="other.md")
    assert chunk_document(moved)[0].chunk_id != base


def test_repeated_text_gets_distinct_ids() -> None:
    doc = Document("d", "d.txt", "Same paragraph.\n\nSame paragraph.")
    chunks = chunk_document(doc, chunk_size=16, chunk_overlap=0)
    assert len(chunks) == 2 and chunks[0].text == chunks[1].text
    assert chunks[0].chunk_id != chunks[1].chunk_id


def test_empty_document_has_no_chunks() -> None:
    assert chunk_document(Document("d", "d.txt", "  \n\n ")) == []


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        chunk_document(_doc(), chunk_size=100, chunk_overlap=100)


def test_metadata_is_made_chroma_safe() -> None:
    cleaned = clean_metadata({"a": 1, "b": None, "c": [1, 2], "d": {"x": "é"}, "e": True})
    assert cleaned == {"a": 1, "c": "[1, 2]", "d": '{"x": "é"}', "e": True}
