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
Scoring functions are pure; ``evaluate_versions`` drives the models.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.citations import content_words, says_unknown
from agent.config import Persona
from agent.errors import DataError
from agent.prompt import Passage, build_messages, without_default_examples

Message = dict[str, str]
Retriever = Callable[[str, Sequence[tuple[str, str]]], list[Passage]]
SETTINGS = ("gold", "retrieved")
FEW_SHOT = 3
METRICS = ("rougeL_f1", "bleu", "perplexity", "groundedness", "behaviour_accuracy", "answer_chars")
_STOP_MARKERS = ("\nCustomer:", "Customer:", "\nPassages:", "<|im_end|>", "<|im_start|>")


@dataclass(frozen=True)
class Protocol:
    max_new_tokens: int = 96
    repetition_penalty: float = 1.1
    batch_size: int = 1  # 1: the shared-prefix path (see the module docstring)


PROTOCOL = Protocol()


@dataclass(frozen=True)
class EvalExample:
    """One held-out answer: its serving prompt (gold passages) and the reference answer."""

    prompt: tuple[Message, ...]
    reference: str
    conversation_id: str = ""
    expected: str | None = None  # "answer" or "decline" when known

    @property
    def system(self) -> str:
        return self.prompt[0]["content"] if self.prompt and self.prompt[0]["role"] == "system" else ""

    @property
    def question(self) -> str:
        return split_user_message(self.prompt[-1]["content"])[1]

    @property
    def history(self) -> list[tuple[str, str]]:
        roles = {"user": "customer", "assistant": "agent"}
        messages = without_default_examples(self.prompt)[1:-1]
        return [(roles[m["role"]], m["content"]) for m in messages if m["role"] in roles]


# ------------------------------------------------------------------------------- inputs


def split_user_message(content: str) -> tuple[str, str]:
    """(passages block, customer question) of a serving user message (``agent.prompt``)."""
    head, sep, question = content.rpartition("\n\nCustomer: ")
    if not sep:
        return "", content.strip()
    return head.removeprefix("Passages:\n"), question.strip()


def examples_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[EvalExample]:
    """SFT rows (TRL prompt-completion) as evaluation examples."""
    out = []
    for row in rows:
        reference = row["completion"][-1]["content"]
        expected = row.get("expected") or ("decline" if says_unknown(reference) else "answer")
        out.append(
            EvalExample(tuple(row["prompt"]), reference, str(row.get("conversation_id", "")), expected)
        )
    return out


