"""Where batching helps on a CPU: prefill vs decode, N concurrent requests, the real default model.

Baseline in the same run: ``LocalGenerator`` (one generation at a time, the requests queue on its
lock) against ``BatchingGenerator`` (the requests share one ``generate()``), both fed by N threads
at once with the same ~550-token chat prompt, greedy. Each is timed twice, with 1 new token
(prefill only) and with T new tokens; the difference is the decode time.

    python -m benchmarks.load_batching --clients 8 --new-tokens 32 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.common import CACHED_MODEL


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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
