"""What the compiled engine's float32 fallback costs: int8, float32 and transformers, one run.

A model whose int8 engine fails the equivalence check is served by a float32 engine
(``agent.compiled``). This times both engines of the production version and the transformers
model on the serving prompt of ``benchmarks.decode`` (same token ids, 128 new tokens with
end-of-sequence ignored, greedy, the prompt's fixed head as the engines' static prompt, medians of
``--repeats`` interleaved runs), and scores each engine with the equivalence check itself.

The result holds, for each side (``int8``, ``float32``, ``transformers``), ``ttft_s``,
``reply_s`` and ``tok_s``; the ratios ``float32_vs_int8`` and ``float32_vs_transformers``
(decode tokens/s, ours over theirs) and ``reply_ratio_*`` (the other side's seconds over
float32's); and each engine's ``teacher_forced`` agreement.

    python -m benchmarks.compute_types
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import bench_home, machine, write_result
from benchmarks.decode import serving_prompt, summarize, time_ct2, time_hf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="Data home (default: a temporary one).")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")

    import ctranslate2

    from agent.compiled import (
        COMPUTE_TYPE,
        FALLBACK_COMPUTE_TYPE,
        CompiledGenerator,
        chat_ids,
        convert,
        equivalence,
    )
    from agent.models import load_resolved, resolve_spec

    home = bench_home(args.home, "bench-compute-types-")
    messages, spec = serving_prompt(home)
    resolved = resolve_spec(spec, home=home)
    model, tokenizer = load_resolved(resolved, merge=True)
    ids = chat_ids(tokenizer, messages)
    result: dict[str, Any] = {"version": resolved.version, "prompt_tokens": len(ids)}
    with tempfile.TemporaryDirectory(prefix="bench-compute-types-") as tmp:
        for compute_type in (COMPUTE_TYPE, FALLBACK_COMPUTE_TYPE):
            out = Path(tmp) / compute_type
            convert(model, tokenizer, out, compute_type)
            report = equivalence(model, tokenizer, out, "full", compute_type)
            result[f"{compute_type}_teacher_forced"] = report.teacher_forced
        # The int8 engine as the agent serves it; its split of the prompt's cached head holds for both.
        served = CompiledGenerator(
            Path(tmp) / COMPUTE_TYPE, version=resolved.version, threads=os.cpu_count() or 0
        )
        static, rest = served.split_static(messages, served.prompt_tokens(messages))
        result["static_tokens"] = len(static)
        engines: dict[str, Any] = {
            COMPUTE_TYPE: served.generator,
            FALLBACK_COMPUTE_TYPE: ctranslate2.Generator(
                str(Path(tmp) / FALLBACK_COMPUTE_TYPE / "ct2"),
                device="cpu",
                compute_type=FALLBACK_COMPUTE_TYPE,
                intra_threads=os.cpu_count() or 0,
            ),
        }
        runs: dict[str, list[tuple[float, float]]] = {"int8": [], "float32": [], "transformers": []}
        for _ in range(args.repeats):  # interleaved, so load changes hit every side alike
            for compute_type, generator in engines.items():
                runs[compute_type].append(time_ct2(generator, rest, static))
            runs["transformers"].append(time_hf(model, ids))
    for side, timings in runs.items():
        for key, value in summarize(timings).items():
            result[f"{side}_{key}"] = value
    for other in ("int8", "transformers"):
        result[f"float32_vs_{other}"] = round(result["float32_tok_s"] / result[f"{other}_tok_s"], 2)
        result[f"reply_ratio_{other}"] = round(result[f"{other}_reply_s"] / result["float32_reply_s"], 2)
    result["machine"] = machine()
    write_result("compute_types", result, echo=False)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