def load_eval_rows(
    path: Path, *, docs: Path | None = None, persona: Persona | None = None, val_fraction: float = 0.2
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(held-out rows, training rows) from any importable file.

    A file of compiled SFT rows is all held out (its ``sft_train.jsonl`` sibling, if any, gives
    the few-shot pool); a conversation file is compiled and its stable validation split is held
    out, exactly the rows ``supportloop train sft`` on the same file does not train on.
    """
    from training.data import compile_dataset, detect_format, load_rows

    if detect_format(path) == "sft":
        sibling = path.with_name("sft_train.jsonl")
        train = load_rows(sibling) if sibling.is_file() and sibling != path else []
        return load_rows(path), train
    compiled = compile_dataset([path], docs=docs, persona=persona, val_fraction=val_fraction)
    if not compiled.sft_val:
        raise DataError("no held-out SFT rows (the validation split is empty)", path=str(path))
    return compiled.sft_val, compiled.sft_train


def pick_shots(
    pool: Sequence[Mapping[str, Any]], k: int = FEW_SHOT, max_chars: int = 320, seed: int = 0
) -> list[tuple[str, str]]:
    """``k`` short (customer question, agent answer) pairs from distinct conversations."""
    candidates = []
    for row in pool:
        question = split_user_message(row["prompt"][-1]["content"])[1]
        answer = row["completion"][-1]["content"]
        if len(question) + len(answer) <= max_chars and not says_unknown(answer):
            candidates.append((str(row.get("conversation_id", "")), question, answer))
    random.Random(seed).shuffle(candidates)
    shots, seen = [], set()
    for conversation_id, question, answer in candidates:
        if conversation_id not in seen:
            seen.add(conversation_id)
            shots.append((question, answer))
        if len(shots) == k:
            break
    if len(shots) < k:
        raise DataError(f"the few-shot baseline needs {k} short training examples; found {len(shots)}")
    return shots


def with_shots(prompt: Sequence[Message], shots: Sequence[tuple[str, str]]) -> list[Message]:
    """The prompt with few-shot exchanges after the system message, replacing the built-in worked
    example (``build_messages(examples=shots)`` layout)."""
    stripped = without_default_examples(prompt)
    head, rest = stripped[:1], stripped[1:]
    for customer, agent in shots:
        head += [{"role": "user", "content": customer}, {"role": "assistant", "content": agent}]
    return head + rest


def retrieved_prompt(
    example: EvalExample, retriever: Retriever, shots: Sequence[tuple[str, str]] = ()
) -> list[Message]:
    """The example's question and history with freshly retrieved passages, same system prompt."""
    passages = retriever(example.question, example.history)
    persona = Persona(system_prompt=example.system or None)
    return build_messages(example.question, passages, persona, example.history, examples=shots or None)


def setting_prompts(
    examples: Sequence[EvalExample],
    setting: str,
    retriever: Retriever | None,
    shots: Sequence[tuple[str, str]] = (),
) -> list[list[Message]]:
    if setting == "gold":
        return [with_shots(e.prompt, shots) for e in examples]
    if retriever is None:
        raise DataError("the retrieved setting needs a retriever (a knowledge index or --docs)")
    return [retrieved_prompt(e, retriever, shots) for e in examples]


# ------------------------------------------------------------------------------- retrieval


def bm25_retriever(docs: Mapping[str, Passage], k: int = 4, chunk_chars: int = 900) -> Retriever:
    """Conversation-aware BM25 over ``docs`` cut into ~``chunk_chars`` windows: the query is the
    question plus the last turns, because follow-ups point back ("their bathrooms")."""
    import bm25s

    from training.data import focus_passage

    chunks: list[Passage] = []
    for doc in docs.values():
        chunks.extend(_windows(doc, chunk_chars) if len(doc.text) > chunk_chars else [doc])
    corpus = [f"{c.title or ''} {c.text}" for c in chunks]
    index = bm25s.BM25()
    index.index(bm25s.tokenize(corpus, show_progress=False), show_progress=False)

    def retrieve(question: str, history: Sequence[tuple[str, str]]) -> list[Passage]:
        context = " ".join(text for _, text in list(history)[-4:])
        query = f"{question} {question} {context}"
        tokens = bm25s.tokenize([query], show_progress=False)
        ids, _scores = index.retrieve(tokens, k=min(k, len(chunks)), show_progress=False)
        return [focus_passage(chunks[int(i)], question, chunk_chars) for i in ids[0]]

    return retrieve


def _windows(doc: Passage, size: int) -> list[Passage]:
    paragraphs = [p for p in doc.text.split("\n") if p.strip()]
    windows, current = [], ""
    for paragraph in paragraphs:
        if current and len(current) + len(paragraph) > size:
            windows.append(current)
            current = ""
        current = f"{current}\n{paragraph}" if current else paragraph
    windows.append(current)
    return [
        Passage(doc.doc_id, doc.source, text, doc.title, chunk_id=f"{doc.doc_id}#{i}")
        for i, text in enumerate(windows)
    ]


def knowledge_retriever(kb: Any, k: int = 4) -> Retriever:
    """A ``knowledge.KnowledgeBase`` (or anything with ``search``) as a retriever."""

    def retrieve(question: str, history: Sequence[tuple[str, str]]) -> list[Passage]:
        hits = kb.search(question, k=k, history=list(history))
        return [
            Passage(h.doc_id, h.source, h.text, getattr(h, "title", None), float(h.score), h.chunk_id)
            for h in hits
        ]

    return retrieve


# ------------------------------------------------------------------------------- metrics (pure)


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]
    return sum(scores) / len(scores) if scores else float("nan")


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def groundedness(answer: str, passages_text: str) -> float | None:
    """Share of the answer's content words that occur in its passages (None: nothing to judge)."""
    words = content_words(answer)
    if not words or not passages_text.strip():
        return None
    vocab = set(content_words(passages_text))
    return sum(w in vocab for w in words) / len(words)


def behaviour_scores(predictions: Sequence[str], expected: Sequence[str | None]) -> dict[str, float | None]:
    """Whether each answer declines (hands over) when it should: accuracy, decline precision/recall."""
    pairs = [(says_unknown(p), e == "decline") for p, e in zip(predictions, expected, strict=True) if e]
    if not pairs:
        return {"behaviour_accuracy": None, "decline_precision": None, "decline_recall": None}
    declined = [want for said, want in pairs if said]
    wanted = [said for said, want in pairs if want]
    return {
        "behaviour_accuracy": sum(s == w for s, w in pairs) / len(pairs),
        "decline_precision": sum(declined) / len(declined) if declined else None,
        "decline_recall": sum(wanted) / len(wanted) if wanted else None,
    }


