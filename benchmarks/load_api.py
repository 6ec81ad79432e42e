"""Load test of the HTTP API on loopback: N concurrent OpenAI clients x M turns each, then an
audit of the log. Bounded: a fixed number of requests to 127.0.0.1 only, then it stops.

    python -m benchmarks.load_api fake --clients 50 --turns 20    # fast scripted generator
    python -m benchmarks.load_api real --clients 8 --turns 3      # the real default model (CPU)
    python -m benchmarks.load_api serve --generator fake --home H --port P   # the server alone

Each client has its own customer-app key and one conversation: its first request starts it, the
next ones continue it by ``conversation_id``; every other turn is streamed. The server runs in a
subprocess (``serve``) so clients and server do not share one interpreter. ``serve`` is also a
command of its own: the API on 127.0.0.1 with the scripted generator (``fake``: every reply
echoes its request's tag) or the real default model, over keyword search of a few passages.

Audit, from the log store after the run: every client's conversation holds exactly its own
messages in order, each followed by the agent turn whose id and text that client received
(``lost`` counts expected rows that are missing, ``crossed`` rows in the wrong conversation, order
or with another text); with the fake generator every reply must also echo its own request's tag.

``real`` is the named baseline comparison: the same N conversations served one client at a time
and then N clients at once, aggregate completion tokens/s, with the BatchingGenerator off (one
generation at a time) and on. ``--torch-threads 1`` avoids OpenMP oversubscription on a busy host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.prompt import Passage
from benchmarks.common import REPO, SAMPLE, PassageKnowledge, link_cached_model

TAG = re.compile(r"\[ref (c\d+t\d+)\]")
FAKE_DOCS = {
    "filters": "Replace the HEPA filter every 6 months. The replacement part is HF-500 and costs $39.",
    "warranty": "The Aero warranty lasts 2 years from the delivery date and covers the motor.",
}
FAKE_QUESTIONS = [
    "How often should I replace the HEPA filter?",
    "How long does the warranty last?",
    "Where do I buy a replacement filter part?",
    "Does the warranty cover the motor?",
]


# ------------------------------------------------------------------------------ the server side


def echo_generator() -> Any:
    """A ScriptedGenerator that answers with its request's tag, so crossed replies show."""
    from agent.generator import ScriptedGenerator

    class EchoGenerator(ScriptedGenerator):
        def stream(self, messages: Any, options: Any, cancel: Any = None) -> Iterator[str]:
            found = TAG.search(messages[-1]["content"])
            self.enqueue(f"Replace the HEPA filter every 6 months [1]. [ref {found[1] if found else 'none'}]")
            self.prompts.clear()  # keep memory flat over thousands of turns
            yield from super().stream(messages, options, cancel)

    return EchoGenerator()


def sample_paragraphs() -> dict[str, str]:
    """The shipped sample documents, one passage per paragraph (a stand-in for the real index)."""
    docs: dict[str, str] = {}
    for path in sorted((SAMPLE / "docs").glob("*.md")):
        paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n")]
        for n, text in enumerate(p for p in paragraphs if p and not p.startswith("#")):
            docs[f"{path.stem}-{n}"] = text
    return docs


