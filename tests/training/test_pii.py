"""PII redaction on the fixed labelled corpus (``pii_corpus.py``): recall, false positives, and
the properties the compiler relies on (typed placeholders, idempotence, validators).

Measured (issue 21, ``python -m tests.training.test_pii``): structured identifiers 273/273
(recall 1.0) with no false positive; person names 35/36 (recall 0.97; the miss is all lower case
with no cue: "hi its emily johnson"), precision 1.0 on the corpus. The corpus has few product
names; on the sample company's conversations, which hold no person at all, the name layer
reports 6 spans ("Aria", "Slate Grey", "Visa", "Best Buy"), a test below keeps it there."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

import agent.pii
from agent.errors import ConfigError
from tests.conftest import REPO
from tests.training.pii_corpus import NAME_KINDS, NEGATIVES, POSITIVES
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


def _figures() -> dict[str, dict[str, float]]:
    """Recall and precision of the structured layer and of the name layer over the corpus."""
    planted, found, _, false_positives = _evaluate()
    figures = {}
    for layer, kinds in (("structured", set(planted) - NAME_KINDS), ("names", set(NAME_KINDS))):
        tp = sum(found[k] for k in kinds)
        fp = sum(1 for f in false_positives if f.split(" ", 1)[0] in kinds)
        figures[layer] = {
            "planted": sum(planted[k] for k in kinds),
            "found": tp,
            "false_positives": fp,
            "recall": tp / sum(planted[k] for k in kinds),
            "precision": tp / (tp + fp),
        }
    return figures


def test_corpus_is_big_and_varied_enough():
    planted = Counter(kind for _, pii in POSITIVES for kind, _ in pii)
    assert sum(planted.values()) >= 300
    for kind in ("PHONE", "CARD", "EMAIL", "IBAN", "ADDRESS", "PERSON", "POSTCODE"):
        assert planted[kind] >= 25, kind
    for kind in ("DOB", "CVV"):
        assert planted[kind] >= 20, kind
    assert len(NEGATIVES) >= 90


def test_recall_on_the_labelled_corpus():
    planted, found, misses, _ = _evaluate()
    structured = set(planted) - NAME_KINDS
    recall = sum(found[k] for k in structured) / sum(planted[k] for k in structured)
    assert recall >= 0.99, "\n".join(misses)
    for kind in structured:
        assert found[kind] / planted[kind] >= 0.95, (kind, misses)


def test_person_names_recall_and_precision():
    names = _figures()["names"]
    assert names["recall"] >= 0.9, names
    assert names["precision"] >= 0.9, names


def test_no_false_positives_on_prices_dates_quantities_versions():
    _, _, _, false_positives = _evaluate()
    assert [f for f in false_positives if f.split(" ", 1)[0] not in NAME_KINDS] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +44 20 7946 0958 or mail jane.doe+orders@gmail.com", "Call [PHONE] or mail [EMAIL]"),
        ("Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00.", "Card [CARD], IBAN [IBAN]."),
        ("Ship to 221B Baker Street, please", "Ship to [ADDRESS], please"),
        ("I paid $1,299.00 on 2024-03-15 for order #48213 (firmware v2.10.3)", None),
        # the examples, which passed through unredacted before
        ("Hi, I'm John Smith", "Hi, I'm [PERSON]"),
        ("My name is Maria Garcia, DOB 14/03/1985", "My name is [PERSON], DOB [DOB]"),
        ("London NW1 6XE", "London [POSTCODE]"),
        ("SW1A 1AA", "[POSTCODE]"),
        ("cvv 123", "cvv [CVV]"),
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


def test_few_product_words_pass_for_names_in_real_support_chat():
    """The sample company's conversations hold no person; Title Case product, payment and UI
    words ("Klarna", "Allow Turbo", "Apple Pay") must not become [PERSON] (19 did before the
    known-name check)."""
    conversations = (REPO / "agent" / "sample" / "conversations.jsonl").read_text().splitlines()
    texts = [turn["text"] for line in conversations for turn in json.loads(line)["turns"]]
    names = [s.value for spans in agent.pii.find_pii_many(texts) for s in spans if s.kind == "PERSON"]
    assert len(names) <= 6, names


def test_batched_detection_matches_one_at_a_time():
    texts = [text for text, _ in POSITIVES[::5]] + NEGATIVES[::5]
    assert list(agent.pii.find_pii_many(texts)) == [find_pii(t) for t in texts]


def test_a_missing_ner_model_is_a_config_error_naming_the_install(monkeypatch):
    agent.pii._ner.cache_clear()
    monkeypatch.setattr(agent.pii, "NER_PACKAGE", "no_such_model_package")
    try:
        with pytest.raises(ConfigError, match="pip install"):
            redact("Hi, I'm John Smith")
    finally:
        monkeypatch.undo()
        agent.pii._ner.cache_clear()


def test_training_pii_is_the_agent_policy():
    import training.pii

    assert training.pii.redact is agent.pii.redact


if __name__ == "__main__":  # the corpus figures quoted in the module docstring
    import json

    print(json.dumps(_figures(), indent=1))
