"""Which variants a knowledge base compares side by side (the Aero 300 and the Aero 500); pure.

The column headings (after the first column) of Markdown tables, kept when one heading heads a
column in tables of at least ``MIN_DOCUMENTS`` documents and its table has at least two such
columns. The Halcyon sample gives "Aero 300" and "Aero 500" (its specification and noise tables);
its shipping table's "Delivery time" and "Cost" head columns of one document only. The agent asks
a question that names none of them which one the customer has (``agent.which``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise

from knowledge.chunking import TABLE_RULE

MIN_DOCUMENTS = 2  # a heading must head a column in tables of this many documents
MAX_NAME_WORDS = 4  # a variant is a name ("Aero 300"), not a phrase


def infer_variants(chunks: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The variants a knowledge base compares, in the order first seen, from ``(document, text)``
    pairs (its chunks: each piece of a table starts with the table's header)."""
    documents: dict[str, set[str]] = defaultdict(set)
    tables: list[tuple[str, ...]] = []
    for source, text in chunks:
        lines = text.splitlines()
        for head, rule in pairwise(lines):
            if not head.lstrip().startswith("|") or not TABLE_RULE.match(rule.strip()):
                continue
            cells = [c.strip().replace("**", "") for c in head.strip().strip("|").split("|")]
            headings = tuple(c for c in cells[1:] if _name_like(c))
            tables.append(headings)
            for heading in headings:
                documents[heading].add(source)
    found: dict[str, None] = {}
    for headings in tables:
        shared = [h for h in headings if len(documents[h]) >= MIN_DOCUMENTS]
        if len(shared) >= 2:
            found.update(dict.fromkeys(shared))
    return tuple(found)


def _name_like(cell: str) -> bool:
    return bool(cell) and re.search(r"[A-Za-z]", cell) is not None and len(cell.split()) <= MAX_NAME_WORDS
