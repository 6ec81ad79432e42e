"""The evaluation protocol: metrics on hand-checked inputs, the few-shot prompt, both settings,
and the report shape on a tiny model (CLI included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import DataError
from agent.prompt import Passage, build_messages
from tests.training.trainkit import PERSONA, sft_rows
from training.evaluate import (
    FEW_SHOT,
    PROTOCOL,
    EvalExample,
    EvalPlan,
    Protocol,
    behaviour_scores,
    bleu,
    bm25_retriever,
    cut_at_stop,
    evaluate_loaded,
    evaluate_versions,
    examples_from_rows,
    generate,
    groundedness,
    pick_shots,
    reference_nll,
    retrieved_prompt,
    rouge_l,
    score,
    split_user_message,
    with_shots,
)


def test_rouge_and_bleu_on_hand_checked_strings() -> None:
    assert rouge_l(["the filter lasts a year"], ["the filter lasts a year"]) == 1.0
    assert rouge_l(["completely different words"], ["the filter lasts a year"]) == 0.0
    # stemming: "filters"/"filter" and "lasting"/"lasts" match
    assert rouge_l(["filters lasting"], ["filter lasts"]) == 1.0
    assert bleu(
        ["the filter lasts a whole year here"], ["the filter lasts a whole year here"]
    ) == pytest.approx(100)


def test_groundedness_and_behaviour() -> None:
    assert (
        groundedness("Replace the filter every 12 months", "[1] (f) Replace the filter every 12 months.")
        == 1.0
    )
    assert groundedness("Bananas are yellow", "[1] (f) Replace the filter.") == 0.0
    assert groundedness("", "text") is None
    scores = behaviour_scores(
        [
            "I don't know, let me connect you with a member of the support team.",
            "Every year.",
            "I don't know.",
        ],
        ["decline", "answer", "answer"],
    )
    assert scores == {
        "behaviour_accuracy": pytest.approx(2 / 3),
        "decline_precision": 0.5,
        "decline_recall": 1.0,
    }


def test_score_uses_the_passages_each_prompt_showed() -> None:
    prompt = build_messages("How long is the warranty?", [Passage("w", "w.md", "Two years.")], PERSONA)
    example = EvalExample(tuple(prompt), "The warranty is two years.", "c1", "answer")
    metrics = score(["The warranty is two years."], [example], [prompt], nll=(2.0, 2))
    assert metrics["rougeL_f1"] == 1.0 and metrics["perplexity"] == pytest.approx(2.718, abs=1e-3)
    assert metrics["groundedness"] == pytest.approx(2 / 3, abs=1e-3)  # "warranty" is not in the passage
    assert cut_at_stop("Two years.\nCustomer: thanks") == "Two years."


def test_example_parts_round_trip_through_the_serving_prompt() -> None:
    history = [("customer", "hi"), ("agent", "hello, how can I help?")]
    prompt = build_messages("Is it loud?", [Passage("n", "n.md", "22 dB")], PERSONA, history)
    example = EvalExample(tuple(prompt), "No.")
    assert (
        example.question == "Is it loud?"
        and example.history == history
        and example.system == prompt[0]["content"]
    )
    assert split_user_message(prompt[-1]["content"])[0].startswith("[1] (n) 22 dB")
    fresh = retrieved_prompt(example, lambda q, h: [Passage("n", "n.md", "22 dB")])
    assert fresh == prompt  # same question, history, passages -> the identical serving prompt


def test_few_shot_prompt_has_three_examples_in_build_messages_layout() -> None:
    rows = sft_rows()
    shots = pick_shots(rows, FEW_SHOT)
    assert len(shots) >= 3 and len({q for q, _ in shots}) == len(shots)
    example = examples_from_rows(rows[:1])[0]
    shot_prompt = with_shots(example.prompt, shots)
    assert sum(m["role"] == "assistant" for m in shot_prompt) == len(shots)
    expected = build_messages(
        example.question,
        [Passage("filters", "filters.md", rows[0]["completion"][0]["content"])],
        PERSONA,
        examples=shots,
    )
    assert shot_prompt == expected
    with pytest.raises(Exception, match="few-shot"):
        pick_shots(rows[:2], FEW_SHOT)


def test_bm25_retriever_uses_the_conversation() -> None:
    docs = {
        "a": Passage("a", "a", "Hobsons House: bathrooms are spotless and clean.", "HOBSONS HOUSE"),
        "b": Passage("b", "b", "Acorn Guest House: bathrooms were dirty.", "ACORN GUEST HOUSE"),
        "c": Passage("c", "c", "Parking costs extra at the Lensfield.", "LENSFIELD"),
    }
    retrieve = bm25_retriever(docs, k=1)
    hits = retrieve("Are their bathrooms clean?", [("agent", "The Hobsons House has 3 stars.")])
    assert hits[0].doc_id == "a"


def test_report_has_every_model_and_setting_on_identical_inputs(tiny_model_dir: Path, home: Path) -> None:
    rows = sft_rows()
    plan = EvalPlan(
        models={"candidate": str(tiny_model_dir), "few_shot": str(tiny_model_dir)},
        examples=examples_from_rows(rows[:2]),
        shot_pool=rows[2:],
        retriever=lambda q, h: [Passage("x", "x.md", "Replace the filter every 12 months.")],
        protocol=Protocol(max_new_tokens=6),
    )
    report = evaluate_versions(plan, home, progress=False)
    assert report["n"] == 2 and set(report["models"]) == {"candidate", "few_shot"}
    for role in report["models"]:
        for setting in ("gold", "retrieved"):
            metrics = report["models"][role][setting]
            assert 0.0 <= metrics["rougeL_f1"] <= 1.0 and metrics["perplexity"] > 1
    assert PROTOCOL.max_new_tokens == 96 and PROTOCOL.repetition_penalty == 1.1
    assert report["protocol"]["decoding"] == "greedy"
    assert report["protocol"]["repetition_penalty_on"] == "answer"
    assert report["protocol"]["few_shot_examples"] >= 3


def test_shared_prefix_path_scores_exactly_like_generate_plus_a_scoring_pass(
    default_model_dir, tokenizer
) -> None:
    """One forward pass per row (prefix cache, cache reused for generation) changes no score.
    On the real default model: a random tiny model's greedy answers decode to nothing."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(default_model_dir))
    rows = sft_rows()
    examples = examples_from_rows(rows[:1])
    shots = pick_shots(rows[2:], FEW_SHOT)
    prompts = [with_shots(e.prompt, shots) for e in examples] + [list(e.prompt) for e in examples]
    examples = examples + examples
    protocol = Protocol(max_new_tokens=16, batch_size=1)
    fast_metrics, fast_answers = evaluate_loaded(model, tokenizer, examples, prompts, protocol)
    plain_answers = generate(model, tokenizer, prompts, protocol)
    nll = [reference_nll(model, tokenizer, p, e.reference) for e, p in zip(examples, prompts, strict=True)]
    plain_metrics = score(plain_answers, examples, prompts, (sum(n for n, _ in nll), sum(c for _, c in nll)))
    assert fast_answers == plain_answers and any(fast_answers)
    assert fast_metrics["perplexity"] == pytest.approx(plain_metrics["perplexity"], rel=1e-4)
    assert fast_metrics["rougeL_f1"] == plain_metrics["rougeL_f1"]


