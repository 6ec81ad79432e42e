"""Study: a reader that judges, sentence by sentence, whether a passage sentence answers the question.

Session 16's answerability classifier read the question with four evidence sentences at once and
was labelled by page; it could not tell a turn to decline from one to answer (AUC 0.50-0.68). Its
note named the next lever: label by the sentence that answers, not by the page. This script does
that. The packaged all-MiniLM-L6-v2 is read as a cross-encoder with one logit (does this sentence
answer this question?) and trained on pairs labelled sentence by sentence:

* **the sample company's past conversations** (``agent/sample/conversations.jsonl``, and the
  reviewer's correction where one was made): each answered customer turn is retrieved as the
  agent retrieves; a sentence of a gold page that the agent's reply restates (its figures, most
  of its words) answers; a sentence of another page sharing at most two words and no figure with
  the reply, or one of the gold page sharing at most one, does not; the rest are left out
  (``--hard``: the other turns' answering sentences on the same page do not answer either);
* **the sample's labelled questions** (``agent/sample/questions.jsonl``, not an evaluation set):
  a gold-page sentence holding every key fact answers, one holding none does not;
* **DSTC11** (``../shared/data/dstc11``), conversations outside every held-out split: the gold FAQ
  entry, or a gold-review sentence with a word of the question and two of the human answer,
  answers the last customer message; the entity's other FAQ entries do not (``dstc11_pairs``).

It is then read on what the agent was shown for the dev, held-out and fresh question sets (the
passages stored with a ``tuned_default`` run; nothing here was trained on them):

* **answerability**: the AUC of the best sentence's score, unanswerable against answerable;
* **the quote**: how often the best one or two sentences hold every key fact, against the
  answer check's own ranking (``agent.grounding.rank_sentences``).

    python -m benchmarks.answer_reader [--hard] [--epochs 2] [--lr 3e-5] [--lora-r 0] [--out DIR]

About 20 minutes of training on the 2-core CPU. Findings (not shipped: no better than the
embedding's cosine at answerability, worse than the check's ranking at the quote):
docs/experiments/2026-12-06-sentence-reader.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.answerability_classifier import SAMPLE, auc, pair
from training.run import device_name

MAX_LENGTH = 128
RESULTS = Path(__file__).resolve().parent / "results"
SETS = {"dev": ("dev.jsonl", "s27_dev"), "heldout": ("heldout.jsonl", "tuned_default"),
        "fresh": ("fresh.jsonl", "fresh_questions")}  # fmt: skip
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
_STOP = frozenset(
    re.findall(
        r"\w+",
        """
        the a an and or of to in on for is are was be it its this that with you your we our can do does
        not no yes if at by from as have has will any all there their they them my me i so but about
        how what when which who why would could should may just also only into than then up out more
        """,
    )
)  # words that say nothing of what a sentence is about


@dataclass(frozen=True)
class Pair:
    """One training pair: does ``sentence`` answer ``question`` (1) or not (0)."""

    question: str
    previous: str
    sentence: str  # read under its section heading
    label: int
    source: str
    group: str


def words(text: str) -> set[str]:
    return {w[:6] for w in _WORD.findall(text.lower()) if w not in _STOP and (len(w) > 2 or w.isdigit())}


def numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", text))


def first_segment(question: str, previous: str) -> str:
    """The customer's words as session 16's classifier read them (its ``pair``'s first segment)."""
    return pair(question, previous, ())[0]


# ------------------------------------------------------------------------------------ examples


def sample_pairs(kb: Any, rng: random.Random, negatives: int = 8, hard: bool = False) -> list[Pair]:
    """Pairs from each answered turn of the sample's past conversations (see the module doc).
    ``hard``: also, as answering nothing, each gold-page sentence that shares no figure with the
    reply, and the answering sentences of the other turns on the same page (near misses, as the
    passages of a question the pages do not answer are)."""
    from agent.citations import says_unknown
    from agent.grounding import read_sentences
    from agent.guardrails import clean_passage, small_talk

    out: list[Pair] = []
    answers: dict[frozenset[str], list[tuple[str, str, str, str]]] = {}
    for line in (SAMPLE / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        gold = set(row.get("gold_doc_ids") or [])
        turns = row.get("turns") or []
        last_agent = max((i for i, t in enumerate(turns) if t["role"] == "agent"), default=-1)
        history: list[tuple[str, str]] = []
        for i, turn in enumerate(turns):
            if turn["role"] != "customer" or i + 1 >= len(turns) or turns[i + 1]["role"] != "agent":
                history.append((turn["role"], turn["text"]))
                continue
            question = turn["text"]
            reply = (
                row["correction"] if i + 1 == last_agent and row.get("correction") else turns[i + 1]["text"]
            )
            previous = next((t for r, t in reversed(history) if r == "customer"), "")
            history_now = list(history)
            history.append((turn["role"], turn["text"]))
            if not gold or small_talk(question) or says_unknown(reply):
                continue
            hits = kb.search(question, k=8, history=history_now)
            texts = [clean_passage(h.text) for h in hits]
            reply_words, reply_numbers = words(reply), numbers(reply)
            positives, negs = [], []
            for number, _, clean, headed in read_sentences(texts):
                shared = words(clean) & reply_words
                figures = numbers(clean) & reply_numbers
                own = words(clean)
                if hits[number - 1].doc_id in gold:
                    if (figures and len(shared) >= 2) or (len(shared) >= 3 and len(shared) >= 0.4 * len(own)):
                        positives.append((len(shared) + 2 * len(figures), headed))
                    elif (hard or len(shared) <= 1) and not figures:
                        negs.append(headed)
                elif len(shared) <= 2 and not figures:
                    negs.append(headed)
            positives.sort(key=lambda p: -p[0])
            for _, text in positives[:2]:
                out.append(Pair(question, previous, text, 1, "sample", row["id"]))
                answers.setdefault(frozenset(gold), []).append((row["id"], question, previous, text))
            rng.shuffle(negs)
            for text in dict.fromkeys(negs[:negatives]):
                out.append(Pair(question, previous, text, 0, "sample", row["id"]))
    if hard:
        for group in answers.values():
            for cid, question, previous, _ in group:
                mine = {t for c, q, _, t in group if c == cid and q == question}
                others = [t for c, _, _, t in group if c != cid and t not in mine]
                rng.shuffle(others)
                out += [
                    Pair(question, previous, t, 0, "sample-near-miss", cid) for t in dict.fromkeys(others[:3])
                ]
    return out


def question_pairs(kb: Any, rng: random.Random, negatives: int = 8) -> list[Pair]:
    """Pairs from the sample's labelled questions: a gold-page sentence with every key fact answers."""
    from agent.grounding import read_sentences
    from agent.guardrails import clean_passage

    out: list[Pair] = []
    for n, line in enumerate((SAMPLE / "questions.jsonl").read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        gold, facts = (
            set(row.get("gold_doc_ids") or []),
            [f.lower() for f in row.get("answer_contains") or []],
        )
        if not gold or not facts:
            continue
        hits = kb.search(row["question"], k=8)
        texts = [clean_passage(h.text) for h in hits]
        negs = []
        for number, _, clean, headed in read_sentences(texts):
            low = clean.lower()
            if hits[number - 1].doc_id in gold and all(f in low for f in facts):
                out.append(Pair(row["question"], "", headed, 1, "questions", f"q{n}"))
            elif not any(f in low for f in facts):
                negs.append(headed)
        rng.shuffle(negs)
        out += [
            Pair(row["question"], "", t, 0, "questions", f"q{n}") for t in dict.fromkeys(negs[:negatives])
        ]
    return out


def dstc11_pairs(root: Path, rng: random.Random, negatives: int = 6) -> list[Pair]:
    """DSTC11 conversations outside every held-out split. A gold FAQ entry answers, and so does a
    sentence of a gold review that has a word of the question and two of the human answer; the
    entity's other FAQ entries, and sentences of its other reviews with no word of the question,
    do not."""
    from training.data.rows import is_validation

    docs = [
        json.loads(line) for line in (root / "knowledge_docs.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    by_id = {d["doc_id"]: d for d in docs}
    entity: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for d in docs:
        entity.setdefault((d["domain"], d["entity_id"]), []).append(d)

    def units(d: dict[str, Any]) -> list[str]:
        name = d["entity_name"].title()
        if d["doc_type"] == "faq":
            return [f"{name} > FAQ: " + " ".join(d["text"].replace("Q: ", "").replace("A: ", "").split())]
        parts = re.split(r"(?<=[.!?])\s+", " ".join(d["text"].split()))
        return [f"{name} > Guest reviews: {p}" for p in parts if len(p) > 20]

    out: list[Pair] = []
    for line in (root / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        cid = str(row["id"])
        if is_validation(cid, 0.15) or is_validation(cid, 0.2) or is_validation(cid, 0.35):
            continue
        gold = [by_id[g] for g in row.get("gold_doc_ids") or [] if g in by_id]
        if not gold:
            continue
        customer = [t["text"] for t in row["turns"] if t["role"] == "customer"]
        question, previous = customer[-1], (customer[-2] if len(customer) > 1 else "")
        asked, answered = words(question), words(row.get("gold_response") or "")
        ids = {g["doc_id"] for g in gold}
        positives = []
        for g in gold:
            for text in units(g):
                own = words(text)
                if g["doc_type"] == "faq" or (own & asked and len(own & answered) >= 2):
                    positives.append(text)
        negs = []
        for d in entity.get((gold[0]["domain"], gold[0]["entity_id"]), []):
            if d["doc_id"] in ids:
                continue
            negs += [t for t in units(d) if d["doc_type"] == "faq" or not words(t) & asked]
        rng.shuffle(positives)
        rng.shuffle(negs)
        out += [Pair(question, previous, t, 1, "dstc11", cid) for t in positives[:2]]
        out += [Pair(question, previous, t, 0, "dstc11", cid) for t in negs[:negatives]]
    return out


# ------------------------------------------------------------------------------------ model


def load_model(path: Path | None = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from knowledge.encoding import default_model_path

    source = path or default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new head, by design
    try:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(source), num_labels=1, dtype=torch.float32
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tokenizer


def encode(tokenizer: Any, firsts: Sequence[str], seconds: Sequence[str]) -> Any:
    return tokenizer(
        list(firsts), list(seconds), truncation="longest_first", max_length=MAX_LENGTH, padding=True,
        return_tensors="pt",
    )  # fmt: skip


def train(
    pairs: Sequence[Pair], epochs: int, lr: float, lora_r: int, seed: int, batch: int = 32
) -> tuple[Any, Any, dict[str, Any]]:
    import torch
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, tokenizer = load_model()
    if lora_r > 0:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            task_type="SEQ_CLS", r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.1,
            target_modules=r".*encoder.*\.(query|key|value|dense)$", modules_to_save=["classifier", "pooler"],
        ))  # fmt: skip
    positives = sum(p.label for p in pairs)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor((len(pairs) - positives) / max(1, positives))
    )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01
    )
    steps = epochs * ((len(pairs) + batch - 1) // batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    order, losses, started = list(pairs), [], time.perf_counter()
    model.train()
    for epoch in range(epochs):
        rng.shuffle(order)
        batches = [order[i : i + batch] for i in range(0, len(order), batch)]
        for chunk in tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}"):
            inputs = encode(
                tokenizer, [first_segment(p.question, p.previous) for p in chunk], [p.sentence for p in chunk]
            )
            target = torch.tensor([float(p.label) for p in chunk])
            loss = loss_fn(model(**inputs).logits.squeeze(-1), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    model.eval()
    if lora_r > 0:
        model = model.merge_and_unload()
    stats = {
        "seconds": round(time.perf_counter() - started, 1),
        "steps": len(losses),
        "first_loss": round(sum(losses[:20]) / max(1, len(losses[:20])), 4),
        "last_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
    }
    return model, tokenizer, stats


def scorer(model: Any, tokenizer: Any) -> Any:
    import torch

    def score(question: str, previous: str, sentences: Sequence[str]) -> list[float]:
        if not sentences:
            return []
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(sentences), 64):
                part = sentences[i : i + 64]
                logits = model(
                    **encode(tokenizer, [first_segment(question, previous)] * len(part), part)
                ).logits
                out += torch.sigmoid(logits.squeeze(-1)).tolist()
        return out

    return score


# ------------------------------------------------------------------------------------ reading


def read_set(name: str, score: Any, embed: Any) -> dict[str, Any]:
    """Answerability AUC and quote hits on the passages stored for one question set."""
    from agent.grounding import rank_sentences, read_sentences, sentence_relevance

    questions_file, results = SETS[name]
    questions = {q["id"]: q for q in map(json.loads, (SAMPLE / questions_file).read_text().splitlines()) if q}
    rows = json.loads((RESULTS / f"{results}.json").read_text())["sample"]["tuned"]["rows"]
    best_answerable, best_unanswerable = [], []
    cosine: dict[bool, list[float]] = {True: [], False: []}
    hits = Counter()
    for row in rows:
        q = questions[row["id"]]
        history = q.get("history") or []
        previous = next((t["text"] for t in reversed(history) if t["role"] == "customer"), "")
        passages = [p if isinstance(p, str) else p.get("text", "") for p in row["passages"]]
        read = read_sentences(passages)
        scores = score(q["question"], previous, [c[3] for c in read])
        best = max(scores, default=0.0)
        cosine[q["kind"] == "unanswerable"].append(sentence_relevance(q["question"], passages, embed) or 0.0)
        if q["kind"] == "unanswerable":
            best_unanswerable.append(best)
            continue
        best_answerable.append(best)
        facts = [f.lower() for f in q.get("answer_contains") or []]
        if not facts or not all(f in " ".join(passages).lower() for f in facts):
            continue
        hits["facts_shown"] += 1
        by_reader = [read[i][2] for i in sorted(range(len(read)), key=lambda i: -scores[i])]
        context = [t["text"] for t in history if t["role"] == "customer"]
        by_check = [e.text for e in rank_sentences(q["question"], passages, embed, context)]
        for label, ranked in (("reader", by_reader), ("check", by_check)):
            for k in (1, 2):
                if all(f in " ".join(ranked[:k]).lower() for f in facts):
                    hits[f"{label}_top{k}"] += 1
    return {
        "answerable": len(best_answerable),
        "unanswerable": len(best_unanswerable),
        "decline_auc": auc([1 - b for b in best_unanswerable], [1 - b for b in best_answerable]),
        "embedding_decline_auc": auc([1 - b for b in cosine[True]], [1 - b for b in cosine[False]]),
        "best_score_unanswerable": sorted(round(b, 3) for b in best_unanswerable),
        "answerable_under": {str(t): sum(b < t for b in best_answerable) for t in (0.1, 0.2, 0.3, 0.5)},
        "unanswerable_under": {str(t): sum(b < t for b in best_unanswerable) for t in (0.1, 0.2, 0.3, 0.5)},
        **dict(hits),
    }


def main() -> None:
    from agent.config import load_config
    from agent.grounding import CachedEmbed
    from agent.knowledge import open_knowledge
    from benchmarks.common import require_data, write_result

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--lora-r", type=int, default=0, help="0: every weight trains")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Where the trained reader goes (default: not kept).")
    parser.add_argument("--name", default="answer_reader")
    parser.add_argument("--hard", action="store_true", help="Add the sample's near-miss negatives.")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-reader-"))
    config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
    config.retrieval.ingest_sample = False
    kb = open_knowledge(config)
    kb.ingest([SAMPLE / "docs"])
    embed = CachedEmbed(kb.embed)
    rng = random.Random(args.seed)
    pairs = (
        sample_pairs(kb, rng, hard=args.hard)
        + question_pairs(kb, rng)
        + dstc11_pairs(require_data("dstc11", "conversations.jsonl").parent, rng)
    )
    counts = dict(Counter(f"{p.source}:{p.label}" for p in pairs))
    print(counts, flush=True)
    (home / "pairs.jsonl").write_text("".join(json.dumps(asdict(p)) + "\n" for p in pairs))
    model, tokenizer, stats = train(pairs, args.epochs, args.lr, args.lora_r, args.seed)
    print(stats, flush=True)
    if args.out:
        model.save_pretrained(str(args.out))
        tokenizer.save_pretrained(str(args.out))
    score = scorer(model, tokenizer)
    result: dict[str, Any] = {
        "recipe": {
            "hard": args.hard,
            "epochs": args.epochs,
            "lr": args.lr,
            "lora_r": args.lora_r,
            "seed": args.seed,
            "max_length": MAX_LENGTH,
        },
        "pairs": counts,
        "train_stats": stats,
        "trained_on": device_name(None),
        "sets": {name: read_set(name, score, embed) for name in SETS},
    }
    print(json.dumps(result["sets"], indent=1))
    write_result(args.name, result, echo=False)


if __name__ == "__main__":
    main()
