"""The compiled engine: conversion, its equivalence check, and the Generator contract."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from agent import compiled
from agent.compiled import CompiledGenerator, ensure_compiled, equivalence
from agent.errors import ModelNotFoundError
from agent.generator import GenerationOptions, LocalGenerator, build_generator
from agent.models import ResolvedModel

pytestmark = pytest.mark.skipif(not compiled.available(), reason="ctranslate2 is not installed")
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "How long is the warranty?"},
]


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CompiledGenerator:
    home = tmp_path_factory.mktemp("compiled-home")
    resolved = ResolvedModel(version="tiny", base=str(tiny_model_dir))
    engine = ensure_compiled(resolved, home, check="none")
    assert ensure_compiled(resolved, home, check="none") == engine  # converted once, then cached
    return CompiledGenerator(engine, version="tiny")


def test_streaming_honours_the_token_limit_and_counts_usage(tiny_engine: CompiledGenerator) -> None:
    deltas = list(tiny_engine.stream(MESSAGES, GenerationOptions(max_new_tokens=12)))
    usage = tiny_engine.last_usage
    assert usage.prompt_tokens == len(tiny_engine.prompt_tokens(MESSAGES))
    assert 0 < usage.completion_tokens <= 12 and deltas
    assert "".join(deltas) == tiny_engine.tokenizer.decode(
        tiny_engine.tokenizer("".join(deltas), add_special_tokens=False)["input_ids"]
    )


def test_cancel_and_timeout_stop_generation(tiny_engine: CompiledGenerator) -> None:
    cancel = threading.Event()
    cancel.set()
    list(tiny_engine.stream(MESSAGES, GenerationOptions(max_new_tokens=64), cancel))
    assert tiny_engine.last_usage.cancelled and tiny_engine.last_usage.completion_tokens == 1
    list(tiny_engine.stream(MESSAGES, GenerationOptions(max_new_tokens=64, timeout_s=0.0)))
    assert tiny_engine.last_usage.timed_out and tiny_engine.last_usage.completion_tokens == 1


def test_closing_the_stream_early_stops_and_frees_the_engine(tiny_engine: CompiledGenerator) -> None:
    stream = tiny_engine.stream(MESSAGES, GenerationOptions(max_new_tokens=64))
    next(stream)
    stream.close()
    assert list(tiny_engine.stream(MESSAGES, GenerationOptions(max_new_tokens=4)))  # the lock is free


def test_a_broken_conversion_is_refused(tiny_model_dir: Path, tiny_model, tmp_path: Path) -> None:
    """An engine that does not compute the model (here: another model's weights) fails the check."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(1)
    other = LlamaForCausalLM(tiny_model[0].config)
    for p in other.parameters():
        p.data.mul_(40)  # sharp, confident logits: agreement is not a matter of ties
    compiled.convert(other, tiny_model[1], tmp_path)
    model = tiny_model[0]
    for p in model.parameters():
        p.data.mul_(40)
    report = equivalence(model, tiny_model[1], tmp_path, check="short")
    assert not report.passed and report.teacher_forced < compiled.MIN_TEACHER_FORCED
    # The model's own conversion passes. In float32: how faithfully int8 computes these sharp
    # random weights depends on the CPU's instructions (an AVX2-only CPU gave 0.49 agreement,
    # AVX-512 ones passed), and ``ensure_compiled`` falls back to float32 where it does not.
    same = tmp_path / "same"
    compiled.convert(model, tiny_model[1], same, "float32")
    assert equivalence(model, tiny_model[1], same, check="short", compute_type="float32").passed


def test_a_model_int8_cannot_compute_is_served_by_a_float32_engine(
    tiny_model, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """int8 keeps one scale per weight row, so one huge weight in a row rounds the rest to zero.
    Here the huge weights meet an input the norms hold at zero: the model computes as before, the
    int8 engine does not. It fails the check in int8; the float32 engine serves, and says so."""
    model, tokenizer = tiny_model
    for name, p in model.named_parameters():
        p.data.mul_(40)  # sharp, confident logits, as in the broken-conversion test
        if name.endswith("norm.weight"):
            p.data[0] = 0.0  # the projections after this norm see 0 in their first input
        if name.endswith(
            ("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight")
        ):
            p.data[:, 0] = 1e3  # an outlier weight per row, multiplied by that 0
    directory = tmp_path / "model"
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    resolved = ResolvedModel(version="outliers", base=str(directory))
    with caplog.at_level(logging.WARNING, logger="supportloop.agent.compiled"):
        engine = ensure_compiled(resolved, tmp_path / "home", check="short")
    report = json.loads((engine / "equivalence.json").read_text())
    assert report["compute_type"] == "float32" and report["passed"]
    assert report["replaced"]["compute_type"] == "int8" and not report["replaced"]["passed"]
    assert report["teacher_forced"] > report["replaced"]["teacher_forced"]
    assert "int8 engine for outliers differs" in caplog.text
    generator = CompiledGenerator(engine, version="outliers")
    assert generator.compute_type == "float32"
    assert list(generator.stream(MESSAGES, GenerationOptions(max_new_tokens=4)))


def test_a_conversion_that_fails_in_float32_too_is_refused_with_both_figures(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing serves when neither engine computes the model (here: both convert another model)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(1)
    other = LlamaForCausalLM(tiny_model[0].config)
    for p in other.parameters():
        p.data.mul_(40)
    convert = compiled.convert
    monkeypatch.setattr(compiled, "convert", lambda model, tok, out, ct: convert(other, tok, out, ct))
    model = tiny_model[0]
    for p in model.parameters():
        p.data.mul_(40)
    directory = tmp_path / "model"
    model.save_pretrained(directory)
    tiny_model[1].save_pretrained(directory)
    resolved = ResolvedModel(version="broken", base=str(directory))
    with pytest.raises(ModelNotFoundError, match=r"int8: teacher-forced .*; float32: teacher-forced"):
        ensure_compiled(resolved, tmp_path / "home", check="short")
    assert not list((tmp_path / "home" / "models" / "compiled").glob("broken-*"))  # nothing kept


def test_the_agent_falls_back_to_transformers_with_the_reason_logged(
    home: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.config import load_config

    def refuse(*args, **kwargs):
        raise ModelNotFoundError("the compiled engine differs from the model")

    monkeypatch.setattr(CompiledGenerator, "load", classmethod(lambda cls, *a, **k: refuse()))
    config = load_config()
    config.generation.engine = "auto"
    with caplog.at_level(logging.WARNING, logger="supportloop.agent"):
        generator = build_generator(config, str(tiny_model_dir))
    assert isinstance(generator, LocalGenerator)
    assert "differs from the model" in caplog.text
    config.generation.engine = "ctranslate2"
    with pytest.raises(ModelNotFoundError):
        build_generator(config, str(tiny_model_dir))


@pytest.mark.slow
def test_the_default_model_compiles_passes_its_check_and_answers(
    default_model_dir: Path, tmp_path: Path
) -> None:
    resolved = ResolvedModel(version="base", base=str(default_model_dir))
    engine = ensure_compiled(resolved, tmp_path, check="short")
    report = (engine / "equivalence.json").read_text()
    assert '"passed": true' in report
    generator = CompiledGenerator(engine, version="base")
    messages = [
        {
            "role": "user",
            "content": "Passages:\n[1] The warranty lasts 2 years.\n\nCustomer: How long is the warranty?",
        }
    ]
    answer = "".join(generator.stream(messages, GenerationOptions(max_new_tokens=32)))
    assert "2" in answer


def test_the_fixed_head_of_an_agent_prompt_is_the_engines_static_prompt(
    tiny_engine: CompiledGenerator,
) -> None:
    """System message + worked example are prefilled once and cached; the answer is unchanged and
    usage still counts the whole prompt."""
    from agent.config import Persona
    from agent.prompt import build_messages, static_head

    messages = build_messages("How long is the warranty?", [], Persona())
    assert static_head(messages) == 3 and static_head(MESSAGES) == 0
    tokens = tiny_engine.prompt_tokens(messages)
    static, rest = tiny_engine.split_static(messages, tokens)
    assert static and static + rest == tokens
    assert tiny_engine.split_static(MESSAGES, tiny_engine.prompt_tokens(MESSAGES))[0] == []
    options = GenerationOptions(max_new_tokens=10)
    cached = "".join(tiny_engine.stream(messages, options))
    assert tiny_engine.last_usage.prompt_tokens == len(tokens)
    plain = tiny_engine.generator.generate_tokens(
        tokens, max_length=10, sampling_topk=1, repetition_penalty=1.1
    )
    ids = [step.token_id for step in plain if step.token_id != tiny_engine.tokenizer.eos_token_id]
    assert cached == tiny_engine.tokenizer.decode(ids, skip_special_tokens=True)


def test_the_full_check_reports_the_gates_metric_and_refuses_a_significant_drop(
    tiny_model, tmp_path: Path
) -> None:
    from training.gate import GateConfig

    assert GateConfig().margin == compiled.METRIC_MARGIN  # one margin for the gate and the check
    compiled.convert(tiny_model[0], tiny_model[1], tmp_path)
    report = equivalence(tiny_model[0], tiny_model[1], tmp_path, check="full")
    assert report.prompts == len(compiled.CHECK_PROMPTS) and report.metric == "rougeL_f1"
    assert report.metric_delta is not None and report.metric_delta_ci is not None
    low, high = report.metric_delta_ci
    assert low <= report.metric_delta <= high
    from agent.stats import paired_test

    assert paired_test([-0.3, -0.2, -0.25, -0.4, -0.3]).ci_high < -compiled.METRIC_MARGIN  # refused
    assert paired_test([-0.4, 0.3, 0.0, -0.2, 0.1]).ci_high >= -compiled.METRIC_MARGIN  # noise: kept
