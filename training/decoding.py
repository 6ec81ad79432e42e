"""The batched answer/perplexity engine: greedy answers and the references' log-likelihood.

How it runs (``batch_size=1``, the default): on a CPU the prompt's forward pass is nearly all
the cost, so each row takes **one** forward pass over prompt + reference answer. Its logits give
the reference's perplexity, and its key/value cache, cut back to the prompt, seeds greedy
generation. The token prefix that all prompts of a (model, setting) share (system prompt, worked
example or few-shot exchanges) is encoded once and its cache copied into every row. Generation
stops as soon as a stop marker appears, because the answer is cut there anyway. None of this
changes a score: ``tests/training/test_eval.py`` checks that this path gives the same answers
and perplexity as a plain ``generate`` call plus a separate scoring pass.
``batch_size > 1`` runs the same single pass for that many rows at once (prompts right-aligned
after the shared prefix, padding masked, position ids continuing each row's own length) and
decodes them together: on a CPU, decoding one row at a time is bound by reading the weights, so
a batch costs little more per step than one row. Perplexity agrees to float precision; a greedy
answer can differ where floating-point noise flips a near-tied logit
(``python -m benchmarks.eval_batching`` counts how often and times both).

``engine="compiled"`` evaluates what customers are served: the version's CTranslate2 int8 engine
(``agent.compiled``), one row at a time with the shared prefix as the engine's cached static
prompt, greedy under the same cap and repetition penalty; the references' log-likelihood comes
from the engine's own scoring pass. Its figures are the compiled engine's, not fp32's: the two
differ as much as the conversion's equivalence check reports. On both engines the repetition
penalty falls on the answer's own tokens only, as the agent serves (``agent.generator.
reply_penalty``); before 2026-12-06 the torch path also penalized every prompt token, so figures
recorded with ``engine="transformers"`` before then were decoded that way.

Importing this module is cheap: torch and transformers are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import DataError
from agent.prompt import STOP_MARKERS, Message
from agent.prompt import until_stop as cut_at_stop
from training.heldout import EvalExample


@dataclass(frozen=True)
class Protocol:
    max_new_tokens: int = 96
    repetition_penalty: float = 1.1
    batch_size: int = 1  # 1: the shared-prefix path (see the module docstring)
    # "transformers": the model in torch (above); "compiled": the version's CTranslate2 engine,
    # the one the agent serves with (``compiled_answers_and_nll``)
    engine: str = "transformers"


PROTOCOL = Protocol()


def greedy_options(tokenizer: Any, protocol: Protocol, prompt_len: int) -> dict[str, Any]:
    """``generate`` keyword arguments of the protocol's decoding: greedy, capped, stopping at a
    stop marker (the answer is cut there anyway), the repetition penalty on the answer's own
    tokens only, as the agent serves (``agent.generator.reply_penalty``). ``prompt_len``: the
    input's width, left padding included."""
    from transformers import StoppingCriteriaList

    from agent.generator import reply_penalty

    return {
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "max_new_tokens": protocol.max_new_tokens,
        "repetition_penalty": 1.0,  # applied by the processor, to the answer's own tokens only
        "logits_processor": reply_penalty(protocol.repetition_penalty, prompt_len),
        "pad_token_id": tokenizer.pad_token_id,
        "stopping_criteria": StoppingCriteriaList([_StopAtMarker(tokenizer, prompt_len)]),
    }


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    protocol: Protocol = PROTOCOL,
    bar: Any = None,
) -> list[str]:
    """Greedy answers, batched with left padding (longest prompts first, original order kept)."""
    import torch

    texts = [
        tokenizer.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False) for p in prompts
    ]
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    answers: list[str] = [""] * len(texts)
    tokenizer.padding_side = "left"
    for start in range(0, len(order), protocol.batch_size):
        batch = order[start : start + protocol.batch_size]
        encoded = tokenizer(
            [texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
        )
        with torch.inference_mode():
            output = model.generate(
                **encoded.to(model.device),
                **greedy_options(tokenizer, protocol, encoded["input_ids"].shape[1]),
            )
        new = output[:, encoded["input_ids"].shape[1] :]
        for i, ids in zip(batch, new, strict=True):
            answers[i] = cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True))
        if bar is not None:
            bar.update(len(batch))
    return answers


