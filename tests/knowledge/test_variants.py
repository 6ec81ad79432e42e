"""Variants inferred from the tables the documents compare them in (``knowledge.variants``)."""

from __future__ import annotations

from knowledge.variants import infer_variants

SPECS = "| | Aero 300 | Aero 500 |\n|---|---|---|\n| Price | $199 | $329 |\n| Weight | 4.8 kg | 6.9 kg |"
NOISE = "| Mode | Aero 300 | Aero 500 |\n|---|---|---|\n| Sleep | 22 dB | 20 dB |"
SHIPPING = "| Destination | Method | Cost |\n|---|---|---|\n| Canada | Standard | $12 |"


def test_headings_that_head_columns_in_two_documents_are_variants() -> None:
    chunks = [("specs", SPECS), ("noise", "Intro text.\n\n" + NOISE), ("shipping", SHIPPING)]
    assert infer_variants(chunks) == ("Aero 300", "Aero 500")


def test_one_documents_tables_name_no_variants() -> None:
    # Two pieces of one table (each starts with its header) are still one document's headings.
    assert infer_variants([("specs", SPECS), ("specs", SPECS), ("shipping", SHIPPING)]) == ()


def test_attribute_headings_shared_by_two_documents_are_not_variants_alone() -> None:
    other = "| Item | Cost |\n|---|---|\n| Cable | $5 |"
    # "Cost" heads a column in two documents, but its tables have no second such column.
    assert infer_variants([("shipping", SHIPPING), ("parts", other)]) == ()


def test_text_without_tables_names_no_variants() -> None:
    assert infer_variants([("a", "Aero 300 | Aero 500 is not a table"), ("b", "Plain text.")]) == ()
