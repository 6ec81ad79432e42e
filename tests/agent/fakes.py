"""Test doubles: a keyword knowledge base and a generator that leaks its whole prompt."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from agent.generator import ScriptedGenerator
from knowledge import Hit


class KeywordKnowledge:
    """Scores documents by shared words with the question (and the history's words)."""

    def __init__(self, docs: dict[str, str]):
        self.docs = docs
        self.queries: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    def count(self) -> int:
        return len(self.docs)

    def search(self, query: str, *, k: int = 5, history: Sequence[tuple[str, str]] = ()) -> list[Hit]:
        self.queries.append((query, tuple(history)))
        words = {w.strip("?.,!").lower() for w in query.split() if len(w) > 3}
        hits = []
        for doc_id, text in self.docs.items():
            shared = len(words & {w.strip("?.,!").lower() for w in text.split()})
            if shared:
                rel = min(1.0, shared / max(1, len(words)))
                hits.append(Hit(doc_id, f"{doc_id}.md", text, float(shared), f"{doc_id}#0", rel))
        return sorted(hits, key=lambda h: -h.score)[:k]


class LeakyGenerator(ScriptedGenerator):
    """The worst model imaginable: it answers with its entire prompt, system message first."""

    def stream(self, messages: Sequence[dict[str, str]], options: Any, cancel: Any = None) -> Iterator[str]:
        self.enqueue(" ".join(m["content"] for m in messages))
        yield from super().stream(messages, options, cancel)
