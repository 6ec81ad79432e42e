"""PII redaction on the fixed labelled corpus (``pii_corpus.py``): recall, false positives, and
the properties the compiler relies on (typed placeholders, idempotence, validators)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from tests.training.pii_corpus import NEGATIVES, POSITIVES
from training.pii import KINDS, PiiSpan, find_pii, luhn_ok, redact


def _evaluate() -> tuple[Counter[str], Counter[str], list[str], list[str]]:
    """Per-kind planted and found counts, misses, and false positives over the whole corpus."""
    planted, found, misses, false_positives = Counter(), Counter(), [], []
    for text, pii in POSITIVES:
        spans = find_pii(text)
        matched: set[PiiSpan] = set()
        for kind, value in pii:
            start = text.index(value)
            end = start + len(value)
            planted[kind] += 1
            cover = [s for s in spans if s.start <= start and s.end >= end and s.kind == kind]
            if cover:
                found[kind] += 1
                matched.add(cover[0])
            else:
                misses.append(f"{kind} {value!r} in {text!r}: found {[(s.kind, s.value) for s in spans]}")
        false_positives += [f"{s.kind} {s.value!r} in {text!r}" for s in spans if s not in matched]
    for text in NEGATIVES:
        false_positives += [f"{s.kind} {s.value!r} in {text!r}" for s in find_pii(text)]
    return planted, found, misses, false_positives


def test_corpus_is_big_and_varied_enough():
    planted = Counter(kind for _, pii in POSITIVES for kind, _ in pii)
    assert sum(planted.values()) >= 150
    for kind in ("PHONE", "CARD", "EMAIL", "IBAN", "ADDRESS"):
        assert planted[kind] >= 25, kind
    assert len(NEGATIVES) >= 60


def test_recall_on_the_labelled_corpus():
    planted, found, misses, _ = _evaluate()
    recall = sum(found.values()) / sum(planted.values())
    assert recall >= 0.99, "\n".join(misses)
    for kind in planted:
        assert found[kind] / planted[kind] >= 0.95, (kind, misses)


def test_no_false_positives_on_prices_dates_quantities_versions():
    _, _, _, false_positives = _evaluate()
    assert false_positives == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +44 20 7946 0958 or mail jane.doe+orders@gmail.com", "Call [PHONE] or mail [EMAIL]"),
        ("Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00.", "Card [CARD], IBAN [IBAN]."),
        ("Ship to 221B Baker Street, please", "Ship to [ADDRESS], please"),
        ("I paid $1,299.00 on 2024-03-15 for order #48213 (firmware v2.10.3)", None),
    ],
)
def test_redact_uses_typed_placeholders(text, expected):
    assert redact(text) == (expected if expected is not None else text)


def test_redaction_is_idempotent_and_spans_do_not_overlap():
    for text, _ in POSITIVES:
        once = redact(text)
        assert redact(once) == once
        spans = find_pii(text)
        assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
        assert all(s.kind in KINDS and text[s.start : s.end] == s.value for s in spans)


def test_validators_reject_checksum_failures():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert find_pii("card 4111 1111 1111 1112") == []  # Luhn-invalid: an order or tracking number
    assert find_pii("IBAN GB82 WEST 1234 5698 7654 33") == []  # mod-97 fails
    assert [s.kind for s in find_pii("IBAN GB82WEST12345698765432")] == ["IBAN"]
