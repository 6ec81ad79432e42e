"""Rankers for the retrieval benchmarks, and how a ranker is scored.

A ranker is ``rank(query, depth) -> [doc_id]``, distinct documents best first: ours (the
knowledge base's hybrid, conversation-aware search), BM25 over whole documents queried with the
whole dialogue, and the naive LangChain stack (``common.naive_store``, last message only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from knowledge.evaluate import EvalQuery, percentile, summarize
from knowledge.types import Document

Ranker = Callable[[EvalQuery, int], list[str]]


def kb_ranker(kb: Any) -> Ranker:
    def rank(query: EvalQuery, depth: int) -> list[str]:
        return [h.doc_id for h in kb.search(query.query, k=depth, history=query.history)]

    return rank


def naive_ranker(store: Any) -> Ranker:
    def rank(query: EvalQuery, depth: int) -> list[str]:
        docs = store.similarity_search(query.query, k=depth)
        return list(dict.fromkeys(d.metadata["doc_id"] for d in docs))

    return rank


def bm25_dialogue_ranker(docs: Sequence[Document]) -> Ranker:
    """BM25 over whole documents, queried with every turn of the dialogue."""
    import bm25s

    from knowledge.text import tokenize

    index = bm25s.BM25()
    index.index([tokenize(d.text) or ["\x00"] for d in docs], show_progress=False)
    ids = [d.doc_id for d in docs]

    def rank(query: EvalQuery, depth: int) -> list[str]:
        text = " ".join([t for _, t in query.history] + [query.query])
        tokens = [t for t in tokenize(text) if t in index.vocab_dict]
        if not tokens:
            return []
        scores = index.get_scores(tokens)
        return [ids[i] for i in scores.argsort()[::-1][:depth]]

    return rank


def evaluate_ranker(ranker: Ranker, queries: Sequence[EvalQuery], depth: int = 10) -> dict[str, Any]:
    """hit@1, hit@5, MRR and the latency percentiles of ``ranker`` on ``queries``."""
    rankings: list[tuple[list[str], tuple[str, ...]]] = []
    latencies: list[float] = []
    for q in queries:
        started = time.perf_counter()
        ranked = ranker(q, depth)
        latencies.append(time.perf_counter() - started)
        rankings.append((ranked, q.gold))
    result = summarize(rankings, (1, 5))
    result["latency_p50_ms"] = round(1000 * percentile(latencies, 50), 2)
    result["latency_p95_ms"] = round(1000 * percentile(latencies, 95), 2)
    return result
