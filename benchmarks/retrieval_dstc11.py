"""DSTC11 retrieval: our hybrid, conversation-aware retrieval next to the naive LangChain stack.

All 4,299 knowledge documents are indexed. The 1,733 conversations are sorted by id and split in
two halves: the first was used to tune the retrieval knobs (the defaults of ``KnowledgeConfig``),
the second is the one reported. Each method ranks distinct documents; hit@k counts a conversation
when any of its gold documents is in the first k.

    python -m benchmarks.retrieval_dstc11            # ~10-20 min on 2 CPU cores
    python -m benchmarks.retrieval_dstc11 --limit 200 --skip-naive   # a quick look
    python -m benchmarks.retrieval_dstc11 --static   # + the static-embedding profile
    python -m benchmarks.retrieval_dstc11 --inferred --skip-naive --name retrieval_dstc11_inferred

``--inferred`` also runs ours with no ``entity_fields`` setting ("ours_inferred"): the index is
then kept in a temporary folder and reopened without the setting, so searches track the fields
inferred from the documents' metadata at ingest, read back from the index.

Writes benchmarks/results/retrieval_dstc11.json (or ``--name``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, naive_store, require_data, table, write_result
from benchmarks.rankers import bm25_dialogue_ranker, evaluate_ranker, kb_ranker, naive_ranker
from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.evaluate import load_documents, parse_query


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, help="conversations per half (default: all)")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive dense stack")
    parser.add_argument("--name", default="retrieval_dstc11", help="results file name")
    parser.add_argument(
        "--static",
        action="store_true",
        help="also the same code on static embeddings (embedding_model: static)",
    )
    parser.add_argument(
        "--inferred",
        action="store_true",
        help="also ours without any entity_fields setting (the fields inferred at ingest)",
    )
    args = parser.parse_args()
    if args.inferred:
        with tempfile.TemporaryDirectory(prefix="retrieval-dstc11-") as tmp:
            run(args, Path(tmp))
    else:
        run(args, None)


def run(args: argparse.Namespace, persist_dir: Path | None) -> None:
    """The benchmark; with ``persist_dir`` the index is kept there and reopened unconfigured."""
    docs, queries = load_split(args.limit)
    results: dict[str, dict[str, object]] = {}
    config = KnowledgeConfig(persist_dir=persist_dir, entity_fields=("entity_name",))
    kb = KnowledgeBase(config)
    started = time.perf_counter()
    report = kb.ingest_documents(docs)
    kb.snapshot()
    ours_ingest = time.perf_counter() - started
    results["ours"] = {name: evaluate_ranker(kb_ranker(kb), qs) for name, qs in queries.items()}
    results["ours"]["ingest_seconds"] = round(ours_ingest, 1)
    results["ours"]["chunks"] = report.chunks_added
    if persist_dir is not None:
        results["ours_inferred"] = inferred_profile(kb, queries, config)
    if args.static:
        results["ours_static"] = static_profile(docs, queries, config)

    bm25 = bm25_dialogue_ranker(docs)
    results["bm25_whole_dialogue"] = {name: evaluate_ranker(bm25, qs) for name, qs in queries.items()}

    if not args.skip_naive:
        store, naive_seconds = naive_store(docs)
        results["naive_langchain_chroma_minilm"] = {
            name: evaluate_ranker(naive_ranker(store), qs) for name, qs in queries.items()
        }
        results["naive_langchain_chroma_minilm"]["ingest_seconds"] = round(naive_seconds, 1)
    kb.close()
    write_result(args.name, summarise(results, docs, queries, config))


def load_split(limit: int | None) -> tuple[list, dict[str, list]]:
    """The documents, and the conversations sorted by id and halved (at most ``limit`` per half)."""
    docs = load_documents(require_data("dstc11", "knowledge_docs.jsonl"))
    rows = [json.loads(line) for line in require_data("dstc11", "conversations.jsonl").open(encoding="utf-8")]
    rows.sort(key=lambda r: r["id"])
    half = len(rows) // 2
    split = {"tune": rows[:half], "report": rows[half:]}
    queries = {
        name: [parse_query(r, name, i) for i, r in enumerate(part[:limit])] for name, part in split.items()
    }
    return docs, queries


def summarise(
    results: dict[str, dict[str, object]], docs: list, queries: dict[str, list], config: KnowledgeConfig
) -> dict[str, object]:
    """Print the table and the comparisons; the JSON summary to write."""
    header = ["method", "tune hit@5", "report hit@1", "report hit@5", "report MRR", "p50 ms", "p95 ms"]
    rows_out = [
        [
            name,
            r["tune"]["hit@5"],
            r["report"]["hit@1"],
            r["report"]["hit@5"],
            r["report"]["mrr"],
            r["report"]["latency_p50_ms"],
            r["report"]["latency_p95_ms"],
        ]
        for name, r in results.items()
    ]
    print(table(rows_out, header))
    summary: dict[str, object] = {
        "benchmark": "retrieval_dstc11",
        "documents": len(docs),
        "conversations": {name: len(qs) for name, qs in queries.items()},
        "split": "conversations sorted by id; first half tunes, second half is reported",
        "config": {"entity_fields": list(config.entity_fields), "dense_weight": config.dense_weight},
        "machine": machine(),
        "results": results,
    }
    inferred = results.get("ours_inferred")
    if inferred:
        gap = inferred["report"]["hit@5"] - results["ours"]["report"]["hit@5"]  # type: ignore[index]
        summary["report_hit@5_inferred_minus_configured"] = round(gap, 4)
        print(f"inferred entity fields: {inferred['entity_fields']}; report-half hit@5 gap: {gap:+.4f}")
    naive = results.get("naive_langchain_chroma_minilm")
    if naive:
        ratio = results["ours"]["report"]["hit@5"] / max(naive["report"]["hit@5"], 1e-9)  # type: ignore[index]
        summary["report_hit@5_ratio_vs_naive"] = round(ratio, 2)
        print(f"report-half hit@5: ours / naive = {ratio:.2f}x")
    return summary


def inferred_profile(kb: KnowledgeBase, queries: dict, config: KnowledgeConfig) -> dict[str, object]:
    """Ours on the same (persistent) index, reopened with no ``entity_fields`` setting."""
    unset = dataclasses.replace(config, entity_fields=())
    reopened = KnowledgeBase(unset, embeddings=kb.embeddings)
    fields, origin = reopened.entity_fields()
    out: dict[str, object] = {name: evaluate_ranker(kb_ranker(reopened), qs) for name, qs in queries.items()}
    out |= {"entity_fields": list(fields), "entity_fields_origin": origin}
    reopened.close()
    return out


def static_profile(docs: list, queries: dict, config: KnowledgeConfig) -> dict[str, object]:
    """The same retrieval on static embeddings; the one-time distillation is timed apart."""
    from knowledge.static import StaticEmbeddings

    embeddings = StaticEmbeddings()
    started = time.perf_counter()
    embeddings.load()  # distils on the first run, then loads the cached table
    load_s = time.perf_counter() - started
    kb = KnowledgeBase(
        dataclasses.replace(config, embedding_model="static", persist_dir=None), embeddings=embeddings
    )
    started = time.perf_counter()
    report = kb.ingest_documents(docs)
    kb.snapshot()
    ingest_s = time.perf_counter() - started
    out: dict[str, object] = {name: evaluate_ranker(kb_ranker(kb), qs) for name, qs in queries.items()}
    out |= {"ingest_seconds": round(ingest_s, 1), "chunks": report.chunks_added}
    out["table_load_or_distill_seconds"] = round(load_s, 1)
    kb.close()
    return out


if __name__ == "__main__":
    main()
