"""Generation backends behind one seam, the ``Generator`` protocol.

* ``LocalGenerator``: a transformers causal LM (optionally with a PEFT adapter) on this
  machine. One generation runs at a time per generator (a lock), so one ``Agent`` can serve
  several conversations from several threads; each call honours a deadline and a cancel event.
  It alone can decode context-aware (``GenerationOptions.context_weight``, ``ContextAware``).
* ``OpenAIGenerator``: any OpenAI-compatible chat-completions server (vLLM, a hosted API).
* ``ScriptedGenerator``: replies queued with ``enqueue()``, for tests and demos without a model.

``stream()`` yields text deltas; the engine records that call's token counts (``last_usage``, per
thread, set during the stream's steps). A consumer may step one stream from several threads
(LangChain's ``astream`` does): ``metered()`` wraps a stream and keeps the call's own ``Usage``
whichever thread took each step, so usage travels with the stream. Chat templates always come
from the tokenizer or the server.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agent.errors import GenerationError

Message = dict[str, str]


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 160
    temperature: float = 0.0
    repetition_penalty: float = 1.1
    timeout_s: float = 120.0
    # Context-aware decoding (Shi et al., 2023): 0 is plain decoding; alpha > 0 weighs each next
    # token by how much the passages raise it (``ContextAware``). Transformers engine only.
    context_weight: float = 0.0


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timed_out: bool = False
    cancelled: bool = False


@runtime_checkable
class Generator(Protocol):
    """What the agent needs from a model backend."""

    version: str  # the model version served (registry name or path)
    adapter: str | None

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]: ...

    @property
    def last_usage(self) -> Usage: ...


class _UsageMixin:
    def __init__(self) -> None:
        self._usage = threading.local()

    @property
    def last_usage(self) -> Usage:
        usage: Usage = getattr(self._usage, "value", None) or Usage()
        return usage

    def _set_usage(self, usage: Usage) -> None:
        self._usage.value = usage


class MeteredStream:
    """An engine's stream plus the ``Usage`` of that call (``usage``), whatever thread steps it.

    Engines record usage in per-thread storage during a step (at the first step, and some again
    at the last). Each step is checked in the thread that took it: a usage object that appears
    during the step is this call's, so reading ``generator.last_usage`` from another thread, or
    after the stream ended, never returns another call's counts or zero."""

    def __init__(self, generator: Generator, stream: Iterator[str]):
        self.generator = generator
        self.stream = stream
        self.usage = Usage()

    def __iter__(self) -> MeteredStream:
        return self

    def __next__(self) -> str:
        before = self._recorded()
        try:
            return next(self.stream)
        finally:
            after = self._recorded()
            if after is not None and after is not before:
                self.usage = after

    def close(self) -> None:
        before = self._recorded()
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()
        after = self._recorded()
        if after is not None and after is not before:
            self.usage = after

    def _recorded(self) -> Usage | None:
        """The usage the engine holds for this thread, or None when it holds none (a fresh default)."""
        first = self.generator.last_usage
        return first if first is self.generator.last_usage else None


def metered(
    generator: Generator,
    messages: Sequence[Message],
    options: GenerationOptions,
    cancel: threading.Event | None = None,
) -> MeteredStream:
    """``generator.stream(...)`` with its usage attached (see ``MeteredStream``)."""
    return MeteredStream(generator, iter(generator.stream(messages, options, cancel)))


def refuse_context_weight(options: GenerationOptions, engine: str) -> None:
    """Context-aware decoding is the transformers engine's alone: say so before generating."""
    if options.context_weight > 0:
        raise GenerationError(
            f"context-aware decoding (context_weight {options.context_weight}) needs the transformers "
            f"engine; {engine} decodes plainly: set generation.context_weight to 0 or engine to transformers"
        )


def acquire_slot(lock: threading.Lock, timeout_s: float) -> None:
    """Take a local engine's one generation slot, or fail after ``timeout_s``."""
    if not lock.acquire(timeout=max(0.0, timeout_s)):
        raise GenerationError("the model is busy: timed out waiting for a free generation slot")