def score(
    predictions: Sequence[str],
    examples: Sequence[EvalExample],
    prompts: Sequence[Sequence[Message]],
    nll: tuple[float, int] | None = None,
) -> dict[str, Any]:
    """Every metric of one (model, setting), from its answers and the prompts it was shown."""
    references = [e.reference for e in examples]
    grounded = [
        g
        for p, prompt in zip(predictions, prompts, strict=True)
        if (g := groundedness(p, split_user_message(prompt[-1]["content"])[0])) is not None
    ]
    metrics: dict[str, Any] = {
        "rougeL_f1": rouge_l(predictions, references),
        "bleu": bleu(predictions, references),
        "perplexity": math.exp(nll[0] / nll[1]) if nll and nll[1] else None,
        "groundedness": sum(grounded) / len(grounded) if grounded else None,
        "answer_chars": sum(map(len, predictions)) / len(predictions) if predictions else None,
    }
    if nll is not None:  # the sums behind perplexity, so reports over parts of a set can be merged
        metrics.update(nll_sum=float(nll[0]), nll_tokens=int(nll[1]))
    metrics.update(behaviour_scores(predictions, [e.expected for e in examples]))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def cut_at_stop(text: str) -> str:
    positions = [i for i in (text.find(m) for m in _STOP_MARKERS) if i >= 0]
    return (text[: min(positions)] if positions else text).strip()


# ------------------------------------------------------------------------------- model side


def greedy_options(tokenizer: Any, protocol: Protocol, prompt_len: int) -> dict[str, Any]:
    """``generate`` keyword arguments of the protocol's decoding: greedy, capped, stopping at a
    stop marker (the answer is cut there anyway)."""
    from transformers import StoppingCriteriaList

    return {
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "max_new_tokens": protocol.max_new_tokens,
        "repetition_penalty": protocol.repetition_penalty,
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

    prompt_ids = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        [*prompt, {"role": "assistant", "content": reference}], tokenize=False
    )
    p_ids = tokenizer(prompt_ids, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
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


def _common_prefix(sequences: Sequence[Sequence[int]]) -> list[int]:
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
            any(
                m in self.tokenizer.decode(row[self.start :], skip_special_tokens=True) for m in _STOP_MARKERS
            )
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
    shared = _common_prefix([p_ids for p_ids, _ in pairs])
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
    run = _answers_and_nll if protocol.batch_size == 1 else _answers_and_nll_batched
    answers, total, count = run(model, tokenizer, examples, prompts, protocol, bar)
    return score(answers, examples, prompts, (total, count)), answers


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

    from agent.models import load_resolved, resolve_spec

    # 1. The inputs every model sees, fixed before any model runs.
    shots = pick_shots(plan.shot_pool or [], FEW_SHOT) if "few_shot" in plan.models else []
    prompts = {s: setting_prompts(plan.examples, s, plan.retriever) for s in plan.settings}
    shot_prompts = {s: setting_prompts(plan.examples, s, plan.retriever, shots) for s in plan.settings}

    # 2. Each model in turn (one in memory at a time), each setting.
    protocol = plan.protocol or PROTOCOL
    report: dict[str, Any] = {"models": {}, "n": len(plan.examples), "specs": {}, "answers": {}}
    total = len(plan.models) * len(plan.settings) * len(plan.examples)
    with tqdm(total=total, desc="evaluating", disable=not progress, leave=False) as bar:
        for role, spec in plan.models.items():
            resolved = resolve_spec(spec, home=home)
            model, tokenizer = load_resolved(resolved, merge=True)
            report["specs"][role] = resolved.version
            report["models"][role], report["answers"][role] = {}, {}
            for setting in plan.settings:
                bar.set_postfix_str(f"{role}/{setting}")
                inputs = shot_prompts[setting] if role == "few_shot" else prompts[setting]
                metrics, answers = evaluate_loaded(model, tokenizer, plan.examples, inputs, protocol, bar=bar)
                report["models"][role][setting] = metrics
                report["answers"][role][setting] = answers
                if plan.on_result is not None:
                    plan.on_result(role, setting, metrics)
            del model

    # 3. What was run, so the report can be reproduced.
    report["protocol"] = {**protocol.__dict__, "decoding": "greedy", "few_shot_examples": len(shots)}
    report["shots"] = shots
    return report
