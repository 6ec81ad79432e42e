"""MTRAG retrieval: the same code and defaults as for DSTC11 (no entity fields: MTRAG passages carry
none), next to the naive LangChain stack.

Every task's ``contexts`` become documents (de-duplicated by ``doc_id``); a task's gold documents are
its own contexts; tasks without contexts are skipped. No tuning was done on MTRAG.

    python -m benchmarks.retrieval_mtrag      # ~5-15 min on 2 CPU cores

Writes benchmarks/results/retrieval_mtrag.json.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.common import machine, naive_store, require_data, table, write_result
from benchmarks.rankers import bm25_dialogue_ranker, evaluate_ranker, kb_ranker, naive_ranker
from knowledge import Document, KnowledgeBase, KnowledgeConfig
from knowledge.evaluate import EvalQuery, parse_query


def load(limit: int | None) -> tuple[list[Document], list[EvalQuery]]:
    path = require_data("mtrag", "conversations.jsonl")
    docs: dict[str, Document] = {}
    queries: list[EvalQuery] = []
    for lineno, line in enumerate(path.open(encoding="utf-8"), start=1):
        task = json.loads(line)
        for ctx in task["contexts"]:
            docs.setdefault(
                ctx["doc_id"], Document(ctx["doc_id"], f"mtrag#{ctx['doc_id']}", ctx["text"].strip())
            )
        if task["contexts"]:
            gold = list(dict.fromkeys(c["doc_id"] for c in task["contexts"]))
            queries.append(
                parse_query({"id": task["id"], "turns": task["turns"], "gold_doc_ids": gold}, "mtrag", lineno)
            )
    return list(docs.values()), queries[:limit]


def ours(kb: KnowledgeBase, docs: list, queries: list) -> dict[str, object]:
    """Ingest (timed), then evaluate our retrieval; the base is closed afterwards."""
    started = time.perf_counter()
    report = kb.ingest_documents(docs)
    kb.snapshot()
    ingest_s = time.perf_counter() - started
    result = evaluate_ranker(kb_ranker(kb), queries)
    result.update(ingest_seconds=round(ingest_s, 1), chunks=report.chunks_added)
    kb.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, help="tasks to evaluate (default: all with contexts)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--static", action="store_true", help="also the same code on static embeddings")
    parser.add_argument("--name", default="retrieval_mtrag", help="results file name")
    args = parser.parse_args()
    docs, queries = load(args.limit)

    results: dict[str, dict[str, object]] = {}
    results["ours"] = ours(KnowledgeBase(KnowledgeConfig()), docs, queries)
    if args.static:
        from knowledge.static import StaticEmbeddings

        static_kb = KnowledgeBase(KnowledgeConfig(embedding_model="static"), embeddings=StaticEmbeddings())
        results["ours_static"] = ours(static_kb, docs, queries)
    results["bm25_whole_dialogue"] = evaluate_ranker(bm25_dialogue_ranker(docs), queries)
    if not args.skip_naive:
        store, seconds = naive_store(docs)
        results["naive_langchain_chroma_minilm"] = evaluate_ranker(naive_ranker(store), queries)
        results["naive_langchain_chroma_minilm"]["ingest_seconds"] = round(seconds, 1)

    header = ["method", "hit@1", "hit@5", "MRR", "p50 ms", "p95 ms"]
    rows = [
        [name, r["hit@1"], r["hit@5"], r["mrr"], r["latency_p50_ms"], r["latency_p95_ms"]]
        for name, r in results.items()
    ]
    print(table(rows, header))
    summary: dict[str, object] = {
        "benchmark": "retrieval_mtrag",
        "documents": len(docs),
        "queries": len(queries),
        "machine": machine(),
        "results": results,
    }
    naive = results.get("naive_langchain_chroma_minilm")
    if naive:
        summary["hit@5_ratio_vs_naive"] = round(results["ours"]["hit@5"] / max(naive["hit@5"], 1e-9), 2)  # type: ignore[operator]
    write_result(args.name, summary)


if __name__ == "__main__":
    main()