def tokenizer_count(tokenizer: Any, text: str) -> int:
    """Tokens in ``text`` without special tokens (prompt windowing of the local engines)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def reply_penalty(penalty: float, prompt_length: int) -> Any:
    """A transformers ``LogitsProcessorList`` with the repetition penalty on the reply's own tokens:
    the ``prompt_length`` tokens of the prompt (left padding included) are not penalized.

    transformers' ``repetition_penalty`` argument also penalizes every prompt token, which keeps
    the model from copying a figure out of its passages; the compiled engine penalizes only what
    it generated. Every transformers decoding path (``LocalGenerator``, the batching server, the
    evaluation protocol) uses this, so a model is served and judged the same way on both engines.
    Empty at penalty 1.0.
    """
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

    processors = LogitsProcessorList()
    if penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=prompt_length))
    return processors


class ContextAware:
    """A transformers logits processor for context-aware decoding (Shi et al., 2023).

    Scores each next token by ``(1 + alpha) * log p(t | passages, chat) - alpha * log p(t | chat)``:
    a token the passages make likelier (a figure copied from them) gains, one the model would say
    without them (a remembered "90 days") loses. Tokens far below the best with the passages
    (under ``plausibility`` times its probability) are ruled out, so the contrast cannot promote
    a token the model would not have considered. The chat without passages runs beside the
    generation with its own cache, one token a step (about twice the decode time).
    """

    def __init__(self, model: Any, plain_ids: Any, alpha: float, plausibility: float = 0.1):
        self.model = model
        self.plain_ids = plain_ids
        self.alpha = float(alpha)
        self.floor = math.log(plausibility)
        self._cache: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._cache is None:
            out = self.model(self.plain_ids, use_cache=True)
        else:
            out = self.model(input_ids[:, -1:], past_key_values=self._cache, use_cache=True)
        self._cache = out.past_key_values
        with_passages = torch.log_softmax(scores.float(), dim=-1)
        without = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        contrast = (1 + self.alpha) * with_passages - self.alpha * without
        implausible = with_passages < with_passages.max(dim=-1, keepdim=True).values + self.floor
        return contrast.masked_fill(implausible, float("-inf")).to(scores.dtype)


class LocalGenerator(_UsageMixin):
    """A transformers model on this machine; generation serialized by a lock."""

    def __init__(self, model: Any, tokenizer: Any, version: str = "local", adapter: str | None = None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.version = version
        self.adapter = adapter
        self._lock = threading.Lock()

    @classmethod
    def load(cls, spec: str | None, *, home: Any = None, device: str = "cpu") -> LocalGenerator:
        from agent.config import default_home
        from agent.models import load_resolved, resolve_spec

        resolved = resolve_spec(spec, home=home or default_home(), progress=True)
        # Serving never trains: fold a LoRA adapter into the weights (same outputs, faster turns).
        model, tokenizer = load_resolved(resolved, device=_pick_device(device), merge=True)
        return cls(model, tokenizer, version=resolved.version, adapter=resolved.adapter)

    def count_tokens(self, text: str) -> int:
        return tokenizer_count(self.tokenizer, text)

    def prompt_ids(self, messages: Sequence[Message]) -> Any:
        encoded = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return encoded["input_ids"].to(self.model.device)

    def _processors(self, messages: Sequence[Message], options: GenerationOptions, prompt_length: int) -> Any:
        """The repetition penalty over the reply's own tokens (``reply_penalty``), then
        context-aware decoding if asked."""
        processors = reply_penalty(options.repetition_penalty, prompt_length)
        if options.context_weight > 0:
            from agent.prompt import without_passages

            plain = self.prompt_ids(without_passages(messages))
            processors.append(ContextAware(self.model, plain, options.context_weight))
        return processors

    def stream(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop_event = cancel or threading.Event()
        halt = threading.Event()  # set when the consumer stops reading early
        deadline = time.monotonic() + options.timeout_s
        usage = Usage()
        self._set_usage(usage)

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                usage.timed_out = time.monotonic() > deadline
                usage.cancelled = stop_event.is_set()
                return usage.timed_out or usage.cancelled or halt.is_set()

        acquire_slot(self._lock, options.timeout_s)
        try:
            input_ids = self.prompt_ids(messages)
            usage.prompt_tokens = int(input_ids.shape[1])
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            kwargs: dict[str, Any] = {
                "input_ids": input_ids,
                "attention_mask": input_ids.new_ones(input_ids.shape),
                "max_new_tokens": options.max_new_tokens,
                "streamer": streamer,
                "stopping_criteria": StoppingCriteriaList([_Stop()]),
                "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                "repetition_penalty": 1.0,  # applied below, to the reply's own tokens only
            }
            kwargs["logits_processor"] = self._processors(messages, options, int(input_ids.shape[1]))
            if options.temperature > 0:
                kwargs.update(do_sample=True, temperature=options.temperature, top_p=0.95)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            failure: list[BaseException] = []
            output: list[Any] = []

            def run() -> None:
                import torch

                try:
                    with torch.inference_mode():
                        output.append(self.model.generate(**kwargs))
                except BaseException as exc:  # surfaced in the caller's thread below
                    failure.append(exc)
                    streamer.end()

            worker = threading.Thread(target=run, name="supportloop-generate", daemon=True)
            worker.start()
            try:
                yield from streamer
            finally:
                halt.set()
                worker.join()
                if output:  # counted even when the consumer closed the stream early (a stop sequence)
                    usage.completion_tokens = int(output[0].shape[1] - input_ids.shape[1])
            if failure:
                raise GenerationError(f"generation failed: {failure[0]}") from failure[0]
        finally:
            self._lock.release()


class OpenAIGenerator(_UsageMixin):
    """Any OpenAI-compatible chat-completions endpoint (vLLM, TGI, hosted APIs)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, adapter: str | None = None):
        super().__init__()
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed")
        self.version = model
        self.adapter = adapter

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # the server tokenizes; this is only for windowing

    def stream(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        refuse_context_weight(options, "an OpenAI-compatible server")
        usage = Usage()
        self._set_usage(usage)
        try:
            response = self.client.chat.completions.create(  # type: ignore[call-overload]
                model=self.version,
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=options.max_new_tokens,
                temperature=options.temperature,
                stream=True,
                stream_options={"include_usage": True},
                timeout=options.timeout_s,
            )
            for chunk in response:
                if cancel is not None and cancel.is_set():
                    usage.cancelled = True
                    response.close()
                    break
                if chunk.usage is not None:
                    usage.prompt_tokens = chunk.usage.prompt_tokens
                    usage.completion_tokens = chunk.usage.completion_tokens
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except Exception as exc:
            if isinstance(exc, GenerationError):
                raise
            raise GenerationError(f"the remote model at {self.client.base_url} failed: {exc}") from exc


class ScriptedGenerator(_UsageMixin):
    """Returns queued replies (``enqueue``) or echoes a default; for tests and UI demos."""

    def __init__(self, replies: Sequence[str] = (), default: str = "Thanks for your message. [1]"):
        super().__init__()
        self.version = "scripted"
        self.adapter = None
        self.replies: deque[str] = deque(replies)
        self.default = default
        self.prompts: list[list[Message]] = []
        self.delay_s = 0.0

    def enqueue(self, *replies: str) -> None:
        self.replies.extend(replies)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        self.prompts.append(list(messages))
        text = self.replies.popleft() if self.replies else self.default
        usage = Usage(prompt_tokens=sum(self.count_tokens(m["content"]) for m in messages))
        self._set_usage(usage)
        for word in text.split(" ")[: options.max_new_tokens]:
            if cancel is not None and cancel.is_set():
                usage.cancelled = True
                return
            if self.delay_s:
                time.sleep(self.delay_s)
            usage.completion_tokens += 1
            yield word if usage.completion_tokens == 1 else " " + word


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def build_generator(config: Any, model: str | None = None) -> Generator:
    """The generator a config asks for: local transformers, or a remote OpenAI-compatible server."""
    import os

    settings = config.generation
    spec = model or config.model
    context_aware = getattr(settings, "context_weight", 0.0) > 0
    if context_aware and (
        settings.backend == "openai" or getattr(settings, "engine", "auto") == "ctranslate2"
    ):
        from agent.errors import ConfigError

        raise ConfigError(
            "generation.context_weight needs the local transformers engine "
            "(backend local, engine auto or transformers); set it to 0 for this engine"
        )
    if settings.backend == "openai":
        if not settings.base_url:
            from agent.errors import ConfigError

            raise ConfigError("generation.backend is 'openai' but generation.base_url is not set")
        return OpenAIGenerator(
            settings.base_url,
            settings.remote_model or spec,
            api_key=os.environ.get(settings.api_key_env),
        )
    engine = getattr(settings, "engine", "auto")
    if engine not in ("auto", "ctranslate2", "transformers"):
        from agent.errors import ConfigError

        raise ConfigError(f"generation.engine must be auto, ctranslate2 or transformers, not {engine!r}")
    if engine != "transformers" and not context_aware and _pick_device(settings.device) == "cpu":
        compiled = _compiled_or_reason(spec, config.home, required=engine == "ctranslate2")
        if not isinstance(compiled, str):
            return compiled
        logging.getLogger("supportloop.agent").warning("serving with transformers: %s", compiled)
    return LocalGenerator.load(spec, home=config.home, device=settings.device)


def _compiled_or_reason(spec: str, home: Any, required: bool) -> Generator | str:
    """The compiled generator for ``spec``, or why there is none (raised when ``required``)."""
    from agent import compiled

    if not compiled.available():
        if required:
            raise GenerationError(
                "generation.engine is ctranslate2 but it is not installed: pip install ctranslate2"
            )
        return "ctranslate2 is not installed (pip install ctranslate2 for the compiled engine)"
    try:
        return compiled.CompiledGenerator.load(spec, home=home)
    except Exception as exc:  # any failure of the fast path falls back, with its reason
        if required:
            raise
        return f"the compiled engine is unavailable: {exc}"