def test_batched_path_matches_one_row_at_a_time(default_model_dir, tokenizer) -> None:
    """Rows of different lengths in one batch (padding between the shared prefix and each tail,
    references of different lengths): the same perplexity and, on these rows, the same answers
    as the one-row path."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(default_model_dir))
    rows = sft_rows()
    examples = examples_from_rows(rows[:3])
    shots = pick_shots(rows[3:], FEW_SHOT)
    prompts = [with_shots(e.prompt, shots) for e in examples]
    assert len({len(tokenizer.apply_chat_template(list(p), tokenize=False)) for p in prompts}) == 3
    assert len({e.reference for e in examples}) == 3
    one_metrics, one_answers = evaluate_loaded(
        model, tokenizer, examples, prompts, Protocol(max_new_tokens=16, batch_size=1)
    )
    batch_metrics, batch_answers = evaluate_loaded(
        model, tokenizer, examples, prompts, Protocol(max_new_tokens=16, batch_size=3)
    )
    assert batch_metrics["nll_tokens"] == one_metrics["nll_tokens"]
    assert batch_metrics["perplexity"] == pytest.approx(one_metrics["perplexity"], rel=1e-3)
    assert batch_answers == one_answers and all(batch_answers)


def test_compiled_engine_answers_and_scores_like_the_model_it_serves(
    default_model_dir, tokenizer, tmp_path: Path
) -> None:
    """``engine="compiled"`` evaluates the version's int8 engine: the same reference tokens are
    scored, the perplexity stays close to fp32's (int8 moves it a little, not a lot) and the
    answers are real answers, cut at the stop markers."""
    from transformers import AutoModelForCausalLM

    from agent import compiled
    from agent.models import ResolvedModel
    from training.decoding import compiled_answers_and_nll

    if not compiled.available():
        pytest.skip("ctranslate2 is not installed")
    model = AutoModelForCausalLM.from_pretrained(str(default_model_dir))
    rows = sft_rows()
    examples = examples_from_rows(rows[:2])
    prompts = [list(e.prompt) for e in examples]
    protocol = Protocol(max_new_tokens=16, engine="compiled")
    engine = compiled.ensure_compiled(
        ResolvedModel("default", str(default_model_dir)), tmp_path, check="none"
    )
    answers, total, count = compiled_answers_and_nll(engine, examples, prompts, protocol)
    fp32 = evaluate_loaded(model, tokenizer, examples, prompts, Protocol(max_new_tokens=16))[0]
    assert count == fp32["nll_tokens"]
    # How far int8 moves the loss depends on the CPU's instructions: within 10 % with AVX-512, 22 %
    # on an AVX2-only CPU (0.41 against 0.53 over these two answers). Whether an engine computes
    # its model is the equivalence check's to say (tests/agent/test_compiled.py).
    assert total / count == pytest.approx(fp32["nll_sum"] / fp32["nll_tokens"], rel=0.3)
    assert all(answers) and not any(m in a for a in answers for m in ("Customer:", "<|im_end|>"))


def test_an_unknown_evaluation_engine_is_refused_before_any_model_loads(home: Path) -> None:
    plan = EvalPlan(
        models={"candidate": "no-such-version"},
        examples=examples_from_rows(sft_rows()[:1]),
        protocol=Protocol(engine="onnx"),
    )
    with pytest.raises(DataError, match="unknown evaluation engine 'onnx'"):
        evaluate_versions(plan, home, progress=False)


def test_generation_stops_at_a_stop_marker(tokenizer) -> None:
    from training.decoding import _StopAtMarker

    prompt = tokenizer("Question?", add_special_tokens=False)["input_ids"]
    stop = _StopAtMarker(tokenizer, len(prompt))
    for tail, expected in (("Sure, it is 2 years.", False), ("Sure.\nCustomer: and then", True)):
        ids = prompt + tokenizer(tail, add_special_tokens=False)["input_ids"]
        import torch

        assert stop(torch.tensor([ids]), None).tolist() == [expected]
    assert cut_at_stop("Sure.\nCustomer: and then") == "Sure."


def test_eval_model_cli_prints_json_last(
    tiny_model_dir: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import training.evaluate

    monkeypatch.setattr(training.evaluate, "PROTOCOL", Protocol(max_new_tokens=6))  # the tiny model babbles

    from agent.cli import cli
    from agent.models import ModelRegistry
    from training.data import write_rows

    registry = ModelRegistry(home)
    registry.register(name="tiny", base_model=str(tiny_model_dir), kind="sft")
    registry.set_production("tiny")
    data = tmp_path / "sft_val.jsonl"
    write_rows(data, sft_rows()[:2])
    write_rows(tmp_path / "sft_train.jsonl", sft_rows()[2:])
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "filters.md").write_text("# Filters\nReplace the filter every 12 months.\n")
    result = CliRunner().invoke(
        cli, ["eval", "model", "--model", "tiny", "--data", str(data), "--docs", str(docs), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert set(report["models"]) == {"candidate", "production", "few_shot"}
    assert set(report["models"]["candidate"]) == {"gold", "retrieved"} and report["n"] == 2
    assert ModelRegistry(home).get("tiny").metrics["eval"]["production_version"] == "tiny"
