"""Retrieval metrics (pure) and the ``eval retrieval`` runner.

Invariants:
- Rankings are lists of distinct document ids, best first. hit@k is 1 when any gold id is among the
  first k; MRR is the reciprocal rank of the first gold id within the ranking depth (0 when absent).
  Averages are over the queries that have gold ids; the others are counted as skipped.
- A query is either a conversation (``turns`` ending on the customer: the last turn is the query,
  the earlier ones its history) or a plain ``question``.
- Input files are read strictly: the first bad line is an error naming ``file:line``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import LoaderError
from knowledge.loaders import iter_jsonl, parse_jsonl_row
from knowledge.types import Document, KnowledgeConfig

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase


def hit_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    return 1.0 if any(doc in gold for doc in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Collection[str]) -> float:
    for rank, doc in enumerate(ranked, start=1):
        if doc in gold:
            return 1.0 / rank
    return 0.0


def distinct(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def summarize(
    rankings: Sequence[tuple[Sequence[str], Collection[str]]], ks: Sequence[int] = (1, 5)
) -> dict[str, Any]:
    """hit@k for each k and MRR, averaged over the rankings that have gold ids."""
    scored = [(distinct(ranked), set(gold)) for ranked, gold in rankings if gold]
    n = len(scored)
    result: dict[str, Any] = {
        f"hit@{k}": (sum(hit_at_k(r, g, k) for r, g in scored) / n if n else 0.0) for k in sorted(set(ks))
    }
    result["mrr"] = sum(reciprocal_rank(r, g) for r, g in scored) / n if n else 0.0
    result["queries"] = n
    result["skipped"] = len(rankings) - n
    return result


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    history: tuple[tuple[str, str], ...]
    gold: tuple[str, ...]


def parse_query(row: dict[str, Any], where: str, lineno: int) -> EvalQuery:
    gold = row.get("gold_doc_ids", [])
    if not isinstance(gold, list):
        raise LoaderError(where, "'gold_doc_ids' must be a list", lineno)
    qid = str(row.get("id", lineno))
    if isinstance(row.get("turns"), list) and row["turns"]:
        turns = [_turn(t, where, lineno) for t in row["turns"]]
        if turns[-1][0] != "customer":
            raise LoaderError(where, "the conversation must end on a customer turn", lineno)
        return EvalQuery(qid, turns[-1][1], tuple(turns[:-1]), tuple(map(str, gold)))
    if isinstance(row.get("question"), str) and row["question"].strip():
        return EvalQuery(qid, row["question"], (), tuple(map(str, gold)))
    raise LoaderError(where, "expected 'turns' (a non-empty list) or 'question'", lineno)


def _turn(turn: Any, where: str, lineno: int) -> tuple[str, str]:
    if not isinstance(turn, dict) or not isinstance(turn.get("text"), str):
        raise LoaderError(where, "each turn needs 'role' and 'text'", lineno)
    return str(turn.get("role", "customer")), turn["text"]


def load_queries(path: Path, limit: int | None = None) -> list[EvalQuery]:
    queries: list[EvalQuery] = []
    for lineno, row in iter_jsonl(path):
        queries.append(parse_query(row, str(path), lineno))
        if limit is not None and len(queries) >= limit:
            break
    return queries


def load_documents(path: Path) -> list[Document]:
    """Every row of a JSON Lines documents file; the first bad row raises ``LoaderError``."""
    docs: list[Document] = []
    seen: set[str] = set()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            doc = parse_jsonl_row(raw, path.name, lineno, where=str(path))
            if doc.doc_id in seen:
                raise LoaderError(path, f"duplicate doc_id {doc.doc_id!r}", lineno)
            seen.add(doc.doc_id)
            docs.append(doc)
    return docs


def rank_queries(
    kb: KnowledgeBase,
    queries: Sequence[EvalQuery],
    depth: int,
    on_query: Callable[[], None] | None = None,
) -> tuple[list[list[str]], list[float]]:
    """Ranked doc ids for each query, and each search's latency in seconds."""
    rankings: list[list[str]] = []
    latencies: list[float] = []
    for q in queries:
        started = time.perf_counter()
        hits = kb.search(q.query, k=depth, history=q.history)
        latencies.append(time.perf_counter() - started)
        rankings.append([h.doc_id for h in hits])
        if on_query is not None:
            on_query()
    return rankings, latencies


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def evaluate(
    kb: KnowledgeBase, queries: Sequence[EvalQuery], *, k: int = 5, on_query: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Metrics of ``kb`` on ``queries``: hit@1, hit@5 (and hit@k), MRR@depth and latency percentiles."""
    depth = max(k, 10)
    rankings, latencies = rank_queries(kb, queries, depth, on_query)
    result = summarize([(r, q.gold) for r, q in zip(rankings, queries, strict=True)], (1, 5, k))
    result["depth"] = depth
    result["latency_p50_ms"] = round(1000 * percentile(latencies, 50), 2)
    result["latency_p95_ms"] = round(1000 * percentile(latencies, 95), 2)
    return result


def run_eval_retrieval(
    config: KnowledgeConfig,
    docs_path: Path,
    queries_path: Path,
    *,
    persist_dir: Path | None = None,
    k: int = 5,
    limit: int | None = None,
    progress: bool = False,
    embeddings: Any = None,
) -> dict[str, Any]:
    """Index ``docs_path`` (a fresh in-memory index unless ``persist_dir``), then evaluate ``queries_path``."""
    from knowledge.base import KnowledgeBase

    docs = load_documents(docs_path)
    queries = load_queries(queries_path, limit)
    # Without persist_dir the index lives in memory and vanishes with the KnowledgeBase.
    kb = KnowledgeBase(
        dataclasses.replace(config, persist_dir=persist_dir, chroma_url=None), embeddings=embeddings
    )
    try:
        report = kb.ingest_documents(docs, progress=progress)
        bar = _bar(len(queries), progress)
        result = evaluate(kb, queries, k=k, on_query=bar.update if bar else None)
        if bar:
            bar.close()
    finally:
        kb.close()
    result["documents"] = len(docs)
    result["chunks_added"] = report.chunks_added
    result["ingest_seconds"] = round(report.seconds, 2)
    return result


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="queries", unit="q", leave=False)
