"""Held-out evaluation of model versions under one fixed protocol.

The protocol (``PROTOCOL``), identical for every model and every report:

* **greedy** decoding, at most **96** new tokens, the serving repetition penalty (1.1), answers
  cut at the runtime's stop markers;
* **ROUGE-L F1** (``rouge-score``, ``use_stemmer=True``, mean over answers), corpus **BLEU**
  (``sacrebleu``), **perplexity** of the reference answers given the prompt (completion tokens
  only, token-weighted over the set), **groundedness** (share of an answer's content words found
  in the passages it was shown, ``agent.citations.content_words``), and **behaviour**
  correctness where the expected behaviour is known (a row's ``expected`` field, else whether the
  reference answer itself declines/hands over: ``agent.citations.says_unknown``);
* three models on **identical inputs**: the candidate, production, and a **few-shot** baseline
  (the candidate's base model with ``FEW_SHOT`` in-domain (customer, agent) examples from the
  training split placed before the conversation, as ``agent.prompt.build_messages(examples=)``);
* two **settings**: ``gold`` (the passages compiled into the rows) and ``retrieved`` (the same
  question and history with passages re-retrieved by a ``retriever`` callable: the knowledge
  index, or BM25 over a documents file).

Where each part lives: the inputs in ``training.heldout``, the retrievers in
``training.retrievers``, the batched answer/perplexity engine in ``training.decoding``, the pure
metrics in ``training.metrics``. This module fixes the inputs, drives the models through the
engine and assembles the report; their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import DataError
from agent.prompt import Message
from training.data import Retriever
from training.decoding import (
    PROTOCOL,
    Protocol,
    answers_and_nll,
    compiled_answers_and_nll,
    cut_at_stop,
    generate,
    greedy_options,
    reference_nll,
)
from training.heldout import (
    FEW_SHOT,
    SETTINGS,
    EvalExample,
    examples_from_rows,
    load_eval_rows,
    pick_shots,
    retrieved_prompt,
    setting_prompts,
    split_user_message,
    with_shots,
)
from training.metrics import METRICS, behaviour_scores, bleu, groundedness, rouge_l, score
from training.retrievers import bm25_retriever, knowledge_retriever

__all__ = [
    "FEW_SHOT",
    "METRICS",
    "PROTOCOL",
    "SETTINGS",
    "EvalExample",
    "EvalPlan",
    "Protocol",
    "Retriever",
    "behaviour_scores",
    "bleu",
    "bm25_retriever",
    "compiled_answers_and_nll",
    "cut_at_stop",
    "evaluate_loaded",
    "evaluate_versions",
    "examples_from_rows",
    "generate",
    "greedy_options",
    "groundedness",
    "knowledge_retriever",
    "load_eval_rows",
    "pick_shots",
    "reference_nll",
    "retrieved_prompt",
    "rouge_l",
    "score",
    "setting_prompts",
    "split_user_message",
    "with_shots",
]


def evaluate_loaded(
    model: Any,
    tokenizer: Any,
    examples: Sequence[EvalExample],
    prompts: Sequence[Sequence[Message]],
    protocol: Protocol = PROTOCOL,
    bar: Any = None,
) -> tuple[dict[str, Any], list[str]]:
    """Metrics and answers of one loaded model on one setting's prompts."""
    if not examples:
        return score([], examples, prompts, (0.0, 0)), []
    answers, total, count = answers_and_nll(model, tokenizer, examples, prompts, protocol, bar)
    return score(answers, examples, prompts, (total, count)), answers


ENGINES = ("transformers", "compiled")
Runner = Callable[[Sequence[EvalExample], Sequence[Sequence[Message]], Any], tuple[dict[str, Any], list[str]]]


def _runner(resolved: Any, home: Path, protocol: Protocol) -> Runner:
    """Metrics and answers of one model version on one setting's prompts, by the protocol's engine."""
    if protocol.engine == "compiled":
        from agent.compiled import ensure_compiled

        engine = ensure_compiled(resolved, home, check="short")

        def compiled(examples: Sequence[EvalExample], prompts: Sequence[Sequence[Message]], bar: Any) -> Any:
            if not examples:
                return score([], examples, prompts, (0.0, 0)), []
            answers, total, count = compiled_answers_and_nll(engine, examples, prompts, protocol, bar)
            return score(answers, examples, prompts, (total, count)), answers

        return compiled
    from agent.models import load_resolved

    model, tokenizer = load_resolved(resolved, merge=True)
    return lambda examples, prompts, bar: evaluate_loaded(model, tokenizer, examples, prompts, protocol, bar)


@dataclass
class EvalPlan:
    """What to evaluate: model specs by role, the held-out examples, the few-shot pool."""

    models: dict[str, str]  # role -> spec ("candidate": "v3", "production": "production", "few_shot": base)
    examples: list[EvalExample]
    shot_pool: list[dict[str, Any]] = field(default_factory=list)
    retriever: Retriever | None = None
    settings: tuple[str, ...] = SETTINGS
    protocol: Protocol | None = None  # None: the module's PROTOCOL (tests shorten it)
    # Called after each (role, setting) with (role, setting, metrics): long runs save as they go.
    on_result: Callable[[str, str, dict[str, Any]], None] | None = None


def evaluate_versions(plan: EvalPlan, home: Path, progress: bool = True) -> dict[str, Any]:
    """The report: ``{"models": {role: {setting: metrics}}, "n", "protocol", "specs", ...}``."""
    from tqdm import tqdm

    from agent.models import resolve_spec

    protocol = plan.protocol or PROTOCOL
    if protocol.engine not in ENGINES:
        raise DataError(
            f"unknown evaluation engine {protocol.engine!r}; expected one of {', '.join(ENGINES)}"
        )

    # 1. The inputs every model sees, fixed before any model runs.
    shots = pick_shots(plan.shot_pool or [], FEW_SHOT) if "few_shot" in plan.models else []
    prompts = {s: setting_prompts(plan.examples, s, plan.retriever) for s in plan.settings}
    shot_prompts = {s: setting_prompts(plan.examples, s, plan.retriever, shots) for s in plan.settings}

    # 2. Each model in turn (one in memory at a time), each setting.
    report: dict[str, Any] = {"models": {}, "n": len(plan.examples), "specs": {}, "answers": {}}
    total = len(plan.models) * len(plan.settings) * len(plan.examples)
    with tqdm(total=total, desc="evaluating", disable=not progress, leave=False) as bar:
        for role, spec in plan.models.items():
            resolved = resolve_spec(spec, home=home)
            run = _runner(resolved, home, protocol)
            report["specs"][role] = resolved.version
            report["models"][role], report["answers"][role] = {}, {}
            for setting in plan.settings:
                bar.set_postfix_str(f"{role}/{setting}")
                inputs = shot_prompts[setting] if role == "few_shot" else prompts[setting]
                metrics, answers = run(plan.examples, inputs, bar)
                report["models"][role][setting] = metrics
                report["answers"][role][setting] = answers
                if plan.on_result is not None:
                    plan.on_result(role, setting, metrics)
            del run

    # 3. What was run, so the report can be reproduced.
    report["protocol"] = {
        **protocol.__dict__,
        "decoding": "greedy",
        "repetition_penalty_on": "answer",  # the answer's own tokens, not the prompt's (since 2026-12-06)
        "few_shot_examples": len(shots),
    }
    report["shots"] = shots
    # Per item, so the gate can pair the models' answers (``report["answers"]``) item by item.
    report["items"] = [
        {"conversation_id": e.conversation_id, "reference": e.reference, "slices": e.slices}
        for e in plan.examples
    ]
    return report
