"""The tuned default against the base model, through the agent customers talk to, in one run.

* Sample held-out (``agent/sample/heldout.jsonl``, fixed before training): answer accuracy (all
  key facts present) on answerable questions and follow-ups, citation accuracy (a cited
  document is a gold one), decline rate on unanswerable questions and how many of those
  answers invent a figure; each with the answer check on (the product) and off (the model
  alone), and the share of answers sent as generated vs replaced by the fallback.
* Serving check: answers sent with a figure that is in neither the passages nor the conversation.
* The model reads: the same questions over a copy of the sample documents whose figures were
  changed (``--changed``); the share of affected answers that give the new figure.
* MT-RAG held-out tasks (the compiler's 35 % split of the default mix, ``--mtrag N`` per label):
  behaviour accuracy per answerability label through ``agent.evaluate``.

Both arms serve through the production path (``agent.generator.build_generator``: the compiled
engine when it is available).

    python -m benchmarks.tuned_default --tuned agent/default_model [--changed] [--mtrag 20]
        [--questions dev.jsonl --name NAME] [--extra NAME=DIR ...] [--candidates N] [--[no-]one-per-page]

``--questions dev.jsonl``: the development set (``agent/sample/dev.jsonl``) that the answer
check's settings and the shipped model variant were chosen on, so that the held-out set stays a
test set. ``--questions fresh.jsonl``: 90 questions written after the check's rules were written
from the dev and held-out failures (three rules of session 35 were then written from its own:
``agent/sample/fresh.md``). ``--questions fresh2.jsonl``: 40 questions written in session 35 by
a helper who never read the check (since in sample for session 36's change: ``agent/sample/fresh2.md``).
``--questions fresh3.jsonl``: 40 more written in session 37 the same way (since in sample for session 38's
changes); ``--questions fresh4.jsonl``: 40 more written in session 38; ``--questions fresh5.jsonl``: 40 more written in session 42; ``--questions fresh6.jsonl``: 40 more written in session 45, the out-of-sample check now. ``--extra``: more adapters as arms of the same run (retrained candidates).
``--candidates``: ``retrieval.candidates`` for every arm (the re-ranking ablation).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import (
    FOCUSED_SETS,
    QUESTION_SETS,
    RESULTS,
    SAMPLE,
    bench_home,
    machine,
    require_data,
    table,
    write_result,
)

FIGURE = re.compile(r"\d+(?:[.,:]\d+)*")


LIMIT: int | None = None  # --limit: the first N questions of each kind (a smoke run)
QUESTIONS = "heldout.jsonl"  # --questions dev.jsonl: the development set the check was tuned on
CANDIDATES: int | None = None  # --candidates: retrieval.candidates for every arm (None: the default)
ONE_PER_PAGE: bool | None = None  # --[no-]one-per-page: retrieval.one_per_page for every arm
KEEP_RETRIEVED: int | None = None  # --keep-retrieved: retrieval.keep_retrieved for every arm
# --ranker: retrieval.ranker for every arm (None: the shipped ranker, so every arm is shown the
# chunks the shipped default is shown; "none": the index's own model, the ablation)
RANKER: str | None = None
ASK_WHICH: bool | None = None  # --[no-]ask-which: grounding.ask_which for every arm
ASK_UNNAMED: bool | None = None  # --[no-]ask-unnamed: grounding.ask_unnamed for every arm
WHOLE_LISTS: bool | None = None  # --[no-]whole-lists: grounding.whole_lists for every arm
READ_AS_WRITTEN: bool | None = None  # --[no-]read-as-written: grounding.read_as_written for every arm
TYPED = "as-written"  # --typed: how the customer's messages are typed (``typed``)


def typed(text: str, how: str) -> str:
    """A customer message typed as ``how`` says: "as-written" (as the set has it) or "lower" (in
    lower case, with no closing "?" or ".", as customers type in a chat: "what does e4 mean")."""
    if how == "lower":
        return text.lower().rstrip().rstrip("?.!").rstrip()
    return text


def add_typed_option(parser: argparse.ArgumentParser) -> None:
    """``--typed``: how the sample's customer messages are typed (``typed``)."""
    parser.add_argument(
        "--typed",
        choices=["as-written", "lower"],
        default="as-written",
        help="How the sample's customer messages are typed (lower: in lower case with no closing "
        "'?', as customers type in a chat).",
    )