def reference_nll(model: Any, tokenizer: Any, prompt: Sequence[Message], reference: str) -> tuple[float, int]:
    """(summed negative log-likelihood, token count) of the reference answer's tokens."""
    import torch

    p_ids, ids = _chat_ids(tokenizer, prompt, reference)
    ids_t = torch.tensor([ids], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids_t).logits[0, :-1].float()
    losses = torch.nn.functional.cross_entropy(logits, ids_t[0, 1:], reduction="none")
    completion = losses[len(p_ids) - 1 :]
    return float(completion.sum()), int(completion.numel())


def _chat_ids(tokenizer: Any, prompt: Sequence[Message], reference: str) -> tuple[list[int], list[int]]:
    """(prompt ids with the generation prompt, prompt + reference answer ids)."""
    prompt_text = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)
    full_text = tokenizer.apply_chat_template(
        [*prompt, {"role": "assistant", "content": reference}], tokenize=False
    )
    return (
        tokenizer(prompt_text, add_special_tokens=False)["input_ids"],
        tokenizer(full_text, add_special_tokens=False)["input_ids"],
    )


def common_prefix(sequences: Sequence[Sequence[int]]) -> list[int]:
    """The longest token prefix every sequence starts with."""
    first = list(sequences[0]) if sequences else []
    n = len(first)
    for seq in sequences[1:]:
        n = min(n, len(seq))
        i = 0
        while i < n and seq[i] == first[i]:
            i += 1
        n = i
    return first[:n]


class _StopAtMarker:
    """Stopping criterion: the decoded answer contains a stop marker (it is cut there anyway)."""

    def __init__(self, tokenizer: Any, start: int) -> None:
        self.tokenizer, self.start = tokenizer, start

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = [
            any(m in self.tokenizer.decode(row[self.start :], skip_special_tokens=True) for m in STOP_MARKERS)
            for row in input_ids
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _rows_and_prefix(
    tokenizer: Any, examples: Sequence[EvalExample], prompts: Sequence[Sequence[Message]]
) -> tuple[list[tuple[list[int], list[int]]], list[int], int]:
    """Each row's (prompt ids, prompt + reference ids), the prompts' common prefix, and how much
    of it to encode once (every row keeps at least its last prompt token to feed generation)."""
    pairs = [_chat_ids(tokenizer, p, e.reference) for e, p in zip(examples, prompts, strict=True)]
    for (p_ids, ids), example in zip(pairs, examples, strict=True):
        if ids[: len(p_ids)] != p_ids:
            raise DataError(f"chat template: the prompt of {example.conversation_id!r} is not a prefix")
    shared = common_prefix([p_ids for p_ids, _ in pairs])
    return pairs, shared, min([len(shared)] + [len(p_ids) - 1 for p_ids, _ in pairs])


def _prefix_cache(model: Any, prefix: list[int]) -> Any:
    """The key/value cache of ``prefix`` (None when it is empty)."""
    import torch
    from transformers import DynamicCache

    if not prefix:
        return None
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([prefix], device=model.device), past_key_values=cache)
    return cache