def keyword_retriever(docs: dict[str, str]) -> Callable[[str, Sequence[tuple[str, str]]], list[Passage]]:
    """The passages that share words (of four letters or more) with the question, most shared
    first: retrieval without a model, so that the load is on the API and the log store."""

    def retrieve(question: str, history: Sequence[tuple[str, str]]) -> list[Passage]:
        wanted = {w.strip("?.,!").lower() for w in question.split() if len(w) > 3}
        shared = {d: len(wanted & {w.strip("?.,!").lower() for w in t.split()}) for d, t in docs.items()}
        ranked = sorted((d for d in docs if shared[d]), key=lambda d: -shared[d])
        return [Passage(d, f"{d}.md", docs[d], score=float(shared[d]), chunk_id=f"{d}#0") for d in ranked]

    return retrieve


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from agent.config import load_config
    from agent.runtime import Agent
    from agent.store import LogStore
    from deploy.server import create_app
    from deploy.settings import ServerSettings

    config = load_config(env={"SUPPORTLOOP_HOME": args.home})
    config.escalation.min_relevance = 0.0
    config.generation.max_new_tokens = args.max_new_tokens
    store = LogStore(args.store_url, home=Path(args.home))
    generator: Any
    knowledge: Any
    if args.generator == "fake":
        generator, knowledge = echo_generator(), PassageKnowledge(keyword_retriever(FAKE_DOCS))
        config.grounding.enabled = False  # the echo tags each reply for the audit; it is no answer
    else:
        import torch

        from agent.generator import LocalGenerator

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        generator = LocalGenerator.load("smollm2-135m-instruct", home=Path(args.home), device="cpu")
        knowledge = PassageKnowledge(keyword_retriever(sample_paragraphs()))
        if args.batching == "on":
            from deploy.batching import BatchingGenerator

            generator = BatchingGenerator.wrap(generator, max_batch=args.clients, window_ms=args.window_ms)
    agent = Agent(generator, knowledge, store, config)
    settings = ServerSettings(rate_limit_per_minute=0.0, max_concurrency=args.max_concurrency)
    app = create_app(lambda name: agent, store=store, config=config, settings=settings)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


# ------------------------------------------------------------------------------ the client side


@dataclass
class Result:
    client: int
    turn: int
    sent: str
    ok: bool = False
    error: str = ""
    text: str = ""
    turn_id: str = ""
    conversation_id: str = ""
    latency_s: float = 0.0
    ttft_s: float | None = None
    completion_tokens: int = 0
    streamed: bool = False


@dataclass
class Run:
    label: str
    clients: int
    turns: int
    wall_s: float = 0.0
    results: list[Result] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ok = [r for r in self.results if r.ok]
        latencies = sorted(r.latency_s for r in ok)
        ttfts = sorted(r.ttft_s for r in ok if r.ttft_s is not None)
        tokens = sum(r.completion_tokens for r in ok)
        return {
            "label": self.label,
            "clients": self.clients,
            "turns_per_client": self.turns,
            "requests": len(self.results),
            "errors": len(self.results) - len(ok),
            **self.audit,
            "wall_s": round(self.wall_s, 2),
            "requests_per_s": round(len(ok) / self.wall_s, 1) if self.wall_s else None,
            "latency_p50_ms": _ms(_pct(latencies, 50)),
            "latency_p95_ms": _ms(_pct(latencies, 95)),
            "latency_p99_ms": _ms(_pct(latencies, 99)),
            "ttft_p50_ms": _ms(_pct(ttfts, 50)),
            "completion_tokens": tokens,
            "tokens_per_s": round(tokens / self.wall_s, 1) if self.wall_s else None,
            "first_errors": sorted({r.error for r in self.results if not r.ok})[:3],
        }


def _pct(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def message(mode: str, client: int, turn: int, questions: Sequence[str]) -> str:
    question = questions[(client * 7 + turn) % len(questions)]
    return f"{question} [ref c{client}t{turn}]" if mode == "fake" else question


async def one_client(
    url: str, secret: str, client: int, turns: int, mode: str, questions: Sequence[str]
) -> list[Result]:
    from openai import AsyncOpenAI

    api = AsyncOpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0, timeout=900)
    results: list[Result] = []
    cid: str | None = None
    try:
        for turn in range(turns):
            result = Result(client, turn, message(mode, client, turn, questions), streamed=turn % 2 == 1)
            extra = {"conversation_id": cid} if cid else {}
            started = time.perf_counter()
            try:
                if result.streamed:
                    await _streamed(api, result, extra, started)
                else:
                    response = await api.chat.completions.create(
                        model="production",
                        messages=[{"role": "user", "content": result.sent}],
                        extra_body=extra,
                    )
                    result.text = response.choices[0].message.content or ""
                    info = (response.model_extra or {})["supportloop"]
                    result.turn_id, result.conversation_id = info["turn_id"], info["conversation_id"]
                    result.completion_tokens = response.usage.completion_tokens if response.usage else 0
                result.latency_s = time.perf_counter() - started
                result.ok = True
                cid = cid or result.conversation_id
            except Exception as exc:  # counted and reported, never raised: the run goes on
                result.error = f"{type(exc).__name__}: {exc}"[:300]
            results.append(result)
    finally:
        await api.close()
    return results


