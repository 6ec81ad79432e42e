"""The promotion gate on the real default model: a better candidate is promoted, a candidate
trained on shuffled answers is refused, and rollback puts the previous model back in service.

* Data: ``../shared/data/dstc11`` compiled as in ``benchmarks.train_sft_dstc11`` (serving
  prompt, gold passages, one row per conversation, split by conversation).
* Two candidates, same recipe, same seeded ``--train-rows`` training conversations:
  ``sft`` on the real answers; ``shuffled`` on the same prompts with the answers permuted across
  conversations (no answer stays with its own conversation).
* One evaluation (fixed protocol) of the base model (production), ``sft`` and ``shuffled`` on the
  first ``--eval-rows`` held-out conversations with BM25-retrieved passages: the gate's primary
  metric is ROUGE-L F1 in the retrieved setting.
* The sequence: the gate (safety batteries included) runs for ``sft`` against the base model and
  promotes it; then for ``shuffled`` against the new production, ``sft``, and refuses it (and
  ``promote`` without ``--force`` raises); then ``rollback`` restores the base model, and an Agent
  built from the configuration answers a customer with it (the logged reply names the version).

    python -m benchmarks.gate_dstc11 [--train-rows 80] [--eval-rows 40] [--home DIR] [--reuse-sft HOME]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from benchmarks.common import (
    PassageKnowledge,
    bench_home,
    dstc11_data,
    dstc11_persona,
    require_data,
    write_result,
)


def shuffled_answers(rows: list[dict], seed: int = 1) -> list[dict]:
    """The rows with their completions permuted so that no row keeps its own answer."""
    order = list(range(len(rows)))
    rng = random.Random(seed)
    while True:
        rng.shuffle(order)
        if all(i != j for i, j in enumerate(order)):
            break
    return [{**row, "completion": rows[j]["completion"]} for row, j in zip(rows, order, strict=True)]


def reuse_sft(source: Path, registry, parent: str, n_rows: int, overrides: dict) -> dict:
    """Register the adapter that ``benchmarks.train_sft_dstc11`` trained in ``source`` as this
    run's sft candidate, after checking it saw the same rows with the same recipe settings."""
    from agent.models import ModelRegistry

    trained = json.loads((source / "train_sft_dstc11_train.json").read_text())
    metrics = trained["train_metrics"]
    if metrics.get("train_rows") != n_rows:
        raise SystemExit(f"{source} trained on {metrics.get('train_rows')} rows, not --train-rows {n_rows}")
    # The row count is checked above (that benchmark's record writes no cap as None).
    differ = {
        k: v for k, v in overrides.items() if k != "data.max_examples" and trained["overrides"].get(k) != v
    }
    if differ:
        raise SystemExit(f"{source} trained with other settings than this benchmark: {differ}")
    adapter = ModelRegistry(source).get(trained["version"]).adapter_path
    version = registry.register(
        base_model=registry.get(parent).base_model,
        adapter_path=adapter,
        parent=parent,
        metrics=metrics,
        notes=f"sft (lora), trained by benchmarks.train_sft_dstc11 in {source}",
    )
    print(f"sft: {version.name} is {source}'s {trained['version']} ({n_rows} rows)", flush=True)
    return {"version": version.name, "rows": n_rows, "train_metrics": metrics, "reused_from": str(source)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=80)
    parser.add_argument("--eval-rows", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8, help="generation batch size")
    parser.add_argument("--home", type=Path)
    parser.add_argument(
        "--reuse-sft",
        type=Path,
        metavar="HOME",
        help="take the sft candidate from a benchmarks.train_sft_dstc11 data home instead of training it; "
        "that benchmark samples its rows with the same seed and recipe, so it must have trained "
        "on --train-rows conversations",
    )
    args = parser.parse_args()

    import training.evaluate as ev
    from agent.config import load_config
    from agent.errors import GateError
    from agent.generator import build_generator
    from agent.models import ModelRegistry
    from agent.runtime import Agent
    from agent.store import LogStore
    from training.data import load_docs
    from training.gate import GateConfig, run_gate
    from training.gate import promote as gate_promote
    from training.sft import train_sft

    home = bench_home(args.home, "bench-gate-")
    os.environ["SUPPORTLOOP_HOME"] = str(home)
    registry = ModelRegistry(home)
    start_production = registry.production_name()
    persona = dstc11_persona()

    # 1. Data, split by conversation.
    data = dstc11_data()
    rows = random.Random(0).sample(data.sft_train, min(args.train_rows, len(data.sft_train)))
    held_out = data.sft_val[: args.eval_rows]
    print(f"training on {len(rows)} conversations, evaluating on {len(held_out)}", flush=True)

    # 2. Two candidates, same recipe and rows; one on shuffled answers. Kept in the data home.
    overrides = {
        "learning_rate": 3e-4,
        "lora.layers_to_transform": list(range(15, 30)),
        "data.max_examples": len(rows),  # every row (None would keep the recipe's cap)
    }
    record_file = home / "gate_dstc11_train.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    if args.reuse_sft is not None and record.get("sft", {}).get("rows") != len(rows):
        record["sft"] = reuse_sft(args.reuse_sft, registry, start_production, len(rows), overrides)
        record_file.write_text(json.dumps(record, indent=1))
    for name, train_rows in (("sft", rows), ("shuffled", shuffled_answers(rows))):
        if name in record and record[name]["rows"] == len(rows):
            print(f"{name}: {record[name]['version']} (trained earlier, {record_file})", flush=True)
            continue
        result = train_sft(train_rows, base=start_production, home=home, overrides=overrides)
        record[name] = {"version": result.version, "rows": len(rows), "train_metrics": result.metrics}
        record_file.write_text(json.dumps(record, indent=1))
        print(f"{name}: trained {result.version} in {result.metrics.get('train_seconds')} s", flush=True)
    sft, shuffled = record["sft"]["version"], record["shuffled"]["version"]

    # 3. One evaluation of all three on identical retrieved-passage inputs.
    retriever = ev.bm25_retriever(load_docs(require_data("dstc11", "knowledge_docs.jsonl")), k=3)
    started = time.perf_counter()
    plan = ev.EvalPlan(
        models={"base": start_production, "sft": sft, "shuffled": shuffled},
        examples=ev.examples_from_rows(held_out),
        retriever=retriever,
        settings=("retrieved",),
        protocol=ev.Protocol(batch_size=args.batch_size),
    )
    report = ev.evaluate_versions(plan, home)
    eval_s = time.perf_counter() - started
    table = {role: report["models"][role]["retrieved"] for role in plan.models}
    for role, metrics in table.items():
        print(
            f"{role:9s} ROUGE-L {metrics['rougeL_f1']:.4f}  perplexity {metrics['perplexity']:.2f}",
            flush=True,
        )

    def gate(candidate_role: str, production_role: str) -> dict:
        pair = {
            "models": {
                "candidate": {"retrieved": table[candidate_role]},
                "production": {"retrieved": table[production_role]},
            }
        }
        decision = run_gate(
            plan.models[candidate_role],
            pair,
            home=home,
            config=GateConfig(),
            retriever=retriever,
            persona=persona,
        )
        outcome = {"decision": decision.to_dict(), "summary": decision.summary()}
        try:
            gate_promote(plan.models[candidate_role], home=home, decision=decision)
            outcome["promoted"] = True
        except GateError as exc:
            outcome["promoted"], outcome["promote_error"] = False, str(exc)
        outcome["production_after"] = registry.production_name()
        print(outcome["summary"], "->", "promoted" if outcome["promoted"] else "refused", flush=True)
        return outcome

    # 4. The sequence: promote the better one, refuse the shuffled one, roll back, serve.
    steps = {"sft_over_base": gate("sft", "base")}
    steps["shuffled_over_production"] = gate(
        "shuffled", "sft" if steps["sft_over_base"]["promoted"] else "base"
    )
    before_rollback = registry.production_name()
    served: dict = {"production_before": before_rollback}
    if before_rollback == start_production:
        served["restored"] = None  # nothing was promoted: there is nothing to roll back
        print("nothing was promoted, so there is nothing to roll back", flush=True)
    else:
        restored = registry.rollback().name
        config = load_config()
        config.persona = persona
        knowledge = PassageKnowledge(retriever)
        agent = Agent(build_generator(config), knowledge, LogStore.from_config(config), config)
        try:
            question = ev.split_user_message(held_out[0]["prompt"][-1]["content"])[1]
            reply = agent.reply("gate-demo-after-rollback", question)
        finally:
            agent.close()
        served |= {"restored": restored, "question": question}
        served |= {"reply": reply.text, "model_version": reply.model_version}
        print(
            f"rollback: {before_rollback} -> {restored}; the agent answered with {reply.model_version}",
            flush=True,
        )

    out = {
        "benchmark": "gate_dstc11",
        "train_conversations": len(rows),
        "eval_conversations": len(held_out),
        "versions": {"base": start_production, "sft": sft, "shuffled": shuffled},
        "train": record,
        "eval_seconds": round(eval_s, 1),
        "retrieved": {
            role: {k: m[k] for k in ("rougeL_f1", "bleu", "perplexity", "groundedness", "answer_chars")}
            for role, m in table.items()
        },
        "gate": steps,
        "rollback": served,
        "protocol": report["protocol"],
    }
    write_result("gate_dstc11", out, echo=False)
    print(json.dumps({k: out[k] for k in ("retrieved", "versions")}))


if __name__ == "__main__":
    main()