def typed_item(item: dict[str, Any], how: str) -> dict[str, Any]:
    """A sample question item with the customer's messages (the question and the customer's turns
    of its history) ``typed`` as ``how`` says."""
    history = [
        {**t, "text": typed(t["text"], how)} if t["role"] == "customer" else t
        for t in item.get("history", [])
    ]
    return {**item, "question": typed(item["question"], how), "history": history}


def heldout() -> list[dict[str, Any]]:
    items = [
        typed_item(json.loads(line), TYPED) for line in (SAMPLE / QUESTIONS).read_text().splitlines() if line
    ]
    if LIMIT is None:
        return items
    kinds: dict[str, int] = {}
    return [
        i for i in items if (kinds := {**kinds, i["kind"]: kinds.get(i["kind"], 0) + 1})[i["kind"]] <= LIMIT
    ]


def make_agent(home: Path, model: str, docs: Path, grounding: bool, **generation: Any) -> Any:
    """An agent on ``model`` over ``docs``; ``generation`` overrides generation settings."""
    from agent.config import load_config
    from agent.runtime import Agent

    config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
    config.grounding.enabled = grounding
    for key, value in generation.items():
        setattr(config.generation, key, value)
    if CANDIDATES is not None:
        config.retrieval.candidates = CANDIDATES
    if ONE_PER_PAGE is not None:
        config.retrieval.one_per_page = ONE_PER_PAGE
    if KEEP_RETRIEVED is not None:
        config.retrieval.keep_retrieved = KEEP_RETRIEVED
    config.retrieval.ranker = RANKER or shipped_ranker()
    if ASK_WHICH is not None:
        config.grounding.ask_which = ASK_WHICH
    if ASK_UNNAMED is not None:
        config.grounding.ask_unnamed = ASK_UNNAMED
    if WHOLE_LISTS is not None:
        config.grounding.whole_lists = WHOLE_LISTS
    if READ_AS_WRITTEN is not None:
        config.grounding.read_as_written = READ_AS_WRITTEN
    config.retrieval.ingest_sample = False  # the arm's own documents, not the shipped sample
    from agent.knowledge import open_knowledge

    knowledge = open_knowledge(config)
    if knowledge.count() == 0:
        knowledge.ingest([docs])
    agent = Agent.from_config(config, model=model)
    return agent


def contains_all(answer: str, facts: list[str]) -> bool:
    low = answer.lower()
    return all(f.lower() in low for f in facts)


CITATION = re.compile(r"\[\d{1,2}\]")


def invented_figures(answer: str, sources: list[str]) -> list[str]:
    """Numbers in the answer (citation markers aside) that no source has."""
    pool = set(FIGURE.findall(" ".join(sources).replace(",", "")))
    return [f for f in FIGURE.findall(CITATION.sub("", answer).replace(",", "")) if f not in pool]


def ask(agent: Any, item: dict[str, Any]) -> dict[str, Any]:
    import uuid

    from agent.evaluate import behaviour

    cid = f"bench-{uuid.uuid4().hex[:10]}"
    agent.store.ensure_conversation(cid, channel="eval")
    for turn in item.get("history", []):
        agent.store.add_turn(cid, turn["role"], turn["text"])
    started = time.perf_counter()
    reply = agent.reply(cid, item["question"])
    seconds = time.perf_counter() - started
    turn = agent.store.turns(cid)[-1]
    passages = [p["text"] for p in turn.metadata.get("passages", [])]
    conversation = [t["text"] for t in item.get("history", [])] + [item["question"]]
    return {
        "id": item["id"],
        "kind": item["kind"],
        "answer": reply.text,
        "behaviour": behaviour(reply.text, reply.escalated, reply.refused),
        "cited": [c.doc_id for c in reply.citations],
        "grounding": reply.grounding,
        "correct": bool(item["answer_contains"]) and contains_all(reply.text, item["answer_contains"]),
        "invented": invented_figures(reply.text, passages + conversation) if passages else [],
        "passages": passages,
        "seconds": round(seconds, 2),
    }