async def _streamed(api: Any, result: Result, extra: dict[str, Any], started: float) -> None:
    stream = await api.chat.completions.create(
        model="production",
        messages=[{"role": "user", "content": result.sent}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=extra,
    )
    parts: list[str] = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if result.ttft_s is None:
                result.ttft_s = time.perf_counter() - started
            parts.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            info = chunk.model_extra["supportloop"]
            result.turn_id, result.conversation_id = info["turn_id"], info["conversation_id"]
        if chunk.usage is not None:
            result.completion_tokens = chunk.usage.completion_tokens
    result.text = "".join(parts)


def audit(store: Any, key_ids: list[str], results: list[Result], mode: str) -> dict[str, int]:
    """lost / crossed rows: each client's conversation in the log against what the client did.

    Expected, per client: one conversation owned by its key, holding its messages in order, each
    followed by the agent (or system) turn whose id and text the client received."""
    lost = crossed = 0
    for client, key_id in enumerate(key_ids):
        mine = sorted((r for r in results if r.client == client and r.ok), key=lambda r: r.turn)
        if not mine:
            continue
        cid = mine[0].conversation_id
        owned = [c.id for c in store.list_conversations(owner=key_id, limit=10)]
        crossed += int(owned != [cid]) + sum(r.conversation_id != cid for r in mine)
        turns = store.turns(cid)
        expected: list[tuple[str, str, str | None]] = []
        for r in mine:
            expected += [("customer", r.sent, None), ("reply", r.text, r.turn_id)]
        for index, (kind, text, turn_id) in enumerate(expected):
            if index >= len(turns):
                lost += 1
                continue
            turn = turns[index]
            if kind == "customer":
                crossed += turn.role != "customer" or turn.text != text
                continue
            tag = TAG.search(expected[index - 1][1])
            echoed = mode != "fake" or (tag is not None and f"[ref {tag[1]}]" in turn.text)
            same = (
                turn.id == turn_id and turn.text.strip() == text.strip() and turn.role in ("agent", "system")
            )
            crossed += not (same and echoed)
        crossed += max(0, len(turns) - len(expected))
    expected_rows = sum(2 for r in results if r.ok)
    return {
        "lost_rows": lost,
        "crossed_rows": crossed,
        "expected_rows": expected_rows,
        "logged_rows": store.counts()["turns"],
    }


# ------------------------------------------------------------------------------ one run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server was not ready within {timeout_s:.0f} s")


def run_once(args: argparse.Namespace, clients: int, batching: str, label: str, concurrency: int = 0) -> Run:
    """One server, ``clients`` clients; ``concurrency`` of them at a time (0: all at once)."""
    from agent.store import LogStore

    with tempfile.TemporaryDirectory(prefix="supportloop-load-") as tmp:
        home = Path(tmp)
        link_cached_model(home)  # a real-model server then skips the one-time conversion
        store = LogStore(args.store_url, home=home)
        key_ids, secrets = [], []
        for n in range(clients):
            key, secret = store.create_api_key(f"load-client-{n}", "customer")
            key_ids.append(key.id)
            secrets.append(secret)
        port = free_port()
        command = [
            sys.executable, "-m", "benchmarks.load_api", "serve", "--home", str(home), "--port", str(port),
            "--generator", args.mode, "--batching", batching, "--clients", str(clients),
            "--max-new-tokens", str(args.max_new_tokens), "--window-ms", str(args.window_ms),
            "--max-concurrency", str(args.max_concurrency), "--torch-threads", str(args.torch_threads),
        ]  # fmt: skip
        if args.store_url:
            command += ["--store-url", args.store_url]
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        process = subprocess.Popen(command, env=env, cwd=REPO)
        url = f"http://127.0.0.1:{port}"
        run = Run(label, clients, args.turns)
        try:
            wait_ready(url, process, timeout_s=300)
            questions = FAKE_QUESTIONS if args.mode == "fake" else real_questions()
            started = time.perf_counter()
            per_client = asyncio.run(all_clients(url, secrets, args.turns, args.mode, questions, concurrency))
            run.wall_s = time.perf_counter() - started
            run.results = [r for rs in per_client for r in rs]
            run.audit = audit(store, key_ids, run.results, args.mode)
            run.audit.update(batch_stats(url))
        finally:
            process.terminate()
            process.wait(timeout=30)
            store.close()
    return run


def batch_stats(url: str) -> dict[str, Any]:
    """Mean rows per generate() call, from the server's /metrics (batching runs only)."""
    import httpx

    found = dict(
        re.findall(
            r"^supportloop_(batch(?:es|ed_requests)_total) (\S+)$", httpx.get(f"{url}/metrics").text, re.M
        )
    )
    if not found or not float(found.get("batches_total", 0)):
        return {}
    return {
        "mean_batch_size": round(float(found["batched_requests_total"]) / float(found["batches_total"]), 2)
    }


async def all_clients(
    url: str, secrets: list[str], turns: int, mode: str, questions: Sequence[str], concurrency: int = 0
) -> Any:
    gate = asyncio.Semaphore(concurrency or len(secrets))

    async def gated(n: int, secret: str) -> list[Result]:
        async with gate:
            return await one_client(url, secret, n, turns, mode, questions)

    return await asyncio.gather(*(gated(n, s) for n, s in enumerate(secrets)))


def real_questions() -> list[str]:
    lines = (SAMPLE / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["fake", "real", "serve"])
    parser.add_argument(
        "--clients", type=int, default=None, help="clients, each with its own conversation (fake 50, real 8)"
    )
    parser.add_argument("--turns", type=int, default=None, help="turns per client (fake 20, real 3)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batching", choices=["on", "off", "both"], default="both", help="real mode")
    parser.add_argument("--window-ms", type=float, default=25.0)
    parser.add_argument("--max-concurrency", type=int, default=32, help="server: agent turns at once")
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="server: torch threads (0: torch's default)"
    )
    parser.add_argument("--store-url", default=None, help="log store URL (default: SQLite in a temp home)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on the last line")
    parser.add_argument("--home", help="serve: the data home (its log store)")
    parser.add_argument("--port", type=int, help="serve: the port on 127.0.0.1")
    parser.add_argument(
        "--generator", choices=["fake", "real"], help="serve: scripted echo or the real model"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.mode == "serve":
        serve(args)
        return
    real = args.mode == "real"
    args.clients = args.clients or (8 if real else 50)
    args.turns = args.turns or (3 if real else 20)
    if not real:
        runs = [run_once(args, args.clients, "off", f"fake generator, {args.clients} clients")]
    else:
        modes = ["off", "on"] if args.batching == "both" else [args.batching]
        runs = []
        for batching in modes:  # the same conversations, one client at a time, then all at once
            for concurrency in (1, args.clients):
                label = f"real model, batching {batching}, {concurrency} concurrent client(s)"
                runs.append(run_once(args, args.clients, batching, label, concurrency))
    summaries = [r.summary() for r in runs]
    report(summaries, real)
    if args.json:
        print(json.dumps({"runs": summaries, **comparison(summaries)}))
    if any(s["errors"] or s["lost_rows"] or s["crossed_rows"] for s in summaries):
        sys.exit(1)


def comparison(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate tokens/s with N concurrent clients over one at a time (same work), per batching mode."""
    out: dict[str, Any] = {}
    for mode in ("off", "on"):
        rows = [s for s in summaries if f"batching {mode}," in s["label"]]
        if len(rows) == 2 and rows[0]["tokens_per_s"]:
            out[f"speedup_batching_{mode}"] = round(rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"], 2)
    return out


def report(summaries: list[dict[str, Any]], real: bool) -> None:
    columns = ["requests", "errors", "lost_rows", "crossed_rows", "wall_s", "requests_per_s", "latency_p50_ms",
               "latency_p95_ms", "ttft_p50_ms"]  # fmt: skip
    if real:
        columns += ["completion_tokens", "tokens_per_s", "mean_batch_size"]
    for s in summaries:
        print(f"\n{s['label']}")
        for column in columns:
            print(f"  {column:<18} {s.get(column, '-')}")
        for error in s["first_errors"]:
            print(f"  error: {error}")
    for name, value in comparison(summaries).items():
        print(f"\n{name}: {value}x aggregate tokens/s, N concurrent clients vs one at a time")


if __name__ == "__main__":
    main()
