"""Batched generation for a local model: one ``generate`` call serves many requests.

``LocalGenerator`` runs one generation at a time (a lock), so N concurrent customers wait N
generations. ``BatchingGenerator`` implements the same ``Generator`` protocol over the same model:
each ``stream()`` call queues its prompt; one worker thread collects the requests that arrive
within ``window_ms`` (up to ``max_batch``), left-pads them into one batch and runs one
``model.generate`` (static batching). Decoding a batch of 8 costs little more than decoding one on
a small model, so aggregate tokens/s grows with concurrency (``python -m benchmarks.load_api``).

Invariants:

* **Same answers.** Rows are left-padded with an attention mask, so positions and attention are as
  unbatched; greedy decoding gives each request the text it would get alone (up to float
  rounding). Requests are batched only with others of equal sampling settings
  (``temperature``, ``repetition_penalty``); ``max_new_tokens`` is per row.
* **Per-row streaming and stopping.** Each row's tokens are decoded and handed to its own caller as
  they come; a row stops at EOS, its own ``max_new_tokens``, its deadline (``timeout_s``, counted
  from submission), its cancel event, or when its caller stops reading (the agent closes the
  stream at a stop marker). A finished row's caller returns at once; the batch runs until its
  last row finishes.
* **Usage** (``last_usage``) is per calling thread, as for ``LocalGenerator``: prompt tokens
  without padding, completion tokens up to and including EOS.

``CompiledBatchingGenerator`` is the same batcher over the compiled CTranslate2 engine (the
default serving path): one ``generate_batch`` call decodes the batch, and its per-token callback
streams each row and stops it (returning True ends decoding for that row only). CTranslate2 has
no left padding: it forwards a batch's prompts at once only up to the shortest one and feeds the
rest token by token in the decoding loop, which made a batch of 8 serving prompts (170 to 350
tokens after the static prompt) slower than the same 8 one after another. So the compiled
batcher **buckets by length**: the collected rows are sorted by prompt length and cut into
groups whose lengths differ by at most ``bucket_tokens``; each group is one ``generate_batch``
(``length_buckets``). Equal-length prompts batch at about twice the single-stream rate on 2
cores; rows with no neighbour run alone, as they would unbatched.

Imports torch and transformers: import this module only where a local model is served.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from agent.errors import GenerationError
from agent.generator import GenerationOptions, LocalGenerator, Message, Usage, reply_penalty

_SHUTDOWN = object()


@dataclass(eq=False)
class _Row:
    """One request inside the batcher; ``out`` carries ("text", str), ("done", Usage), ("error", exc)."""

    ids: list[int]
    options: GenerationOptions
    cancel: threading.Event
    deadline: float
    halt: threading.Event = field(default_factory=threading.Event)
    out: queue.SimpleQueue[tuple[str, Any]] = field(default_factory=queue.SimpleQueue)
    tokens: list[int] = field(default_factory=list)
    sent: str = ""
    stop_step: int | None = None  # the step at which a stop condition was first seen
    closed: bool = False
    timed_out: bool = False
    cancelled: bool = False
    static: int = 0  # leading prompt tokens an engine may cache (the compiled batcher's static prompt)

    @property
    def group(self) -> tuple[bool, float, float]:
        sample = self.options.temperature > 0
        return sample, self.options.temperature if sample else 0.0, self.options.repetition_penalty


class BatchingGenerator:
    """A ``Generator`` that batches concurrent requests to one local model (see module docstring)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        version: str = "local",
        adapter: str | None = None,
        max_batch: int = 8,
        window_ms: float = 25.0,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.version = version
        self.adapter = adapter
        self.max_batch = max(1, max_batch)
        self.window_s = max(0.0, window_ms) / 1000.0
        self.batches = 0  # statistics, read by /metrics
        self.batched_requests = 0
        self._usage = threading.local()
        self._tokenizer_lock = threading.Lock()  # fast tokenizers are not safe to encode concurrently
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending: list[_Row] = []  # collected but of another sampling group: next batch
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    @classmethod
    def wrap(cls, local: LocalGenerator, **kwargs: Any) -> BatchingGenerator:
        return cls(local.model, local.tokenizer, version=local.version, adapter=local.adapter, **kwargs)

    # -- the Generator protocol ----------------------------------------------------------------
    @property
    def last_usage(self) -> Usage:
        usage: Usage = getattr(self._usage, "value", None) or Usage()
        return usage

    def count_tokens(self, text: str) -> int:
        with self._tokenizer_lock:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        with self._tokenizer_lock:
            encoded = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, return_dict=True
            )
        row = _Row(
            ids=list(encoded["input_ids"]),
            options=options,
            cancel=cancel or threading.Event(),
            deadline=time.monotonic() + options.timeout_s,
        )
        self._prepare(row, messages)
        self._usage.value = Usage(prompt_tokens=len(row.ids))
        self._ensure_worker()
        self._queue.put(row)
        try:
            while True:
                kind, value = row.out.get()
                if kind == "text":
                    yield value
                elif kind == "done":
                    self._usage.value = value
                    return
                else:
                    raise GenerationError(f"generation failed: {value}") from value
        finally:
            row.halt.set()  # the caller stopped reading (or finished): free the row's slot

    def close(self) -> None:
        """Stop the worker after the batch in flight (tests; the server runs until exit)."""
        if self._worker is not None:
            self._queue.put(_SHUTDOWN)
            self._worker.join()
            self._worker = None

    def _prepare(self, row: _Row, messages: Sequence[Message]) -> None:
        """A hook for engines that need more than the token ids (the compiled batcher)."""

    # -- the worker ----------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="supportloop-batcher", daemon=True)
                self._worker.start()

    def _loop(self) -> None:
        while True:
            rows = self._collect()
            if rows is None:
                return
            group = rows[0].group
            batch = [r for r in rows if r.group == group][: self.max_batch]
            self._pending = [r for r in rows if r not in batch]
            self._run(batch)

    def _collect(self) -> list[_Row] | None:
        rows = list(self._pending)
        if not rows:
            first = self._queue.get()
            if first is _SHUTDOWN:
                return None
            rows.append(first)
        closes = time.monotonic() + self.window_s
        while sum(r.group == rows[0].group for r in rows) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, closes - time.monotonic()))
            except queue.Empty:
                break
            if item is _SHUTDOWN:
                self._queue.put(item)  # finish what was collected, then stop
                break
            rows.append(item)
        return rows

    def _run(self, batch: list[_Row]) -> None:
        self.batches += 1
        self.batched_requests += len(batch)
        try:
            self._generate(batch)
        except Exception as exc:  # every waiting caller gets the failure, the worker lives on
            for row in batch:
                if not row.closed:
                    row.closed = True
                    row.out.put(("error", exc))
            return
        for row in batch:
            self._finish(row)

    def _generate(self, batch: list[_Row]) -> None:
        """One ``model.generate`` over the batch, streaming each row through ``_accept``."""
        width = max(len(r.ids) for r in batch)
        input_ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):
            input_ids[i, width - len(row.ids) :] = torch.tensor(row.ids, dtype=torch.long)
            attention_mask[i, width - len(row.ids) :] = 1
        first = batch[0].options
        kwargs: dict[str, Any] = {
            "input_ids": input_ids.to(self.model.device),
            "attention_mask": attention_mask.to(self.model.device),
            "max_new_tokens": max(r.options.max_new_tokens for r in batch),
            "streamer": _RowStreamer(batch, self),
            "stopping_criteria": StoppingCriteriaList([_RowStop(batch, width)]),
            "pad_token_id": self._pad,
            # The penalty on each reply's own tokens, not the prompt's, as LocalGenerator does.
            "repetition_penalty": 1.0,
            "logits_processor": reply_penalty(first.repetition_penalty, width),
        }
        if first.temperature > 0:
            kwargs.update(do_sample=True, temperature=first.temperature, top_p=0.95)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            self.model.generate(**kwargs)

    # -- per-row bookkeeping (worker thread only) ----------------------------------------------
    @staticmethod
    def _interrupted(row: _Row, now: float) -> bool:
        """Whether the row's caller stopped reading, cancelled, or its deadline passed."""
        row.cancelled = row.cancelled or row.cancel.is_set()
        row.timed_out = row.timed_out or now > row.deadline
        return row.halt.is_set() or row.cancelled or row.timed_out

    def _accept(self, row: _Row, step: int, token: int) -> None:
        if row.closed:
            return
        if row.stop_step is not None and step > row.stop_step:
            self._finish(row)
            return
        row.tokens.append(token)
        if token in self._eos:
            self._finish(row)
            return
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        if not text.endswith("\ufffd") and len(text) > len(row.sent) and text.startswith(row.sent):
            row.out.put(("text", text[len(row.sent) :]))
            row.sent = text
        if len(row.tokens) >= row.options.max_new_tokens:
            self._finish(row)

    def _finish(self, row: _Row) -> None:
        if row.closed:
            return
        row.closed = True
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        if text.startswith(row.sent) and len(text) > len(row.sent):
            row.out.put(("text", text[len(row.sent) :]))
        usage = Usage(
            prompt_tokens=len(row.ids),
            completion_tokens=len(row.tokens),
            timed_out=row.timed_out,
            cancelled=row.cancelled,
        )
        row.out.put(("done", usage))


