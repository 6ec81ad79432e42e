"""The compiled serving path: a model version converted once into CTranslate2 (int8 weights).

``ensure_compiled(resolved, home)`` merges a version's LoRA adapter into its base, converts the
merged model with CTranslate2 (int8 weights) and caches it under
``<home>/models/compiled/<key>/``, where the key is a digest of the base and adapter files, so a
new version, or a changed adapter, is converted again and an unchanged one never is.

**No conversion serves unchecked.** Before a conversion is kept, ``equivalence`` compares the
compiled model with the transformers model on a fixed prompt set: teacher-forced top-1 token
agreement over reference answers, and greedy agreement (the share of the transformers model's
greedy tokens the compiled model reproduces before the first difference, reported). Users of
llama.cpp and Ollama report merged fine-tunes that silently behave like their base after export:
this check is what catches that here.

An int8 engine that fails the check is converted again without quantization, and checked the same
way. int8 rounding moves some fine-tunes' next-token choices by up to 2 nats: 2 of 6 short CPU
fine-tunes fell under the bar in int8, while their float32 engines agreed on every token
(docs/experiments/2026-12-06-beam-search-and-int8-refusals.md). On the serving prompt the float32
engine decodes at 0.81x int8's rate and 1.68x transformers' (``python -m
benchmarks.compute_types``, 2-core CPU). Only when it also fails does ``ModelNotFoundError`` name
the figures of both. The report is kept beside the engine (``equivalence.json``: its
``compute_type``, and under ``replaced`` the int8 report it replaced).

``CompiledGenerator`` serves it behind the ``Generator`` protocol with the same contract as
``LocalGenerator``: one generation at a time, deadline, cancel event, usage counts, streaming
deltas that decode whole characters. The part of an agent turn's prompt that never changes (the
system message and the worked example, ``agent.prompt.static_head``) goes to the engine as its
*static prompt*: its state is computed once and reused, so each turn prefills only the passages,
the history and the question.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from agent.errors import GenerationError, ModelNotFoundError
from agent.generator import (
    GenerationOptions,
    Message,
    Usage,
    _UsageMixin,
    acquire_slot,
    refuse_context_weight,
    tokenizer_count,
)
from agent.prompt import static_head
from agent.stats import paired_test

log = logging.getLogger("supportloop.agent.compiled")
MAX_STATIC_PROMPTS = 8  # distinct cached prompt heads per engine (one per persona, in practice)

COMPUTE_TYPE = "int8"
FALLBACK_COMPUTE_TYPE = "float32"  # when int8 does not compute the model faithfully
MIN_TEACHER_FORCED = 0.9  # top-1 agreement over reference answers
METRIC_MARGIN = 0.005  # the gate's default margin (training.gate.GateConfig.margin; a test keeps them equal)
# Greedy agreement is reported, not required: the default weights are a de-quantized Q4_1, so
# int8 re-quantization changes greedy paths early (0.33 on the base model) while teacher-forced
# agreement stays high (0.93); a broken conversion falls far below on both.
_READY = "supportloop-engine.json"

# A fixed, small prompt set: support questions with passages and a reference answer, in the
# serving prompt's shape (the persona's default system prompt is added at check time).
CHECK_PROMPTS: tuple[tuple[str, str], ...] = (
    (
        "Passages:\n[1] (warranty) New purifiers have a 2-year warranty from the delivery date.\n\n"
        "Customer: How long is the warranty?",
        "New purifiers have a 2-year warranty from the delivery date [1].",
    ),
    (
        "Passages:\n[1] (returns) You can return a purifier within 30 days. Return shipping is free."
        "\n\nCustomer: Do I pay for return shipping?",
        "No, return shipping is free, and you can return a purifier within 30 days [1].",
    ),
    (
        "Passages:\n[1] (filters) Replace the HEPA filter every 6 months. The AF-300 costs $39.\n\n"
        "Customer: how often should I change the filter",
        "Replace the HEPA filter every 6 months; the AF-300 filter costs $39 [1].",
    ),
    (
        "Passages:\n[1] (error-codes) E4 means the motor is overheating. Unplug it for 30 minutes."
        "\n\nCustomer: my purifier shows E4",
        "E4 means the motor is overheating. Unplug the purifier for 30 minutes [1].",
    ),
    (
        "Passages:\n[1] (wifi) The purifier joins 2.4 GHz Wi-Fi networks only.\n\n"
        "Customer: what is the capital of France?",
        "I'm sorry, I don't have that information. I can connect you with a member of the support team.",
    ),
)


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ctranslate2") is not None


def engine_key(base: str, adapter: str | None) -> str:
    """A digest of the files that define the weights (base directory and adapter)."""
    h = hashlib.sha256(COMPUTE_TYPE.encode())
    for root in (base, adapter):
        if root is None:
            continue
        path = Path(root)
        if not path.is_dir():
            h.update(root.encode())
            continue
        for file in sorted(p for p in path.iterdir() if p.suffix in (".json", ".safetensors", ".bin")):
            stat = file.stat()
            h.update(f"{file.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Equivalence:
    """How closely the compiled engine follows the transformers model."""

    teacher_forced: float
    greedy: float
    prompts: int
    passed: bool
    compute_type: str = COMPUTE_TYPE
    # The gate's primary metric (ROUGE-L F1 of each side's greedy answer against the check
    # prompts' reference answers), full check only: the compiled side may not drop by more than
    # the gate's margin, judged as the gate judges, pair by pair: refused when the paired
    # bootstrap's 95 % interval of the difference lies wholly below -margin.
    metric: str = "rougeL_f1"
    transformers_metric: float | None = None
    compiled_metric: float | None = None
    metric_delta: float | None = None
    metric_delta_ci: tuple[float, float] | None = None
    # The int8 engine's report, when it failed and this float32 engine replaced it.
    replaced: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def engine_dir(home: Path, resolved: Any) -> Path:
    name = Path(str(resolved.version)).name.replace("/", "_") or "model"
    return home / "models" / "compiled" / f"{name}-{engine_key(resolved.base, resolved.adapter)}"


def ensure_compiled(resolved: Any, home: Path, *, check: str = "full") -> Path:
    """The compiled engine of ``resolved`` (a ``ResolvedModel``), converting and checking it once.

    ``check``: ``"full"`` (every check prompt, 48 greedy tokens each), ``"short"`` (two prompts,
    16 tokens: well under 30 s on 2 cores) or ``"none"`` (only for tests of the refusal itself)."""
    target = engine_dir(home, resolved)
    if (target / _READY).is_file():
        return target
    from agent.models import _file_lock, load_resolved

    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{target.name}.lock"):
        if (target / _READY).is_file():
            return target
        started = time.perf_counter()
        model, tokenizer = load_resolved(resolved, merge=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            failed: list[Equivalence] = []
            for compute_type in (COMPUTE_TYPE, FALLBACK_COMPUTE_TYPE):
                convert(model, tokenizer, staging, compute_type)
                report = equivalence(model, tokenizer, staging, check, compute_type)
                if failed:
                    report = replace(report, replaced=failed[0].to_dict())
                (staging / "equivalence.json").write_text(json.dumps(report.to_dict(), indent=2))
                if report.passed:
                    break
                failed.append(report)
                log.warning(
                    "the %s engine for %s differs from the model (%s)",
                    compute_type,
                    resolved.version,
                    _figures(report),
                )
            else:
                raise ModelNotFoundError(
                    f"the compiled engine for {resolved.version} differs from the model: "
                    + "; ".join(f"{r.compute_type}: {_figures(r)}" for r in failed)
                    + f" (teacher-forced needs {MIN_TEACHER_FORCED}; the metric may drop at most "
                    f"{METRIC_MARGIN}); it will not serve"
                )
            meta = {
                "version": resolved.version,
                "compute_type": report.compute_type,
                "seconds": round(time.perf_counter() - started, 1),
            }
            (staging / _READY).write_text(json.dumps({**meta, "equivalence": report.to_dict()}))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("compiled %s into %s", resolved.version, target)
    return target


def _figures(report: Equivalence) -> str:
    delta = "" if report.metric_delta is None else f", {report.metric} delta {report.metric_delta:+.3f}"
    return f"teacher-forced agreement {report.teacher_forced:.3f}, greedy {report.greedy:.3f}{delta}"


def engine_compute_type(engine: Path) -> str:
    """The compute type an engine directory was checked at (int8 unless its check replaced it)."""
    try:
        return str(json.loads((engine / _READY).read_text()).get("compute_type") or COMPUTE_TYPE)
    except (OSError, ValueError):
        return COMPUTE_TYPE


def convert(model: Any, tokenizer: Any, out: Path, compute_type: str = COMPUTE_TYPE) -> None:
    """Save the (merged) model and convert it to CTranslate2 in ``out`` (int8 weights, or
    unquantized for ``float32``)."""
    from ctranslate2.converters import TransformersConverter

    merged = out / "hf"
    model.save_pretrained(merged, safe_serialization=True)
    tokenizer.save_pretrained(merged)
    quantization = None if compute_type == "float32" else compute_type
    TransformersConverter(str(merged), load_as_float16=False).convert(
        str(out / "ct2"), quantization=quantization, force=True
    )
    tokenizer.save_pretrained(out / "ct2")
    shutil.rmtree(merged)


def chat_ids(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of ``messages`` through the tokenizer's chat template, ready for the answer."""
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