def summarize(rows: list[dict[str, Any]], items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["kind"] in ("answerable", "followup")]
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    # A question that names no model where the answer depends on it: right when the reply asks
    # back which and gives every model's value (ambiguous.jsonl).
    ambiguous = [r for r in rows if r["kind"] == "ambiguous"]
    cited = [r for r in answerable if r["cited"] and r["behaviour"] == "answer"]
    gold_cited = sum(bool(set(r["cited"]) & set(items[r["id"]]["gold_doc_ids"])) for r in cited)
    actions = Counter((r["grounding"] or {}).get("action", "none") for r in rows)
    return {
        "answer_accuracy": _rate([r["correct"] for r in answerable]),
        "answerable_accuracy": _rate([r["correct"] for r in answerable if r["kind"] == "answerable"]),
        "followup_accuracy": _rate([r["correct"] for r in answerable if r["kind"] == "followup"]),
        "citation_accuracy": round(gold_cited / len(cited), 3) if cited else None,
        "decline_rate": _rate([r["behaviour"] == "decline" for r in unanswerable]),
        "asked_back_rate": _rate([r["behaviour"] == "clarify" for r in ambiguous]),
        "ambiguous_right": _rate([r["behaviour"] == "clarify" and r["correct"] for r in ambiguous]),
        "ambiguous_values_given": _rate([r["correct"] for r in ambiguous]),
        "unanswerable_invented": sum(bool(r["invented"]) for r in unanswerable),
        "sent_with_unsupported_figure": sum(bool(r["invented"]) for r in rows),
        "actions": dict(actions),
        "p50_seconds": sorted(r["seconds"] for r in rows)[len(rows) // 2],
        "n": len(rows),
    }


def _rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def changed_docs(out: Path, items: list[dict[str, Any]]) -> dict[str, str]:
    """A copy of the sample docs with each listed figure changed; {old fact: new fact}."""
    shutil.copytree(SAMPLE / "docs", out)
    mapping: dict[str, str] = {}
    for item in items:
        for fact in item.get("changed") or []:
            numbers = FIGURE.findall(fact)
            if not numbers or fact in mapping:
                continue
            old = numbers[0]
            new = str(int(float(old)) + 3) if "." not in old else f"{float(old) + 0.5:g}"
            mapping[fact] = fact.replace(old, new, 1)
    # One pass over each file: a changed figure is never changed again ("7 days" -> "10 days"
    # must not then meet the rule for "10").
    keys = sorted(mapping, key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<![\w.$]){re.escape(k)}(?![\w])" for k in keys), re.IGNORECASE)
    lower = {k.lower(): v for k, v in mapping.items()}
    for path in out.glob("*.md"):
        text = path.read_text(encoding="utf-8")
        path.write_text(pattern.sub(lambda m: lower[m.group(0).lower()], text), encoding="utf-8")
    return mapping


def run_sample(home_root: Path, arms: dict[str, str]) -> dict[str, Any]:
    items = heldout()
    by_id = {i["id"]: i for i in items}
    out: dict[str, Any] = {}
    for arm, model in arms.items():
        for grounding in (True, False):
            agent = make_agent(home_root / "sample", model, SAMPLE / "docs", grounding)
            rows = [
                ask(agent, item) for item in _progress(items, f"{arm} check={'on' if grounding else 'off'}")
            ]
            # The compiled engine's precision (int8, or float32 where int8 failed its check on this
            # CPU); "transformers" without the compiled engine.
            engine = getattr(agent.generator, "compute_type", "transformers")
            agent.close()
            key = f"{arm}{'' if grounding else '_no_check'}"
            out[key] = {"summary": summarize(rows, by_id), "rows": rows, "engine": engine}
            print(key, json.dumps(out[key]["summary"]))
    return out


def run_changed(home_root: Path, arms: dict[str, str]) -> dict[str, Any]:
    items = [i for i in heldout() if any(FIGURE.search(f) for f in i.get("changed") or [])]
    docs = Path(tempfile.mkdtemp(prefix="changed-docs-")) / "docs"
    mapping = changed_docs(docs, items)
    out: dict[str, Any] = {"mapping": mapping, "n": len(items)}
    for arm, model in arms.items():
        agent = make_agent(home_root / "changed", model, docs, True)
        hits = []
        for item in _progress(items, f"{arm} changed"):
            facts = [mapping.get(f, f) for f in item["answer_contains"]]
            row = ask(agent, {**item, "answer_contains": facts})
            hits.append(row["correct"])
        agent.close()
        out[arm] = _rate(hits)
        print(arm, "changed figures given:", out[arm])
    return out


def run_mtrag(home_root: Path, arms: dict[str, str], per_label: int) -> dict[str, Any]:
    """Held-out MT-RAG tasks, each answered over its own passages (as retrieval would serve them)."""
    from agent.evaluate import balanced_subset, read_cases, run_eval
    from training.data import is_validation

    path = require_data("mtrag", "conversations.jsonl")
    contexts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        contexts[row["id"]] = [(c["doc_id"], c["text"]) for c in row.get("contexts") or []]
    cases = [c for c in read_cases(path) if is_validation(c.id, 0.35)]
    cases = balanced_subset(cases, per_label * 4)
    out: dict[str, Any] = {"tasks": len(cases)}
    for arm, model in arms.items():
        agent = make_agent(home_root / "sample", model, SAMPLE / "docs", True)
        pool = [p for c in contexts.values() for p in c]
        # The knowledge base's embedding model stays, as in production: the answer check ranks
        # the passage sentences by meaning with it (the evidence and new-word rules, the quote bar).
        agent.knowledge = ContextKnowledge(
            {c.question: contexts.get(c.id) or related(c.question, pool) for c in cases},
            embed=agent.knowledge.embed,
        )
        report = run_eval(agent, cases, progress=lambda c, arm=arm: _progress(list(c), f"{arm} mtrag"))
        agent.close()
        out[arm] = report.summary()
        print(arm, "mtrag", json.dumps(out[arm]))
    return out


def related(question: str, pool: list[tuple[str, str]], k: int = 2) -> list[tuple[str, str]]:
    """For a task without passages: the ``k`` passages of other tasks sharing most words with it,
    as a retriever over the whole corpus would serve (they do not answer it)."""
    words = set(re.findall(r"[a-z]{4,}", question.lower()))
    return sorted(pool, key=lambda p: -len(words & set(re.findall(r"[a-z]{4,}", p[1].lower()))))[:k]


def question_key(text: str) -> str:
    """A question as ``ContextKnowledge`` looks it up: lower case, letters and digits only, so the
    message as the agent reads it (``agent.written``: "whats the fee" -> "What's the fee?") finds
    the passages of the message as typed."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("'", "").replace("’", "")))


class ContextKnowledge:
    """Each question's own passages are what retrieval returns for it (MT-RAG's contexts);
    ``embed``: the knowledge base's embedding model, which the answer check ranks sentences with.
    A question is looked up as ``question_key`` reads it: the agent searches with the message as
    the help pages would write it, not as typed (sessions 44 and 45: looked up as typed, every
    MT-RAG question typed in lower case or without "?" got no passages)."""

    def __init__(self, by_question: dict[str, list[tuple[str, str]]], embed: Any = None):
        self.by_question = {question_key(q): passages for q, passages in by_question.items()}
        if embed is not None:
            self.embed = embed

    def count(self) -> int:
        return len(self.by_question)

    def search(self, query: str, *, k: int = 4, history: Any = ()) -> list[Any]:
        from knowledge.types import Hit

        found = self.by_question.get(question_key(query), [])[:k]
        return [
            Hit(doc_id=d, source=d, text=t, score=1.0, chunk_id=f"{d}#{i}", relevance=1.0)
            for i, (d, t) in enumerate(found)
        ]


def _progress(items: list[Any], what: str) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc=what, unit="q")


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a shipped manifest records (``--record``), with the command that measured them."""
    sample = {arm: v["summary"] for arm, v in result["sample"].items()}
    keep = ("answer_accuracy", "citation_accuracy", "decline_rate", "sent_with_unsupported_figure")
    labels = (
        "answerable_answer_rate",
        "partial_answer_rate",
        "unanswerable_decline_rate",
        "underspecified_clarify_rate",
    )
    mtrag = result.get("mtrag") or {}
    command = "python -m benchmarks.tuned_default --tuned agent/default_model --changed"
    out = {
        "sample_heldout": {
            arm: {k: v[k] for k in keep}
            for arm, v in sample.items()
            if arm.removesuffix("_no_check") in ("base", "tuned")  # not the --extra arms
        },
        "changed_figures": {k: v for k, v in result.get("changed", {}).items() if k in ("base", "tuned")},
        "measured_by": command + (f" --mtrag {mtrag['tasks'] // 4}" if mtrag else ""),
        "machine": result.get("machine"),
    }
    if mtrag:
        out["mtrag_heldout"] = {
            arm: {k: mtrag[arm][k] for k in labels} for arm in ("base", "tuned") if arm in mtrag
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tuned", default="agent/default_model", help="The tuned adapter (a directory).")
    parser.add_argument("--changed", action="store_true", help="Also ask over docs with changed figures.")
    parser.add_argument("--mtrag", type=int, default=0, help="MT-RAG held-out tasks per label (0: skip).")
    parser.add_argument("--home", type=Path, help="Where the arms' data homes go (default: a temp dir).")
    parser.add_argument("--name", default="tuned_default")
    parser.add_argument("--limit", type=int, help="Only the first N questions of each kind (smoke run).")
    parser.add_argument(
        "--questions",
        choices=[*QUESTION_SETS, *FOCUSED_SETS],
        default="heldout.jsonl",
        help="The sample question set (dev.jsonl: the one the answer check was tuned on; "
        "fresh.jsonl: written after it; fresh2.jsonl to fresh6.jsonl: written later by someone who never read the check; ambiguous.jsonl: questions naming no "
        "model whose answer depends on it; lists.jsonl to lists3.jsonl: questions asking for several items of a list).",
    )
    parser.add_argument("--base-only", action="store_true", help="Only the base arm (smoke run).")
    parser.add_argument(
        "--candidates",
        type=int,
        help="retrieval.candidates for every arm (an ablation; default: the config's default).",
    )
    parser.add_argument(
        "--one-per-page",
        action=argparse.BooleanOptionalAction,
        help="retrieval.one_per_page for every arm (--no-one-per-page: two chunks of a page may be shown).",
    )
    parser.add_argument(
        "--ranker",
        metavar="DIR|none",
        help="retrieval.ranker for every arm (default: the shipped ranker; none: the index's own model).",
    )
    parser.add_argument(
        "--keep-retrieved",
        type=int,
        metavar="N",
        help="retrieval.keep_retrieved for every arm (0: only the k re-ranked chunks are shown).",
    )
    parser.add_argument(
        "--ask-which",
        action=argparse.BooleanOptionalAction,
        help="grounding.ask_which for every arm (--no-ask-which: a question naming no model is answered as usual).",
    )
    parser.add_argument(
        "--ask-unnamed",
        action=argparse.BooleanOptionalAction,
        help="grounding.ask_unnamed for every arm (--no-ask-unnamed: an opening message about "
        '"this state library" is answered as usual).',
    )
    parser.add_argument(
        "--whole-lists",
        action=argparse.BooleanOptionalAction,
        help="grounding.whole_lists for every arm (--no-whole-lists: a question asking for a list is "
        "answered as any other).",
    )
    parser.add_argument(
        "--read-as-written",
        action=argparse.BooleanOptionalAction,
        help="grounding.read_as_written for every arm (default: the config's, on).",
    )
    add_typed_option(parser)
    parser.add_argument(
        "--compute-type",
        choices=["int8", "float32"],
        help="The compiled engines' first compute type for every arm (default: int8, with float32 "
        "where int8 fails the equivalence check; float32: the precision ablation).",
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="Another adapter as an arm of the same run (a retrained candidate); repeatable.",
    )
    parser.add_argument(
        "--record", action="store_true", help="Write the headline into the adapter's manifest."
    )
    parser.add_argument(
        "--only-changed",
        action="store_true",
        help="Rerun only the changed-figures part into the results file.",
    )
    parser.add_argument(
        "--only-mtrag",
        type=int,
        metavar="N",
        help="Rerun only the MT-RAG part (N tasks per label) into the results file.",
    )
    args = parser.parse_args()
    global LIMIT, QUESTIONS, CANDIDATES, ONE_PER_PAGE, ASK_WHICH, WHOLE_LISTS, KEEP_RETRIEVED, ASK_UNNAMED
    global READ_AS_WRITTEN, TYPED, RANKER
    LIMIT, QUESTIONS, CANDIDATES = args.limit, args.questions, args.candidates
    ONE_PER_PAGE, ASK_WHICH, WHOLE_LISTS = args.one_per_page, args.ask_which, args.whole_lists
    KEEP_RETRIEVED, ASK_UNNAMED = args.keep_retrieved, args.ask_unnamed
    READ_AS_WRITTEN, TYPED, RANKER = args.read_as_written, args.typed, args.ranker
    if CANDIDATES is not None and CANDIDATES < 0:
        parser.error("--candidates must be 0 or more")
    if KEEP_RETRIEVED is not None and KEEP_RETRIEVED < 0:
        parser.error("--keep-retrieved must be 0 or more")
    if args.compute_type is not None:
        from agent import compiled

        compiled.COMPUTE_TYPE = args.compute_type  # read by ensure_compiled at each conversion
    if args.only_mtrag is not None and args.only_mtrag < 1:
        parser.error("--only-mtrag must be 1 or more")
    if CANDIDATES is not None and args.name == "tuned_default":
        args.name = f"tuned_default_candidates{CANDIDATES}"  # an ablation: not the headline results
    home_root = (args.home or Path(tempfile.mkdtemp(prefix="bench-tuned-"))).resolve()
    models = bench_home(home_root / "sample", "bench-tuned-") / "models"
    (home_root / "changed").mkdir(parents=True, exist_ok=True)
    if not (home_root / "changed" / "models").exists():
        (home_root / "changed" / "models").symlink_to(models)
    arms = {"base": "base"} if args.base_only else {"base": "base", "tuned": str(Path(args.tuned).resolve())}
    for extra in args.extra:
        name, _, adapter = extra.partition("=")
        if not name or not adapter or name in arms or not Path(adapter).is_dir():
            parser.error(f"--extra {extra!r}: NAME=DIR, a new name and an adapter directory")
        arms[name] = str(Path(adapter).resolve())
    started = time.perf_counter()
    if args.only_changed or args.only_mtrag:
        path = RESULTS / f"{args.name}.json"
        result = json.loads(path.read_text())
        if args.only_changed:
            result["changed"] = run_changed(home_root, arms)
        if args.only_mtrag:
            result["mtrag"] = run_mtrag(home_root, arms, args.only_mtrag)
        write_result(args.name, result, echo=False)
        record(args, result)
        return
    result: dict[str, Any] = {
        "machine": machine(),
        "arms": arms,
        "candidates": CANDIDATES,
        "keep_retrieved": KEEP_RETRIEVED,
        "ranker": RANKER or "shipped",
        "typed": TYPED,
        "read_as_written": READ_AS_WRITTEN,
    }
    result["sample"] = run_sample(home_root, arms)
    if args.changed:
        result["changed"] = run_changed(home_root, arms)
    if args.mtrag:
        result["mtrag"] = run_mtrag(home_root, arms, args.mtrag)
    result["seconds"] = round(time.perf_counter() - started, 1)
    rows = [[key, *(v["summary"][m] for m in ("answer_accuracy", "citation_accuracy", "decline_rate"))]
            for key, v in result["sample"].items()]  # fmt: skip
    print(table(rows, ["arm", "answer acc", "citation acc", "decline rate"]))
    write_result(args.name, result, echo=False)
    record(args, result)


def shipped_ranker() -> str:
    """The shipped ranker's directory, for every arm alike ("none" where the package has none)."""
    from agent.ranker import SHIPPED_RANKER

    return str(SHIPPED_RANKER) if SHIPPED_RANKER.is_dir() else "none"


def record(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if (
        args.record
        and not args.limit
        and not args.base_only
        and args.candidates is None
        and args.one_per_page is None
        and args.keep_retrieved is None
        and args.ranker is None
        and args.compute_type is None
        and args.questions == "heldout.jsonl"
    ):
        from training.ship import record_metrics

        record_metrics(Path(args.tuned) / "manifest.json", headline(result))


if __name__ == "__main__":
    main()
