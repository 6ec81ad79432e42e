"""Agent latency on the sample questions: supportloop vs a naive LangChain stack, same run.

Baseline: ``HuggingFacePipeline`` (the same converted SmolLM2-135M, greedy, same max tokens)
over a ``Chroma`` retriever (``from_documents`` with ``HuggingFaceEmbeddings``, one document
per sample page), last message as the query, a plain "Context/Question" prompt.
supportloop: ``Agent.reply``/``Agent.stream`` with the default config (hybrid retrieval,
guardrails, output guard, logging every turn to SQLite).

Reports time to first token (first text the customer can see) and full-reply latency, p50 and
p95 over the questions, plus peak resident memory of ``supportloop ask`` (a subprocess).

    python -m benchmarks.agent_latency [--questions 10] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, SAMPLE, link_cached_model, machine, naive_llm, naive_store, write_result
from knowledge.types import Document


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    return [r["question"] for r in rows if "gold_doc_ids" in r][:n]


def run_naive(qs: list[str], max_new_tokens: int, model_dir: Path) -> dict[str, list[float]]:
    from transformers import TextIteratorStreamer

    docs = [Document(p.stem, p.name, p.read_text()) for p in sorted((SAMPLE / "docs").glob("*.md"))]
    retriever = naive_store(docs)[0].as_retriever(search_kwargs={"k": 2})
    pipe = naive_llm(model_dir, max_new_tokens).pipeline
    ttft, total = [], []
    for q in qs:
        start = time.perf_counter()
        context = "\n\n".join(d.page_content[:1500] for d in retriever.invoke(q))
        prompt = f"Context:\n{context}\n\nQuestion: {q}\nAnswer:"
        # Stream through the pipeline's own model so the first token is observable.
        streamer = TextIteratorStreamer(pipe.tokenizer, skip_prompt=True, skip_special_tokens=True)
        inputs = pipe.tokenizer(prompt, return_tensors="pt", truncation=True, max_length=1800)
        worker = threading.Thread(
            target=pipe.model.generate,
            kwargs={**inputs, "max_new_tokens": max_new_tokens, "do_sample": False, "streamer": streamer},
        )
        worker.start()
        first = None
        for chunk in streamer:
            if chunk and first is None:
                first = time.perf_counter() - start
        worker.join()
        total.append(time.perf_counter() - start)
        ttft.append(first if first is not None else total[-1])
    return {"ttft": ttft, "total": total}


def run_ours(qs: list[str], max_new_tokens: int, home: Path) -> dict[str, Any]:
    from agent.config import load_config
    from agent.runtime import Agent
    from agent.types import Reply

    config = load_config()
    config.generation.max_new_tokens = max_new_tokens
    agent = Agent.from_config(config)
    ttft, total, escalated = [], [], 0
    for n, q in enumerate(qs):
        start = time.perf_counter()
        first = None
        for item in agent.stream(f"bench-{n}", q):
            if isinstance(item, str) and item and first is None:
                first = time.perf_counter() - start
            if isinstance(item, Reply):
                escalated += item.escalated
        total.append(time.perf_counter() - start)
        ttft.append(first if first is not None else total[-1])
    engine = type(agent.generator).__name__
    agent.close()
    return {"ttft": ttft, "total": total, "escalated": [float(escalated)], "engine": engine}


def ask_peak_rss(home: Path) -> float:
    """Peak RSS (MB) of `supportloop ask` with the default model, from the child's rusage."""
    import resource

    env = {**os.environ, "SUPPORTLOOP_HOME": str(home)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, "-m", "agent.cli", "ask", "How often should I replace the filter?", "--json"],
        env=env,
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    from agent.models import ensure_default_model

    qs = questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["SUPPORTLOOP_HOME"] = str(home)
        link_cached_model(home)
        model_dir = ensure_default_model(home)
        naive = run_naive(qs, args.max_new_tokens, model_dir)
        ours = run_ours(qs, args.max_new_tokens, home)
        rss = ask_peak_rss(home)
    result = {
        "questions": len(qs),
        "max_new_tokens": args.max_new_tokens,
        "naive": {k: {"p50": pct(v, 0.5), "p95": pct(v, 0.95)} for k, v in naive.items()},
        "supportloop": {
            k: {"p50": pct(v, 0.5), "p95": pct(v, 0.95)} for k, v in ours.items() if k in ("ttft", "total")
        },
        "supportloop_engine": ours["engine"],
        "machine": machine(),
        "supportloop_escalated": int(ours["escalated"][0]),
        "ask_peak_rss_mb": round(rss, 1),
    }
    for key in ("ttft", "total"):
        n50, o50 = result["naive"][key]["p50"], result["supportloop"][key]["p50"]
        result[f"{key}_p50_ratio_naive_over_ours"] = round(n50 / o50, 2) if o50 else None
    print(f"{'metric':18} {'naive p50':>10} {'naive p95':>10} {'ours p50':>10} {'ours p95':>10}")
    for key in ("ttft", "total"):
        n, o = result["naive"][key], result["supportloop"][key]
        print(f"{key + ' (s)':18} {n['p50']:10.2f} {n['p95']:10.2f} {o['p50']:10.2f} {o['p95']:10.2f}")
    print(
        f"peak RSS of `supportloop ask`: {rss:.0f} MB; mean of statistics: {statistics.mean(ours['total']):.2f} s"
    )
    write_result("agent_latency", result)


if __name__ == "__main__":
    main()