def _check_ids(tokenizer: Any, limit: int) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, reference answer ids) of the check prompts."""
    from agent.config import Persona
    from agent.prompt import system_message

    system = system_message(Persona())
    out = []
    for user, answer in CHECK_PROMPTS[:limit]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        out.append((chat_ids(tokenizer, messages), tokenizer(answer, add_special_tokens=False)["input_ids"]))
    return out


def equivalence(
    model: Any, tokenizer: Any, engine: Path, check: str = "full", compute_type: str = COMPUTE_TYPE
) -> Equivalence:
    """Compare the compiled engine in ``engine/ct2`` (run at ``compute_type``) with ``model``
    (see the module docstring)."""
    if check == "none":
        return Equivalence(
            teacher_forced=float("nan"),
            greedy=float("nan"),
            prompts=0,
            passed=True,
            compute_type=compute_type,
        )
    import ctranslate2
    import numpy as np
    import torch

    limit, new_tokens = (2, 16) if check == "short" else (len(CHECK_PROMPTS), 48)
    generator = ctranslate2.Generator(str(engine / "ct2"), device="cpu", compute_type=compute_type)
    agree, total, greedy = 0, 0, []
    answers: dict[str, list[str]] = {"transformers": [], "compiled": []}
    for prompt, answer in _check_ids(tokenizer, limit):
        ids = prompt + answer
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0]
        ours = logits[len(prompt) - 1 : len(ids) - 1].argmax(-1).tolist()
        theirs = np.asarray(generator.forward_batch([ids])).reshape(len(ids), -1)
        compiled = theirs[len(prompt) - 1 : len(ids) - 1].argmax(-1).tolist()
        agree += sum(a == b for a, b in zip(ours, compiled, strict=True))
        total += len(ours)
        share, texts = _greedy_agreement(model, generator, tokenizer, prompt, new_tokens)
        greedy.append(share)
        answers["transformers"].append(texts[0])
        answers["compiled"].append(texts[1])
    teacher = agree / max(total, 1)
    mean_greedy = sum(greedy) / len(greedy)
    passed = teacher >= MIN_TEACHER_FORCED
    if check != "full":
        return Equivalence(round(teacher, 4), round(mean_greedy, 4), len(greedy), passed, compute_type)
    references = [answer for _, answer in CHECK_PROMPTS[:limit]]
    before, after = (_rouge_l(answers[side], references) for side in ("transformers", "compiled"))
    differences = [b - a for a, b in zip(before, after, strict=True)]
    delta = sum(differences) / len(differences)
    paired = paired_test(differences)
    low, high = paired.ci_low, paired.ci_high
    return Equivalence(
        round(teacher, 4),
        round(mean_greedy, 4),
        len(greedy),
        passed and high >= -METRIC_MARGIN,
        compute_type,
        transformers_metric=round(sum(before) / len(before), 4),
        compiled_metric=round(sum(after) / len(after), 4),
        metric_delta=round(delta, 4),
        metric_delta_ci=(round(low, 4), round(high, 4)),
    )


def _rouge_l(predictions: list[str], references: list[str]) -> list[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]


def _greedy_agreement(
    model: Any, generator: Any, tokenizer: Any, prompt: list[int], n: int
) -> tuple[float, tuple[str, str]]:
    """The share of the transformers model's greedy tokens the engine reproduces before the first
    difference, and both greedy answers (cut at the stop markers)."""
    import torch

    from agent.prompt import until_stop

    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt]), max_new_tokens=n, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    ours = out[0, len(prompt) :].tolist()
    tokens = tokenizer.convert_ids_to_tokens(prompt)
    result = generator.generate_batch([tokens], max_length=n, sampling_topk=1, include_prompt_in_result=False)
    theirs = list(result[0].sequences_ids[0])
    same = 0
    for a, b in zip(ours, theirs, strict=False):
        if a != b:
            break
        same += 1
    texts = [str(tokenizer.decode(ids, skip_special_tokens=True)) for ids in (ours, theirs)]
    return same / max(1, min(len(ours), n)), (until_stop(texts[0]), until_stop(texts[1]))


def sampling_args(options: GenerationOptions) -> dict[str, Any]:
    """CTranslate2's sampling arguments for ``options``: greedy at temperature 0."""
    if options.temperature > 0:
        return {"sampling_topk": 50, "sampling_topp": 0.95, "sampling_temperature": options.temperature}
    return {"sampling_topk": 1}


