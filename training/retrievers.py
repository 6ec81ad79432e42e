"""Retrievers for compiling and evaluating: (question, history) -> passages.

``bm25_retriever`` searches a documents file with BM25 (no index to build beforehand);
``knowledge_retriever`` wraps the knowledge index. Both return ``agent.prompt.Passage`` objects,
the shape the compiler and the prompt builder take, so a passage reads the same whichever
retriever found it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from agent.prompt import Passage
from training.data import Retriever, focus_passage

if TYPE_CHECKING:
    from pathlib import Path

    from knowledge import KnowledgeBase


def bm25_retriever(docs: Mapping[str, Passage], k: int = 4, chunk_chars: int = 900) -> Retriever:
    """Conversation-aware BM25 over ``docs`` cut into ~``chunk_chars`` windows: the query is the
    question plus the last turns, because follow-ups point back ("their bathrooms")."""
    import bm25s

    chunks: list[Passage] = []
    for doc in docs.values():
        chunks.extend(_windows(doc, chunk_chars) if len(doc.text) > chunk_chars else [doc])
    corpus = [f"{c.title or ''} {c.text}" for c in chunks]
    index = bm25s.BM25()
    index.index(bm25s.tokenize(corpus, show_progress=False), show_progress=False)

    def retrieve(question: str, history: Sequence[tuple[str, str]]) -> list[Passage]:
        context = " ".join(text for _, text in list(history)[-4:])
        query = f"{question} {question} {context}"
        tokens = bm25s.tokenize([query], show_progress=False)
        ids, _scores = index.retrieve(tokens, k=min(k, len(chunks)), show_progress=False)
        return [focus_passage(chunks[int(i)], question, chunk_chars) for i in ids[0]]

    return retrieve


def _windows(doc: Passage, size: int) -> list[Passage]:
    paragraphs = [p for p in doc.text.split("\n") if p.strip()]
    windows, current = [], ""
    for paragraph in paragraphs:
        if current and len(current) + len(paragraph) > size:
            windows.append(current)
            current = ""
        current = f"{current}\n{paragraph}" if current else paragraph
    windows.append(current)
    return [
        Passage(doc.doc_id, doc.source, text, doc.title, chunk_id=f"{doc.doc_id}#{i}")
        for i, text in enumerate(windows)
    ]


def knowledge_retriever(
    kb: KnowledgeBase,
    k: int = 4,
    candidates: int = 0,
    one_per_page: bool = False,
    keep_retrieved: int = 0,
    ranker: Path | None = None,
) -> Retriever:
    """A ``knowledge.KnowledgeBase`` as a retriever. With ``candidates > k`` it shows what the
    agent shows (``agent.knowledge.ranked_search``, re-ranked by ``ranker`` when given, as
    ``agent.ranker`` serves it): evaluations and the gate then judge a model on the passages it
    will be served with."""
    from agent.grounding import CachedEmbed
    from agent.knowledge import ranked_search

    embed = CachedEmbed(kb.embed) if candidates > k and getattr(kb, "embed", None) is not None else None
    if ranker is not None and candidates > k:
        from agent.ranker import load_ranker

        embed = CachedEmbed(load_ranker(str(ranker)))

    def retrieve(question: str, history: Sequence[tuple[str, str]]) -> list[Passage]:
        hits = ranked_search(
            kb,
            question,
            list(history),
            k=k,
            candidates=candidates,
            embed=embed,
            one_per_page=one_per_page,
            keep_retrieved=keep_retrieved,
        )
        return [Passage(h.doc_id, h.source, h.text, h.title, float(h.score), h.chunk_id) for h in hits]

    return retrieve
