"""The sound gate: candidate and production compared item by item on the same held-out items
(``agent.stats.paired_test``), no significant regression on any slice, infrastructure failures
left out of the metric and reported, and one sentence saying why."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agent.generator import ScriptedGenerator
from agent.models import ModelRegistry
from agent.stats import paired_test, two_proportions
from training.gate import GateConfig, ItemPair, decide, eval_summary, paired_items, run_gate

SAFE = {"abuse_refusal": 1.0, "canary_leaks": 0.0, "escalation_precision": 1.0}
BOTH_SAFE = {"candidate": SAFE, "production": SAFE}


def metrics(candidate: float, production: float) -> dict:
    return {
        "candidate": {"retrieved": {"rougeL_f1": candidate}},
        "production": {"retrieved": {"rougeL_f1": production}},
    }


def items(n: int, gain: float, slices: dict[str, str], seed: int, noise: float = 0.05) -> list[ItemPair]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        base = rng.uniform(0.2, 0.6)
        out.append(ItemPair(base + gain + rng.gauss(0, noise), base, slices))
    return out


def mean(pairs: list[ItemPair], role: str) -> float:
    values = [getattr(p, role) for p in pairs if getattr(p, role) is not None]
    return sum(values) / len(values)


def gate(pairs: list[ItemPair], config: GateConfig = GateConfig()):  # type: ignore[no-untyped-def]
    return decide(
        "v2",
        "v1",
        metrics(mean(pairs, "candidate"), mean(pairs, "production")),
        BOTH_SAFE,
        config,
        pairs=pairs,
    )


def test_an_average_gain_that_hides_a_significant_slice_regression_is_refused_naming_the_slice() -> None:
    answerable = items(45, +0.20, {"answerability": "answer", "turn": "first"}, seed=1)
    declines = items(15, -0.15, {"answerability": "decline", "turn": "first"}, seed=2)
    pairs = answerable + declines
    assert mean(pairs, "candidate") - mean(pairs, "production") > 0.05  # the average improves

    decision = gate(pairs)
    assert decision.primary["paired"]["p_better"] < 0.05  # ... significantly, overall
    assert not decision.passed
    assert decision.why.startswith("Refused v2: regresses significantly on slice answerability=decline")
    assert "answerability=answer" not in " ".join(decision.failures)
    regressed = decision.slices["answerability=decline"]
    assert regressed["mean"] < 0 and regressed["p_worse"] < 0.05 and regressed["ci_high"] < 0
    assert decision.slices["turn=first"]["tested"] and decision.slices["turn=first"]["mean"] > 0


def test_a_consistent_gain_on_every_slice_is_promoted_with_p_value_and_interval() -> None:
    pairs = items(30, +0.10, {"answerability": "answer"}, seed=3) + items(
        10, +0.08, {"answerability": "decline"}, seed=4
    )
    decision = gate(pairs)
    assert decision.passed, decision.failures
    paired = decision.primary["paired"]
    assert paired["n"] == 40 and paired["p_better"] < 0.01 and 0 < paired["ci_low"] < paired["ci_high"]
    assert decision.why.startswith("Promoted v2: rougeL_f1 rose by +0.")
    assert "p = " in decision.why and decision.why.count(".") >= 1 and "\n" not in decision.why


def test_a_gain_within_the_noise_is_refused_though_its_mean_clears_the_margin() -> None:
    rng = random.Random(5)
    pairs = []
    for _ in range(20):
        base = rng.uniform(0.2, 0.6)
        pairs.append(ItemPair(base + rng.gauss(0.02, 0.3), base, {}))
    decision = gate(pairs, GateConfig(margin=0.0))
    paired = decision.primary["paired"]
    assert paired["p_better"] >= 0.05 and not decision.passed
    assert "p = " in decision.why and decision.why.startswith("Refused v2: rougeL_f1 (retrieved) paired")


def test_infrastructure_failures_are_left_out_of_the_metric_and_reported() -> None:
    good = items(30, +0.10, {}, seed=6)
    # Items where the candidate timed out (no score) would have dragged the mean to zero.
    timeouts = [ItemPair(None, 0.5, {}) for _ in range(8)]
    crashes = [ItemPair(0.1, None, {}) for _ in range(2)]
    decision = gate([*good, *timeouts, *crashes])
    assert decision.passed, decision.failures
    assert decision.primary["infrastructure_failures"] == {
        "candidate": 8,
        "production": 2,
        "items": 40,
        "paired": 30,
    }
    assert any("candidate 8, production 2 of 40 items" in r for r in decision.reasons)
    assert decision.primary["paired"]["n"] == 30


def test_small_slices_are_reported_not_tested() -> None:
    pairs = items(30, +0.10, {"source": "Filters"}, seed=7) + items(3, -0.3, {"source": "Warranty"}, seed=8)
    decision = gate(pairs)
    assert decision.slices["source=Warranty"] == {"n": 3, "tested": False}
    assert decision.passed, decision.failures


def test_paired_items_scores_each_answer_and_marks_failures() -> None:
    report = {
        "answers": {
            "candidate": {"retrieved": ["Replace it every 6 months.", None, "No idea."]},
            "production": {"retrieved": ["Every year.", "Two years.", "It lasts two years."]},
        },
        "items": [
            {"reference": "Replace the filter every 6 months.", "slices": {"answerability": "answer"}},
            {"reference": "The warranty lasts 2 years.", "slices": {"answerability": "answer"}},
            {"reference": "The warranty lasts two years.", "slices": {"answerability": "answer"}},
        ],
        "failures": {"production": {"retrieved": [2]}},
    }
    pairs = paired_items(report, "retrieved", "rougeL_f1")
    assert pairs is not None and len(pairs) == 3
    assert pairs[0].candidate is not None and pairs[0].production is not None
    assert pairs[0].candidate > pairs[0].production
    assert pairs[1].candidate is None and pairs[2].production is None  # no answer; a marked failure
    assert paired_items(report, "retrieved", "bleu") is None  # not a per-item mean: aggregate rule
    assert paired_items({"models": {}}, "retrieved", "rougeL_f1") is None
    kept = eval_summary({**report, "n": 3, "models": metrics(0.5, 0.4)}, "v1")
    assert kept["answers"] == report["answers"] and kept["items"] == report["items"]


def test_run_gate_pairs_the_answers_of_an_evaluation_report(home: Path, tiny_model_dir: Path) -> None:
    registry = ModelRegistry(home)
    registry.register(name="v2", base_model=str(tiny_model_dir), kind="sft")
    references = [f"The part number {i} costs {10 + i} dollars." for i in range(12)]
    report = {
        "n": 12,
        "models": metrics(0.9, 0.2),
        "answers": {
            "candidate": {"retrieved": list(references)},
            "production": {"retrieved": [f"Please contact support about item {i}." for i in range(12)]},
        },
        "items": [{"reference": r, "slices": {"answerability": "answer"}} for r in references],
    }
    generators = {"candidate": ScriptedGenerator(), "production": ScriptedGenerator()}
    decision = run_gate("v2", report, home=home, generators=generators)
    assert decision.primary["paired"]["n"] == 12
    assert decision.primary["paired"]["p_better"] == pytest.approx(1 / 4096, abs=1e-6)  # all 12 better


def test_paired_test_and_two_proportions_on_known_cases() -> None:
    exact = paired_test([0.1] * 5)
    assert exact.p_better == pytest.approx(1 / 32) and exact.p_worse == 1.0
    assert exact.ci_low == pytest.approx(0.1) and exact.ci_high == pytest.approx(0.1)
    sampled = paired_test([0.1 + 0.01 * (i % 3) for i in range(40)])
    assert sampled.p_better < 0.001 and sampled.p_worse > 0.99
    assert paired_test([]).n == 0
    # 60/100 vs 45/100: z = 2.12, two-sided p = 0.034.
    result = two_proportions(45, 100, 60, 100)
    assert result.difference == pytest.approx(0.15)
    assert result.p_value == pytest.approx(0.0339, abs=0.001)
    assert result.ci_low is not None and result.ci_low > 0
    assert two_proportions(0, 0, 1, 2).p_value is None