class CompiledGenerator(_UsageMixin):
    """A CTranslate2 engine on this machine; generation serialized by a lock."""

    def __init__(self, engine: Path, version: str, adapter: str | None = None, threads: int = 0):
        super().__init__()
        import ctranslate2
        from transformers import AutoTokenizer

        self.engine = engine
        self.version = version
        self.adapter = adapter
        self.tokenizer = AutoTokenizer.from_pretrained(str(engine / "ct2"))
        self.compute_type = engine_compute_type(engine)
        self.generator = ctranslate2.Generator(
            str(engine / "ct2"), device="cpu", compute_type=self.compute_type, intra_threads=threads
        )
        self._lock = threading.Lock()
        self._heads: dict[tuple[str, ...], list[str]] = {}  # static prompts seen, by their texts
        self._heads_lock = threading.Lock()

    @classmethod
    def load(cls, spec: str | None, *, home: Path, check: str = "short") -> CompiledGenerator:
        from agent.models import resolve_spec

        resolved = resolve_spec(spec, home=home, progress=True)
        engine = ensure_compiled(resolved, home, check=check)
        return cls(engine, version=resolved.version, adapter=resolved.adapter, threads=os.cpu_count() or 0)

    def count_tokens(self, text: str) -> int:
        return tokenizer_count(self.tokenizer, text)

    def prompt_tokens(self, messages: Sequence[Message]) -> list[str]:
        return list(self.tokenizer.convert_ids_to_tokens(chat_ids(self.tokenizer, messages)))

    def split_static(self, messages: Sequence[Message], tokens: list[str]) -> tuple[list[str], list[str]]:
        """(static prompt, the rest) of ``tokens``: the static prompt is empty unless the messages
        start with the agent's fixed head and its tokens are exactly the prompt's first tokens.
        At most ``MAX_STATIC_PROMPTS`` distinct heads are cached (the engine keeps each one's state)."""
        count = static_head(messages)
        if not count:
            return [], tokens
        key = tuple(m["content"] for m in messages[:count])
        with self._heads_lock:
            head = self._heads.get(key)
            if head is None:
                if len(self._heads) >= MAX_STATIC_PROMPTS:
                    return [], tokens
                text = self.tokenizer.apply_chat_template(list(messages[:count]), tokenize=False)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                head = self._heads[key] = list(self.tokenizer.convert_ids_to_tokens(ids))
        if len(head) >= len(tokens) or tokens[: len(head)] != head:
            return [], tokens
        return head, tokens[len(head) :]

    def stream(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        refuse_context_weight(options, "the compiled engine")
        usage = Usage()
        self._set_usage(usage)
        acquire_slot(self._lock, options.timeout_s)
        try:
            static, rest = self.split_static(messages, self.prompt_tokens(messages))
            yield from self._decode(rest, options, cancel, usage, static=static)
        finally:
            self._lock.release()

    def _decode(
        self,
        tokens: list[str],
        options: GenerationOptions,
        cancel: threading.Event | None,
        usage: Usage,
        static: list[str] | None = None,
    ) -> Iterator[str]:
        deadline = time.monotonic() + options.timeout_s
        usage.prompt_tokens = len(static or ()) + len(tokens)
        steps = self.generator.generate_tokens(
            tokens,
            max_length=options.max_new_tokens,
            repetition_penalty=options.repetition_penalty,
            end_token=self.tokenizer.eos_token,
            static_prompt=static or None,
            **sampling_args(options),
        )
        ids: list[int] = []
        shown = ""
        try:
            for step in steps:
                if step.token_id == self.tokenizer.eos_token_id:
                    break
                ids.append(step.token_id)
                usage.completion_tokens = len(ids)
                text = str(self.tokenizer.decode(ids, skip_special_tokens=True))
                if not text.endswith("\ufffd") and len(text) > len(shown):
                    yield text[len(shown) :]
                    shown = text
                usage.timed_out = time.monotonic() > deadline
                usage.cancelled = cancel is not None and cancel.is_set()
                if usage.timed_out or usage.cancelled:
                    break
        except Exception as exc:
            raise GenerationError(f"generation failed: {exc}") from exc
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()
