"""Decode speed of the path the agent serves with, against the alternatives, in one run.

One serving prompt (a sample question, its retrieved passages and the system prompt, exactly as
``agent.prompt`` builds it), the same token ids on every side, 128 new tokens with end-of-sequence
ignored, greedy. Each side: time to first token (prefill + one token), the whole reply, and
decode tokens/s over the 127 tokens after the first; medians of ``--repeats`` interleaved runs.
The prompt's fixed head (system message + worked example) is cached as served: the compiled
engine's static prompt, and llama.cpp's prompt-prefix cache with the same head evaluated untimed
before each run; transformers prefills the whole prompt (its path has no such cache).

* ``project``: the production version through the generator the agent picks
  (``agent.generator.build_generator``: the compiled CTranslate2 int8 engine when available);
* ``transformers``: the same version in transformers fp32 (``LocalGenerator``'s model);
* ``llamacpp``: the stock Q4_1 GGUF through llama-cpp-python, when it is installed (an optional,
  benchmark-only extra that compiles from source: ``pip install llama-cpp-python``), at
  ``OMP_WAIT_POLICY=PASSIVE`` and threads = cores.

On the compiled path it also times the first token for variants of the prompt
(``prompt_parts``: as served, without the static-prompt cache, without the worked example, with
passages half as long, with four earlier turns), so each part's cost is visible.

The last line (``--json``) holds ``project_tok_s``, ``llamacpp_tok_s``, ``ratio``,
``project_ttft_s``, ``llamacpp_ttft_s``, ``ttft_ratio``, ``project_reply_s``,
``llamacpp_reply_s``, ``reply_ratio`` (time ratios: the other side's seconds / ours, above 1 means
we are faster), the same against transformers (``transformers_*``, ``*_vs_transformers``), each
side's settings and the hardware.

    python -m benchmarks.decode --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from benchmarks.common import SAMPLE, bench_home, machine, write_result

NEW_TOKENS = 128
QUESTION = "My purifier shows E4 and stopped. What should I do?"


def serving_prompt(home: Path) -> tuple[list[dict[str, str]], str]:
    """The agent's messages for ``QUESTION`` over the sample docs, and the production version."""
    from agent.config import load_config
    from agent.knowledge import open_knowledge
    from agent.prompt import build_messages
    from agent.runtime import Agent

    config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
    knowledge = open_knowledge(config)
    if knowledge.count() == 0:
        knowledge.ingest([SAMPLE / "docs"])
    passages = [Agent._passage(h) for h in knowledge.search(QUESTION, k=config.retrieval.k)]
    return build_messages(QUESTION, passages, config.persona), config.model


HISTORY = (
    ("customer", "Hi, I bought an Aero 300 last month."),
    ("agent", "Thanks for choosing the Aero 300! How can I help you today?"),
    ("customer", "It was working fine until yesterday evening."),
    ("agent", "I'm sorry to hear that. What is it doing now?"),
)


