"""Redaction of records: ``agent.pii`` (the one redaction policy) applied to every text before a
row is built. ``Redactor.warm`` runs the name model over many texts at once, several times faster
than one text at a time; the result is the same.

Invariant: PII never reaches a row. Turns, passages, corrections, alternative responses and
conversation ids are all redacted (an id holding PII is replaced by its hash). The one exception
is a value the company itself publishes in its documents (its support line or address): it is
kept, and counted, when the compiler is given those documents and ``keep_public`` holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from agent.pii import PiiSpan, find_pii, find_pii_many, replace_spans
from agent.prompt import Passage
from training.data.records import PassThroughRow, SourceConversation


class Redactor:
    """``training.pii.redact`` that counts what it replaced, by kind (for the manifest).

    ``public`` values are kept: contact details the company publishes in its own documents (the
    support line, its email address). They are not personal data, and replacing them would teach
    the model to answer "call [PHONE]" when the passage in front of it holds the real number.
    """

    def __init__(self, public: Iterable[str] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()
        self.public = frozenset(_public_key(v) for v in public)
        self._cache: dict[str, tuple[str, list[str], list[str]]] = {}
        self._spans: dict[str, list[PiiSpan]] = {}

    def warm(self, texts: Iterable[str]) -> None:
        """Detect PII in ``texts`` in batches, ahead of the calls that redact them."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache and t not in self._spans))
        self._spans.update(zip(todo, find_pii_many(todo), strict=True))

    def warm_conversations(self, conversations: Iterable[SourceConversation]) -> None:
        self.warm(text for conv in conversations for text in _texts(conv))

    def __call__(self, text: str) -> str:
        """``text`` redacted; counted per occurrence, computed once per distinct text."""
        if text not in self._cache:
            spans = self._spans.pop(text, None)
            spans = find_pii(text) if spans is None else spans
            keep = [s for s in spans if _public_key(s.value) in self.public]
            spans = [s for s in spans if s not in keep]
            redacted = replace_spans(text, spans) if spans else text
            self._cache[text] = (redacted, [s.kind for s in spans], [s.value for s in keep])
        redacted, kinds, kept = self._cache[text]
        self.counts.update(kinds)
        self.kept.update(kept)
        return redacted

    def passage(self, passage: Passage) -> Passage:
        title = passage.title and self(passage.title)
        return dataclasses.replace(passage, text=self(passage.text), title=title)

    @staticmethod
    def public_id(conversation_id: str) -> str:
        """The id written to rows: itself, or its hash when it holds PII (an email as id)."""
        if not find_pii(conversation_id):
            return conversation_id
        return f"redacted-{hashlib.sha256(conversation_id.encode()).hexdigest()[:12]}"

    def conversation(self, conv: SourceConversation) -> SourceConversation:
        """Every text of the conversation redacted, and its public id set."""
        return dataclasses.replace(
            conv,
            public_id=self.public_id(conv.id),
            turns=tuple((role, self(text)) for role, text in conv.turns),
            passages={i: tuple(map(self.passage, ps)) for i, ps in conv.passages.items()},
            context=tuple(map(self.passage, conv.context)),
            feedback={
                i: dataclasses.replace(f, correction=f.correction and self(f.correction))
                for i, f in conv.feedback.items()
            },
            alternatives={
                i: tuple(dataclasses.replace(a, text=self(a.text)) for a in alts)
                for i, alts in conv.alternatives.items()
            },
        )

    def row(self, item: PassThroughRow) -> PassThroughRow:
        def clean(value: Any) -> Any:
            if isinstance(value, list):
                return [{**m, "content": self(m["content"])} for m in value]
            return value

        row = {k: clean(v) for k, v in item.row.items()}
        return dataclasses.replace(
            item, row={**row, "conversation_id": self.public_id(row["conversation_id"])}
        )


def _texts(conv: SourceConversation) -> Iterator[str]:
    """Every text ``Redactor.conversation`` redacts."""
    yield from (text for _, text in conv.turns)
    for passage in [*(p for ps in conv.passages.values() for p in ps), *conv.context]:
        yield passage.text
        if passage.title:
            yield passage.title
    yield from (f.correction for f in conv.feedback.values() if f.correction)
    yield from (a.text for alts in conv.alternatives.values() for a in alts)


def _public_key(value: str) -> str:
    return " ".join(value.lower().split())


def public_values(docs: dict[str, Passage]) -> set[str]:
    """PII-shaped values in the company's own documents (see ``Redactor``)."""
    return {span.value for doc in docs.values() for span in find_pii(doc.text)}
