"""``supportloop eval agent``: does the agent answer, decline or ask, as the label says?

Conversations carry ``answerability`` as in MT-RAG: ANSWERABLE and PARTIAL should be answered,
UNANSWERABLE declined (the agent says it does not know or hands over), UNDERSPECIFIED met with
a clarifying question. Citation accuracy is the share of cited documents that are gold, over
answered conversations that have gold contexts. Scoring is pure; ``run_eval`` drives an agent.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.citations import says_unknown
from agent.errors import DataError

EXPECTED = {
    "ANSWERABLE": "answer",
    "PARTIAL": "answer",
    "UNANSWERABLE": "decline",
    "UNDERSPECIFIED": "clarify",
}
_CLARIFY = re.compile(
    r"\b(?:could|can|would) you (?:please )?(?:clarify|specify|tell me (?:more|which|what)|be more specific|"
    r"provide more)|\bdo you mean\b|\bwhich (?:one|of)\b|\bwhat (?:exactly|specifically)\b|\bcan you elaborate\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class EvalCase:
    id: str
    history: list[tuple[str, str]]
    question: str
    answerability: str
    gold_doc_ids: tuple[str, ...] = ()


@dataclass
class EvalResult:
    case: EvalCase
    behaviour: str  # answer, decline, clarify
    cited: tuple[str, ...] = ()
    answer: str = ""


@dataclass
class EvalReport:
    results: list[EvalResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        by_label: dict[str, Counter[str]] = {}
        for r in self.results:
            by_label.setdefault(r.case.answerability, Counter())[r.behaviour] += 1
        out: dict[str, Any] = {"conversations": len(self.results)}
        for label, expected in EXPECTED.items():
            counts = by_label.get(label, Counter())
            total = sum(counts.values())
            out[f"{label.lower()}_n"] = total
            out[f"{label.lower()}_{expected}_rate"] = round(counts[expected] / total, 4) if total else None
        correct = sum(EXPECTED.get(r.case.answerability) == r.behaviour for r in self.results)
        out["behaviour_accuracy"] = round(correct / len(self.results), 4) if self.results else None
        cited = [r for r in self.results if r.behaviour == "answer" and r.case.gold_doc_ids and r.cited]
        hits = sum(len(set(r.cited) & set(r.case.gold_doc_ids)) / len(r.cited) for r in cited)
        out["citation_accuracy"] = round(hits / len(cited), 4) if cited else None
        out["cited_answers"] = len(cited)
        return out


def behaviour(answer: str, escalated: bool, refused: bool) -> str:
    if escalated or refused or says_unknown(answer):
        return "decline"
    if _CLARIFY.search(answer) or answer.rstrip().endswith("?"):
        return "clarify"
    return "answer"


def read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """The objects of a JSON Lines file; DataError (path:line) for anything else."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                if not line.strip():
                    continue
                row = json.loads(line)
            except UnicodeDecodeError:
                raise DataError("not valid UTF-8", path=str(path), line=number) from None
            except RecursionError:
                raise DataError("JSON nested too deeply", path=str(path), line=number) from None
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", path=str(path), line=number) from exc
            if not isinstance(row, dict):
                raise DataError("expected a JSON object", path=str(path), line=number)
            yield number, row


def read_cases(path: Path) -> list[EvalCase]:
    cases = []
    for number, row in read_jsonl(path):
        turns = row.get("turns")
        if (
            not isinstance(turns, list)
            or not turns
            or not all(
                isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("text"), str)
                for t in turns
            )
            or turns[-1]["role"] != "customer"
        ):
            raise DataError(
                "expected `turns` of {role, text} ending on a customer turn", path=str(path), line=number
            )
        label = str(row.get("answerability", "ANSWERABLE")).upper()
        if label not in EXPECTED:
            raise DataError(f"unknown answerability {label!r}", path=str(path), line=number)
        contexts = row.get("contexts") or []
        if not isinstance(contexts, list):  # before it is read: `"contexts": true` is not iterable
            raise DataError("gold_doc_ids and contexts must be lists", path=str(path), line=number)
        gold = row.get("gold_doc_ids") or [c.get("doc_id") for c in contexts if isinstance(c, dict)]
        if not isinstance(gold, list):
            raise DataError("gold_doc_ids and contexts must be lists", path=str(path), line=number)
        cases.append(
            EvalCase(
                id=str(row.get("id", number)),
                history=[(t["role"], t["text"]) for t in turns[:-1]],
                question=turns[-1]["text"],
                answerability=label,
                gold_doc_ids=tuple(str(g) for g in gold if g),
            )
        )
    return cases