def _answers_and_nll(
    model: Any,
    tokenizer: Any,
    examples: Sequence[EvalExample],
    prompts: Sequence[Sequence[Message]],
    protocol: Protocol,
    bar: Any = None,
) -> tuple[list[str], float, int]:
    """Greedy answers and the references' summed NLL, one forward pass per row (module docstring)."""
    import copy

    import torch
    from transformers import DynamicCache

    pairs, shared, prefix_len = _rows_and_prefix(tokenizer, examples, prompts)
    device = model.device
    with torch.inference_mode():
        prefix_cache = _prefix_cache(model, shared[:prefix_len])
        answers: list[str] = []
        total, count = 0.0, 0
        for p_ids, ids in pairs:
            cache = (
                copy.deepcopy(prefix_cache) if prefix_cache is not None else DynamicCache(config=model.config)
            )
            logits = model(
                input_ids=torch.tensor([ids[prefix_len:]], device=device), past_key_values=cache
            ).logits
            # logits[0, j] predicts ids[prefix_len + 1 + j]; the reference starts at len(p_ids).
            targets = torch.tensor(ids[prefix_len + 1 :], device=device)
            losses = torch.nn.functional.cross_entropy(logits[0, :-1].float(), targets, reduction="none")
            completion = losses[len(p_ids) - prefix_len - 1 :]
            total, count = total + float(completion.sum()), count + int(completion.numel())
            cache.crop(-(len(ids) - len(p_ids) + 1))  # keep the prompt minus its last token
            prompt_t = torch.tensor([p_ids], device=device)
            output = model.generate(
                input_ids=prompt_t,
                attention_mask=torch.ones_like(prompt_t),
                past_key_values=cache,
                **greedy_options(tokenizer, protocol, len(p_ids)),
            )
            answers.append(cut_at_stop(tokenizer.decode(output[0, len(p_ids) :], skip_special_tokens=True)))
            if bar is not None:
                bar.update(1)
    return answers, total, count


def _answers_and_nll_batched(
    model: Any,
    tokenizer: Any,
    examples: Sequence[EvalExample],
    prompts: Sequence[Sequence[Message]],
    protocol: Protocol,
    bar: Any = None,
) -> tuple[list[str], float, int]:
    """``_answers_and_nll`` for ``protocol.batch_size`` rows at a time (module docstring).

    Each batch is laid out as ``[shared prefix][left pad][prompt tail][reference][right pad]``:
    the prompts end on the same column, so one crop of the cache keeps every prompt and drops
    every reference. Pads are masked out and filled with a token of their own row, so the
    repetition penalty sees nothing new; position ids continue each row's own length (``generate``
    derives them from the mask the same way)."""
    import copy

    import torch
    from transformers import DynamicCache

    pairs, shared, prefix_len = _rows_and_prefix(tokenizer, examples, prompts)
    device = model.device
    answers: list[str] = [""] * len(pairs)
    total, count = 0.0, 0
    # Longest prompts first: rows of a batch have similar lengths, so little padding.
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]))
    with torch.inference_mode():
        prefix_cache = _prefix_cache(model, shared[:prefix_len])
        for start in range(0, len(order), protocol.batch_size):
            batch = order[start : start + protocol.batch_size]
            tails = [pairs[i][0][prefix_len:] for i in batch]
            refs = [pairs[i][1][len(pairs[i][0]) :] for i in batch]
            width_p, width_r = max(map(len, tails)), max(map(len, refs))
            rows, masks = [], []
            for tail, ref in zip(tails, refs, strict=True):
                left, right = width_p - len(tail), width_r - len(ref)
                rows.append([tail[0]] * left + tail + ref + [tail[0]] * right)
                masks.append([0] * left + [1] * (len(tail) + len(ref)) + [0] * right)
            head = torch.tensor([shared[:prefix_len]] * len(batch), dtype=torch.long, device=device)
            body = torch.tensor(rows, device=device)
            mask = torch.cat([torch.ones_like(head), torch.tensor(masks, device=device)], dim=1)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, prefix_len:]
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(batch))
            else:
                cache = DynamicCache(config=model.config)
            # Only the last width_r + 1 positions need logits: kept[:, j] predicts reference token j.
            kept = model(
                input_ids=body,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                logits_to_keep=width_r + 1,
            ).logits
            for b, ref in enumerate(refs):
                losses = torch.nn.functional.cross_entropy(
                    kept[b, : len(ref)].float(), torch.tensor(ref, device=device), reduction="none"
                )
                total, count = total + float(losses.sum()), count + len(ref)
            del kept
            prompt_end = prefix_len + width_p
            cache.crop(-(width_r + 1))  # every prompt minus its last token, as in _answers_and_nll
            prompt_t = torch.cat([head, body[:, :width_p]], dim=1)
            output = model.generate(
                input_ids=prompt_t,
                attention_mask=mask[:, :prompt_end],
                past_key_values=cache,
                **greedy_options(tokenizer, protocol, prompt_end),
            )
            for i, ids in zip(batch, output[:, prompt_end:], strict=True):
                answers[i] = cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True))
            if bar is not None:
                bar.update(len(batch))
    return answers, total, count


