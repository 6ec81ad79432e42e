"""DSTC11 ingestion speed: our ingest next to the naive LangChain stack, then re-ingest and query latency.

- naive: ``Chroma.from_documents(docs, HuggingFaceEmbeddings(<packaged MiniLM>))`` into a persistent
  temporary directory (model loading included, as in ours).
- ours: ``KnowledgeBase(persist_dir=tmp).ingest([knowledge_docs.jsonl])`` (loading, chunking, hashing,
  embedding, writing), then the same call again on the unchanged file (no embedding at all), then
  conversation-aware queries over the persisted index.

Wall time depends on what else the machine runs, so CPU seconds of this process are reported too.

    python -m benchmarks.ingest_dstc11      # ~5-15 min on 2 CPU cores

Writes benchmarks/results/ingest_dstc11.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, naive_store, require_data, table, write_result
from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.evaluate import load_documents, parse_query, percentile


class Clock:
    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def latencies(search: Any, queries: list[Any]) -> dict[str, float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - started)
    return {
        "p50_ms": round(1000 * percentile(times, 50), 2),
        "p95_ms": round(1000 * percentile(times, 95), 2),
    }


def ours_ingest(
    config: Any, docs_path: Path, n: int, queries: list[Any], embeddings: Any = None
) -> dict[str, Any]:
    """First ingest, re-ingest of the unchanged file, then query latency, into ``config``'s index."""
    kb = KnowledgeBase(config, embeddings=embeddings)
    with Clock() as first:
        report = kb.ingest([docs_path])
    with Clock() as again:
        second = kb.ingest([docs_path])
    kb.search("warm up")
    out = {
        "seconds": round(first.wall, 2),
        "cpu_seconds": round(first.cpu, 2),
        "docs_per_s": round(n / first.wall, 1),
        "chunks": report.chunks_added,
        "reingest_seconds": round(again.wall, 3),
        "reingest_percent_of_first": round(100 * again.wall / first.wall, 2),
        "reingest_unchanged_docs": second.unchanged,
        "reingest_chunks_added": second.chunks_added,
        "query": latencies(lambda q: kb.search(q.query, k=5, history=q.history), queries),
    }
    kb.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=300, help="conversations timed for query latency")
    parser.add_argument("--embed-threads", type=int, help="KnowledgeConfig.embed_threads for our ingest")
    parser.add_argument("--name", default="ingest_dstc11", help="results file name")
    parser.add_argument(
        "--static", action="store_true", help="also our ingest on static embeddings (embedding_model: static)"
    )
    args = parser.parse_args()
    docs_path = require_data("dstc11", "knowledge_docs.jsonl")
    docs = load_documents(docs_path)
    rows = [json.loads(line) for line in require_data("dstc11", "conversations.jsonl").open(encoding="utf-8")]
    queries = [parse_query(r, "dstc11", i) for i, r in enumerate(sorted(rows, key=lambda r: r["id"]))]
    queries = queries[-args.queries :]
    n = len(docs)
    result: dict[str, Any] = {"benchmark": args.name, "documents": n, "machine": machine()}
    result["embed_threads"] = args.embed_threads

    with tempfile.TemporaryDirectory() as tmp:
        with Clock() as naive_clock:
            store, _ = naive_store(docs)
        result["naive"] = {
            "seconds": round(naive_clock.wall, 2),
            "cpu_seconds": round(naive_clock.cpu, 2),
            "docs_per_s": round(n / naive_clock.wall, 1),
        }
        result["naive"]["query"] = latencies(lambda q: store.similarity_search(q.query, k=5), queries)

        result["ours"] = ours_ingest(
            KnowledgeConfig(
                persist_dir=Path(tmp) / "index",
                entity_fields=("entity_name",),
                embed_threads=args.embed_threads,
            ),
            docs_path,
            n,
            queries,
        )
        if args.static:
            from knowledge.static import StaticEmbeddings

            embeddings = StaticEmbeddings()
            with Clock() as distill:
                embeddings.load()  # distils on the first run, then loads the cached table
            config = KnowledgeConfig(
                persist_dir=Path(tmp) / "static", entity_fields=("entity_name",), embedding_model="static"
            )
            result["ours_static"] = ours_ingest(config, docs_path, n, queries, embeddings)
            result["ours_static"]["table_load_or_distill_seconds"] = round(distill.wall, 1)

    ours, naive = result["ours"], result["naive"]
    result["speedup_wall"] = round(naive["seconds"] / ours["seconds"], 2)
    result["speedup_cpu"] = round(naive["cpu_seconds"] / ours["cpu_seconds"], 2)
    print(
        table(
            [
                [
                    "naive",
                    naive["seconds"],
                    naive["cpu_seconds"],
                    naive["docs_per_s"],
                    "-",
                    naive["query"]["p50_ms"],
                    naive["query"]["p95_ms"],
                ],
                [
                    "ours",
                    ours["seconds"],
                    ours["cpu_seconds"],
                    ours["docs_per_s"],
                    f"{ours['reingest_seconds']}s ({ours['reingest_percent_of_first']}%)",
                    ours["query"]["p50_ms"],
                    ours["query"]["p95_ms"],
                ],
            ],
            ["stack", "ingest s", "cpu s", "docs/s", "re-ingest", "query p50 ms", "query p95 ms"],
        )
    )
    print(f"ingest speed-up: {result['speedup_wall']}x wall, {result['speedup_cpu']}x CPU")
    static = result.get("ours_static")
    if static:
        result["speedup_wall_static"] = round(naive["seconds"] / static["seconds"], 2)
        result["speedup_cpu_static"] = round(naive["cpu_seconds"] / static["cpu_seconds"], 2)
        print(
            f"static profile: {static['seconds']} s ({static['docs_per_s']} docs/s), re-ingest "
            f"{static['reingest_percent_of_first']}%, query p50 {static['query']['p50_ms']} ms / p95 "
            f"{static['query']['p95_ms']} ms; speed-up {result['speedup_wall_static']}x wall, "
            f"{result['speedup_cpu_static']}x CPU"
        )
    result["machine_after"] = machine()
    write_result(args.name, result)


if __name__ == "__main__":
    main()
