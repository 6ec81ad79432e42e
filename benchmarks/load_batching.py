"""Where batching helps on a CPU: prefill vs decode, N concurrent requests, the real default model.

Baseline in the same run: ``LocalGenerator`` (one generation at a time, the requests queue on its
lock) against ``BatchingGenerator`` (the requests share one ``generate()``), both fed by N threads
at once with the same ~550-token chat prompt, greedy. Each is timed twice, with 1 new token
(prefill only) and with T new tokens; the difference is the decode time.

    python -m benchmarks.load_batching --clients 8 --new-tokens 32 --threads 1

``--engine ct2`` measures the serving path instead: the production version compiled to
CTranslate2, the 10 sample questions' serving prompts (retrieved over the sample docs), 64 new
tokens each, ``CompiledGenerator`` one request at a time against ``CompiledBatchingGenerator`` with
all of them at once, bucketed by prompt length (the default) and in one batch whatever the
lengths; it writes ``results/load_batching.json``:

    python -m benchmarks.load_batching --engine ct2 --clients 8 --new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.common import CACHED_MODEL, SAMPLE, bench_home, machine, write_result


def timed(generator: Any, clients: int, new_tokens: int, prompt: list[dict[str, str]]) -> tuple[float, int]:
    from agent.generator import GenerationOptions

    options = GenerationOptions(max_new_tokens=new_tokens, temperature=0.0, repetition_penalty=1.0)

    def one(_: int) -> int:
        for _text in generator.stream(prompt, options):
            pass
        return int(generator.last_usage.completion_tokens)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        tokens = sum(pool.map(one, range(clients)))
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--model", default=str(CACHED_MODEL), help="a model directory")
    parser.add_argument("--engine", choices=("transformers", "ct2"), default="transformers")
    args = parser.parse_args()
    if args.engine == "ct2":
        compiled_main(args.clients, args.new_tokens)
        return

    import torch

    from agent.generator import LocalGenerator
    from agent.models import load_model
    from deploy.batching import BatchingGenerator

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    model.generation_config.eos_token_id = None  # every request decodes exactly --new-tokens
    prompt = [{"role": "user", "content": "How often do I replace the filter? " * 65}]
    local = LocalGenerator(model, tokenizer, version="default")
    batching = BatchingGenerator.wrap(local, max_batch=args.clients, window_ms=50)
    rows = []
    for name, generator in (("LocalGenerator (serial)", local), ("BatchingGenerator", batching)):
        for clients in (1, args.clients):
            prefill_s, _ = timed(generator, clients, 1, prompt)
            total_s, tokens = timed(generator, clients, args.new_tokens, prompt)
            decode_s = max(1e-9, total_s - prefill_s)
            rows.append(
                {
                    "generator": name,
                    "clients": clients,
                    "prefill_s": round(prefill_s, 2),
                    "total_s": round(total_s, 2),
                    "tokens": tokens,
                    "tokens_per_s": round(tokens / total_s, 1),
                    "decode_tokens_per_s": round((tokens - clients) / decode_s, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    batching.close()
    print(
        json.dumps(
            {"prompt_tokens": local.count_tokens(prompt[0]["content"]), "threads": torch.get_num_threads()}
        )
    )


def serving_prompts(home: Any, count: int) -> tuple[list[list[dict[str, str]]], str]:
    """The agent's messages for the first ``count`` sample questions, and the production version."""
    from agent.config import load_config
    from agent.knowledge import open_knowledge
    from agent.prompt import build_messages
    from agent.runtime import Agent

    config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
    knowledge = open_knowledge(config)
    if knowledge.count() == 0:
        knowledge.ingest([SAMPLE / "docs"])
    lines = (SAMPLE / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [q["question"] for q in map(json.loads, lines) if "gold_doc_ids" in q][:count]
    prompts = []
    for question in questions:
        passages = [Agent._passage(h) for h in knowledge.search(question, k=config.retrieval.k)]
        prompts.append(build_messages(question, passages, config.persona))
    return prompts, config.model


def compiled_main(clients: int, new_tokens: int) -> None:
    """Single-stream against batched aggregate tokens/s on the compiled serving path."""
    import tempfile
    from pathlib import Path

    from agent.compiled import CompiledGenerator
    from agent.generator import GenerationOptions
    from deploy.batching import CompiledBatchingGenerator

    home = bench_home(Path(tempfile.mkdtemp(prefix="bench-batching-")), "bench-batching-")
    prompts, version = serving_prompts(home, 10)
    alone = CompiledGenerator.load(version, home=home, check="none")
    options = GenerationOptions(max_new_tokens=new_tokens, temperature=0.0, repetition_penalty=1.0)

    def run(generator: Any, messages: list[dict[str, str]]) -> int:
        for _text in generator.stream(messages, options):
            pass
        return int(generator.last_usage.completion_tokens)

    def batched(bucket_tokens: int) -> dict[str, Any]:
        """All requests at once through the batcher (``clients`` threads)."""
        batching = CompiledBatchingGenerator.wrap(
            alone, max_batch=clients, window_ms=50, bucket_tokens=bucket_tokens
        )
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            tokens = sum(pool.map(lambda p: run(batching, p), prompts))
        seconds = time.perf_counter() - started
        batching.close()
        return {
            "bucket_tokens": bucket_tokens,
            "seconds": round(seconds, 2),
            "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1),
            "batches": batching.batches,
            "buckets": batching.buckets,  # type: ignore[attr-defined]
        }

    run(alone, prompts[0])  # warm-up
    started = time.perf_counter()
    single_tokens = sum(run(alone, p) for p in prompts)
    single_s = time.perf_counter() - started
    single_rate = single_tokens / single_s
    # Bucketed by length (the default), then one batch whatever the lengths (as before buckets).
    from deploy.settings import ServerSettings

    bucketed, unbucketed = batched(ServerSettings.batch_bucket_tokens), batched(10**6)
    tails = [len(alone.split_static(p, alone.prompt_tokens(p))[1]) for p in prompts]
    result = {
        "machine": machine(),
        "engine": "ctranslate2 int8",
        "version": version,
        "requests": len(prompts),
        "clients": clients,
        "new_tokens": new_tokens,
        "prompt_tokens_mean": round(
            sum(alone.count_tokens(m["content"]) for p in prompts for m in p) / len(prompts)
        ),
        "prompt_tails": sorted(tails),  # tokens after the cached static prompt
        "single": {
            "seconds": round(single_s, 2),
            "tokens": single_tokens,
            "tokens_per_s": round(single_rate, 1),
        },
        "batched": bucketed,
        "batched_one_bucket": unbucketed,
        "ratio": round(bucketed["tokens_per_s"] / single_rate, 2),
        "ratio_one_bucket": round(unbucketed["tokens_per_s"] / single_rate, 2),
    }
    write_result("load_batching", result)


if __name__ == "__main__":
    main()