def read_documents(path: Path) -> list[dict[str, Any]]:
    """Documents from a JSONL of docs (doc_id/id, text) or of conversations with `contexts`."""
    docs: dict[str, dict[str, Any]] = {}
    for number, row in read_jsonl(path):
        items = row["contexts"] if isinstance(row.get("contexts"), list) else [row]
        for item in items:
            doc_id = item.get("doc_id") or item.get("id") if isinstance(item, dict) else None
            if not doc_id or not isinstance(item.get("text"), str):
                raise DataError(
                    "each document needs `doc_id` (or `id`) and `text`", path=str(path), line=number
                )
            docs.setdefault(str(doc_id), {"doc_id": str(doc_id), "text": item["text"]})
    return list(docs.values())


def run_eval(
    agent: Any, cases: Sequence[EvalCase], progress: Callable[[Iterable[EvalCase]], Iterable[EvalCase]] = iter
) -> EvalReport:
    report = EvalReport()
    for case in progress(cases):
        conversation_id = f"eval-{uuid.uuid4().hex[:12]}"
        agent.store.ensure_conversation(conversation_id, channel="eval")
        for role, text in case.history:
            agent.store.add_turn(conversation_id, role, text)
        reply = agent.reply(conversation_id, case.question)
        report.results.append(
            EvalResult(
                case=case,
                behaviour=behaviour(reply.text, reply.escalated, reply.refused),
                cited=tuple(c.doc_id for c in reply.citations),
                answer=reply.text,
            )
        )
    return report


def balanced_subset(cases: list[EvalCase], limit: int | None) -> list[EvalCase]:
    """At most ``limit`` cases, taken in turn from each answerability label (file order within a
    label), so a short run still covers every behaviour; ``None``: all of them, in file order."""
    if limit is None or limit >= len(cases):
        return list(cases)
    groups: dict[str, list[EvalCase]] = {}
    for case in cases:
        groups.setdefault(case.answerability, []).append(case)
    picked: set[int] = set()
    queues = [iter(g) for g in groups.values()]
    while len(picked) < limit:
        for queue in queues:
            item = next(queue, None)
            if item is not None and len(picked) < limit:
                picked.add(id(item))
    return [c for c in cases if id(c) in picked]


def eval_agent_on_files(
    config: Any,
    docs: Path,
    conversations: Path,
    *,
    model: str | None = None,
    limit: int | None = None,
    generator: Any = None,
    progress: bool = True,
) -> EvalReport:
    """Index ``docs`` into a temporary knowledge base and run the agent over the conversations,
    logging into a temporary store (evaluation never touches the production log)."""
    import dataclasses

    from agent.generator import build_generator
    from agent.knowledge import knowledge_config
    from agent.runtime import Agent
    from agent.store import LogStore
    from knowledge import Document, KnowledgeBase

    cases = balanced_subset(read_cases(conversations), limit)
    documents = read_documents(docs)
    with tempfile.TemporaryDirectory(prefix="supportloop-eval-") as tmp:
        kcfg = dataclasses.replace(knowledge_config(config), persist_dir=Path(tmp) / "index", chroma_url=None)
        kb = KnowledgeBase(kcfg)
        kb.ingest_documents(
            [
                Document(doc_id=d["doc_id"], text=d["text"], source=f"{docs.name}#{d['doc_id']}", metadata={})
                for d in documents
            ],
            progress=progress,
        )
        store = LogStore(f"sqlite:///{Path(tmp) / 'eval.db'}")
        agent = Agent(generator or build_generator(config, model), kb, store, config, shadow_runner=False)
        wrap: Callable[[Iterable[EvalCase]], Iterable[EvalCase]] = iter
        if progress:
            from tqdm import tqdm

            def wrap(items: Iterable[EvalCase]) -> Iterable[EvalCase]:
                return tqdm(items, total=len(cases), desc="eval agent", unit="conv")

        try:
            return run_eval(agent, cases, wrap)
        finally:
            store.close()