def answers_and_nll(
    model: Any,
    tokenizer: Any,
    examples: Sequence[EvalExample],
    prompts: Sequence[Sequence[Message]],
    protocol: Protocol = PROTOCOL,
    bar: Any = None,
) -> tuple[list[str], float, int]:
    """Greedy answers and the references' summed NLL and token count, by the protocol's path:
    one row at a time over a shared prefix (``batch_size=1``) or batched (module docstring)."""
    run = _answers_and_nll if protocol.batch_size == 1 else _answers_and_nll_batched
    return run(model, tokenizer, examples, prompts, protocol, bar)


def compiled_answers_and_nll(
    engine: Any,
    examples: Sequence[EvalExample],
    prompts: Sequence[Sequence[Message]],
    protocol: Protocol = PROTOCOL,
    bar: Any = None,
) -> tuple[list[str], float, int]:
    """``answers_and_nll`` on a compiled engine (``agent.compiled.ensure_compiled``'s directory):
    greedy answers one row at a time over the cached shared prefix, stopping at a stop marker,
    and the references' summed NLL from batched scoring (module docstring)."""
    import os

    import ctranslate2
    from transformers import AutoTokenizer

    from agent.compiled import engine_compute_type

    tokenizer = AutoTokenizer.from_pretrained(str(engine / "ct2"))
    generator = ctranslate2.Generator(
        str(engine / "ct2"),
        device="cpu",
        compute_type=engine_compute_type(engine),
        intra_threads=os.cpu_count() or 0,
    )
    pairs, shared, prefix_len = _rows_and_prefix(tokenizer, examples, prompts)
    static = tokenizer.convert_ids_to_tokens(shared[:prefix_len]) or None
    answers = []
    for p_ids, _ids in pairs:
        answers.append(_compiled_answer(generator, tokenizer, p_ids[prefix_len:], static, protocol))
        if bar is not None:
            bar.update(1)
    total, count = 0.0, 0
    scored = generator.score_batch(
        [tokenizer.convert_ids_to_tokens(ids) for _, ids in pairs], max_batch_size=8, max_input_length=0
    )
    for (p_ids, _ids), result in zip(pairs, scored, strict=True):
        # log_probs[j] is the log-probability of token j + 1; the reference starts at len(p_ids).
        completion = result.log_probs[len(p_ids) - 1 :]
        total, count = total - float(sum(completion)), count + len(completion)
    return answers, total, count


def _compiled_answer(generator: Any, tokenizer: Any, tail: list[int], static: Any, protocol: Protocol) -> str:
    """One greedy answer from the engine, cut at the first stop marker."""
    steps = generator.generate_tokens(
        tokenizer.convert_ids_to_tokens(tail),
        max_length=protocol.max_new_tokens,
        repetition_penalty=protocol.repetition_penalty,
        end_token=tokenizer.eos_token,
        static_prompt=static,
        sampling_topk=1,
    )
    ids: list[int] = []
    try:
        for step in steps:
            if step.token_id == tokenizer.eos_token_id:
                break
            ids.append(step.token_id)
            if step.is_last or any(
                m in tokenizer.decode(ids[-8:], skip_special_tokens=True) for m in STOP_MARKERS
            ):
                break
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            close()
    return cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True))