class _RowStop(StoppingCriteria):
    """Per-row stop flags (a bool per row): halted by its caller, cancelled, past its deadline, or
    at its own token limit. generate() pads a stopped row and ends when every row has stopped."""

    def __init__(self, batch: list[_Row], width: int):
        self.batch = batch
        self.width = width

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        step = int(input_ids.shape[1]) - self.width
        now = time.monotonic()
        flags = []
        for row in self.batch:
            if row.stop_step is None:
                over = step >= row.options.max_new_tokens
                if BatchingGenerator._interrupted(row, now) or over or row.closed:
                    row.stop_step = step
            flags.append(row.stop_step is not None)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


class _RowStreamer(BaseStreamer):
    """Receives each decoding step's tokens for the whole batch; the first put is the prompt."""

    def __init__(self, batch: list[_Row], owner: BatchingGenerator):
        self.batch = batch
        self.owner = owner
        self.steps = itertools.count(0)

    def put(self, value: Any) -> None:
        step = next(self.steps)
        if step == 0:
            return  # the prompt
        tokens = value.reshape(len(self.batch), -1)[:, -1].tolist()
        for row, token in zip(self.batch, tokens, strict=True):
            self.owner._accept(row, step, int(token))

    def end(self) -> None:
        pass


def length_buckets(lengths: Sequence[int], tolerance: int) -> list[list[int]]:
    """Indices of ``lengths`` in groups, shortest first, whose lengths differ by at most
    ``tolerance`` (a group starts at its shortest length; the next length past it starts another)."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if groups and lengths[i] - lengths[groups[-1][0]] <= tolerance:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class CompiledBatchingGenerator(BatchingGenerator):
    """The batcher over a CTranslate2 engine (``agent.compiled.CompiledGenerator``), batches
    bucketed by prompt length (module docstring)."""

    compiled: Any = None  # the CompiledGenerator wrapped: its static-prompt split

    def __init__(self, model: Any, tokenizer: Any, *, bucket_tokens: int = 32, **kwargs: Any):
        super().__init__(model, tokenizer, **kwargs)
        self.bucket_tokens = max(0, bucket_tokens)
        self.buckets = 0  # generate_batch calls (a batch is one or more buckets)

    @classmethod
    def wrap(cls, local: Any, **kwargs: Any) -> BatchingGenerator:
        batcher = cls(
            local.generator, local.tokenizer, version=local.version, adapter=local.adapter, **kwargs
        )
        batcher.compiled = local
        return batcher

    def _prepare(self, row: _Row, messages: Sequence[Message]) -> None:
        tokens = self.tokenizer.convert_ids_to_tokens(row.ids)
        row.static = len(self.compiled.split_static(messages, tokens)[0]) if self.compiled else 0

    def _generate(self, batch: list[_Row]) -> None:
        """The batch's length buckets one after another, shortest prompts first; rows with and
        without the agent's static prompt never share a bucket (their prompts would not align)."""
        for static in sorted({r.static for r in batch}):
            rows = [r for r in batch if r.static == static]
            for group in length_buckets([len(r.ids) - static for r in rows], self.bucket_tokens):
                self._generate_bucket([rows[i] for i in group])

    def _generate_bucket(self, batch: list[_Row]) -> None:
        """One ``generate_batch`` over the bucket (sharing the agent's static prompt when every row
        starts with it); its per-token callback streams each row and stops it alone."""
        from agent.compiled import sampling_args

        self.buckets += 1

        def step(result: Any) -> bool:  # called on the engine's thread, once per token per row
            row = batch[result.batch_id]
            if not row.closed:
                if self._interrupted(row, time.monotonic()):
                    self._finish(row)
                else:
                    self._accept(row, result.step + 1, int(result.token_id))
            return row.closed

        size = batch[0].static
        shared = size > 0 and all(r.static == size and r.ids[:size] == batch[0].ids[:size] for r in batch)
        prompts = [self.tokenizer.convert_ids_to_tokens(row.ids) for row in batch]
        first = batch[0].options
        self.model.generate_batch(
            [p[size:] for p in prompts] if shared else prompts,
            static_prompt=prompts[0][:size] if shared else None,
            max_length=max(r.options.max_new_tokens for r in batch),
            repetition_penalty=first.repetition_penalty,
            end_token=self.tokenizer.eos_token,
            include_prompt_in_result=False,
            beam_size=1,
            callback=step,
            **sampling_args(first),
        )