def prompt_parts(home: Path, project: Any) -> list[dict[str, Any]]:
    """What each part of the serving prompt costs in time to the first token on the serving path
    (medians of 3): the prompt as served, without the static-prompt cache, without the worked
    example, with passages cut to half their length, and with four earlier turns of history."""
    import dataclasses

    from agent.config import load_config
    from agent.knowledge import open_knowledge
    from agent.prompt import build_messages
    from agent.runtime import Agent

    config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
    passages = [Agent._passage(h) for h in open_knowledge(config).search(QUESTION, k=config.retrieval.k)]
    halved = [dataclasses.replace(p, text=p.text[: len(p.text) // 2]) for p in passages]
    variants = {
        "as served": (build_messages(QUESTION, passages, config.persona), True),
        "no static-prompt cache": (build_messages(QUESTION, passages, config.persona), False),
        "no worked example": (build_messages(QUESTION, passages, config.persona, examples=()), True),
        "passages half as long": (build_messages(QUESTION, halved, config.persona), True),
        "4 earlier turns": (build_messages(QUESTION, passages, config.persona, HISTORY), True),
    }
    rows = []
    for name, (messages, cache) in variants.items():
        tokens = project.prompt_tokens(messages)
        static, rest = project.split_static(messages, tokens) if cache else ([], tokens)
        times = sorted(_first_token(project.generator, rest, static) for _ in range(3))
        rows.append(
            {
                "variant": name,
                "prompt_tokens": len(tokens),
                "cached_tokens": len(static),
                "ttft_s": round(times[1], 3),
            }
        )
    return rows


def _first_token(generator: Any, tokens: list[str], static: list[str]) -> float:
    started = time.perf_counter()
    for _ in generator.generate_tokens(tokens, max_length=1, sampling_topk=1, static_prompt=static or None):
        break
    return time.perf_counter() - started


def time_ct2(generator: Any, tokens: list[str], static: list[str] | None = None) -> tuple[float, float]:
    """(seconds to the first token, seconds to the last) for NEW_TOKENS greedy tokens; ``static``:
    the cached head of the prompt (``tokens`` are then the rest), as the agent serves."""
    started = time.perf_counter()
    first = 0.0
    steps = generator.generate_tokens(
        tokens, max_length=NEW_TOKENS, min_length=NEW_TOKENS, sampling_topk=1, static_prompt=static or None
    )
    for n, _ in enumerate(steps):
        if n == 0:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


def time_hf(model: Any, ids: list[int]) -> tuple[float, float]:
    import torch

    prompt = torch.tensor([ids])
    with torch.inference_mode():
        started = time.perf_counter()
        model.generate(prompt, max_new_tokens=1, do_sample=False)
        first = time.perf_counter() - started
        started = time.perf_counter()
        model.generate(prompt, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
    return first, time.perf_counter() - started


def time_llamacpp(llm: Any, ids: list[int], head: int = 0) -> tuple[float, float]:
    """As ``time_ct2``; the first ``head`` ids are evaluated untimed beforehand and reused (its
    prompt-prefix cache, the counterpart of the compiled engine's static prompt)."""
    llm.reset()
    if head:
        llm.eval(ids[:head])
    started = time.perf_counter()
    first = 0.0
    for n, _ in enumerate(llm.generate(ids, top_k=1, temp=0.0, reset=not head)):
        if n == 0:
            first = time.perf_counter() - started
        if n + 1 >= NEW_TOKENS:
            break
    return first, time.perf_counter() - started


_PROBE = """
import os, sys
import llama_cpp
llm = llama_cpp.Llama(sys.argv[1], n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
prompt = llm.tokenize(b"How often should I replace the filter? " * 60)  # a serving-size prefill
for n, _ in enumerate(llm.generate(prompt, top_k=1, temp=0.0)):
    if n >= 2:
        break
"""


def repacking_works(gguf: str) -> tuple[bool, str]:
    """Whether llama.cpp runs with its weight repacking on here, probed in a child process (on
    some CPUs with AMX the source build segfaults in llama_decode with it on)."""
    import subprocess
    import sys

    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, gguf], capture_output=True, timeout=300, check=False
    )
    if probe.returncode == 0:
        return True, "on"
    return False, f"off: the probe with it on exited with {probe.returncode} (a crash) on this CPU"


def llamacpp_side() -> tuple[Any, dict[str, Any]]:
    """The stock GGUF in llama-cpp-python at its fastest working settings, or None and why not."""
    try:
        import llama_cpp
        import llama_cpp.llama_cpp as low
    except ImportError:
        return None, {"skipped": "llama-cpp-python is not installed (pip install llama-cpp-python: compiles)"}
    from agent.models import packaged_gguf

    directory, name = packaged_gguf()
    repack, why = repacking_works(str(directory / name))
    if not repack:
        defaults = low.llama_model_default_params

        def no_repacking() -> Any:
            params = defaults()
            params.use_extra_bufts = False
            return params

        low.llama_model_default_params = no_repacking
    threads = os.cpu_count() or 1
    llm = llama_cpp.Llama(str(directory / name), n_ctx=2048, n_threads=threads, verbose=False)
    settings = {"threads": threads, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "gguf": name}
    return llm, {**settings, "weight_repacking": why, "version": llama_cpp.__version__}


def summarize(runs: list[tuple[float, float]]) -> dict[str, float]:
    ttft = statistics.median(r[0] for r in runs)
    reply = statistics.median(r[1] for r in runs)
    decode = statistics.median((NEW_TOKENS - 1) / max(1e-9, r[1] - r[0]) for r in runs)
    return {"ttft_s": round(ttft, 3), "reply_s": round(reply, 3), "tok_s": round(decode, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="Data home (default: a temporary one).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="Print the result as JSON on the last line.")
    args = parser.parse_args()

    from agent.compiled import CompiledGenerator, chat_ids
    from agent.config import load_config
    from agent.generator import build_generator
    from agent.models import load_resolved, resolve_spec

    home = bench_home(args.home, "bench-decode-")
    messages, spec = serving_prompt(home)
    config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
    config.generation.engine = "auto"
    project = build_generator(config, spec)
    resolved = resolve_spec(spec, home=home)
    model, tokenizer = load_resolved(resolved, merge=True)
    ids = chat_ids(tokenizer, messages)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    static, rest = (
        project.split_static(messages, tokens) if isinstance(project, CompiledGenerator) else ([], [])
    )
    llm, llama_settings = llamacpp_side()
    sides: dict[str, list[tuple[float, float]]] = {"project": [], "transformers": [], "llamacpp": []}
    for _ in range(args.repeats):  # interleaved, so load changes hit every side alike
        if isinstance(project, CompiledGenerator):
            sides["project"].append(time_ct2(project.generator, rest, static))
        else:
            sides["project"].append(time_hf(model, ids))
        sides["transformers"].append(time_hf(model, ids))
        if llm is not None:
            sides["llamacpp"].append(time_llamacpp(llm, ids, len(static)))
    result: dict[str, Any] = {
        "prompt_tokens": len(ids),
        "new_tokens": NEW_TOKENS,
        "version": resolved.version,
    }
    for side, runs in sides.items():
        for key, value in (
            summarize(runs) if runs else dict.fromkeys(("ttft_s", "reply_s", "tok_s"))
        ).items():
            result[f"{side}_{key}"] = value
    for other in ("llamacpp", "transformers"):
        suffix = "" if other == "llamacpp" else "_vs_transformers"
        ok = result[f"{other}_tok_s"] is not None
        result[f"ratio{suffix}"] = (
            round(result["project_tok_s"] / result[f"{other}_tok_s"], 2) if ok else None
        )
        result[f"ttft_ratio{suffix}"] = (
            round(result[f"{other}_ttft_s"] / result["project_ttft_s"], 2) if ok else None
        )
        result[f"reply_ratio{suffix}"] = (
            round(result[f"{other}_reply_s"] / result["project_reply_s"], 2) if ok else None
        )
    result["settings"] = {
        "project": {
            "engine": type(project).__name__,
            "threads": os.cpu_count(),
            "static_prompt_tokens": len(static),
        },
        "transformers": {"dtype": "float32", "threads": os.cpu_count()},
        "llamacpp": {**llama_settings, "cached_prefix_tokens": len(static) if llm is not None else 0},
    }
    if isinstance(project, CompiledGenerator):
        result["prompt_parts"] = prompt_parts(home, project)
    result["machine"] = machine()
    write_result("decode", result, echo=False)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
