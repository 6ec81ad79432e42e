"""Replay the answer check on stored answers: a change to the check, measured in seconds.

A ``tuned_default`` results file keeps, for every arm and question, the model's answer with the
check off and the passages it was shown. Generation is greedy, so with the check on the model
writes the same text. This replays the check the code has *now* over those answers (the sentence
gate, the evidence ranking, the extractive fallback, the quote bar) and compares the outcome with
what the stored run sent:

    python -m benchmarks.replay_check --results round3_dev [--questions dev.jsonl]
    python -m benchmarks.replay_check --results fresh_questions --questions fresh.jsonl
    python -m benchmarks.replay_check --results tuned_default --questions heldout.jsonl \
        --set match_question=false      # the same answers with one grounding setting changed

``right``: answerable questions with every key fact; ``declined``: unanswerable questions declined
or handed off, as ``tuned_default`` reads a reply. ``agree`` counts the answers replayed to the same
text as stored. Right after a benchmark run it
is every answer; after a change to the check it counts the answers the change left alone, and
``right`` then shows what the change did to answer accuracy. No model runs: only the knowledge
base's embedding model, which ranks the passage sentences.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import tempfile
from functools import lru_cache
from typing import Any

from benchmarks.common import FOCUSED_SETS, QUESTION_SETS, RESULTS, SAMPLE, machine, table, write_result
from benchmarks.tuned_default import add_typed_option, contains_all, typed_item


def embedding_model() -> Any:
    """The knowledge base's embedding model, as the agent ranks sentences with it (cached)."""
    from agent import grounding
    from agent.config import load_config
    from agent.knowledge import open_knowledge

    home = tempfile.mkdtemp(prefix="replay-check-")
    atexit.register(shutil.rmtree, home, True)  # an empty home, for the embedding model alone
    return grounding.CachedEmbed(open_knowledge(load_config(env={"SUPPORTLOOP_HOME": home})).embed)


def grounding_settings(pairs: list[str]) -> Any:
    """The default ``GroundingSettings`` with ``KEY=VALUE`` overrides, each value read as YAML
    (``match_question=false``, ``min_quote_score=0.6``). A bad key or value is a clear error."""
    import dataclasses

    import yaml

    from agent.config import ConfigError, GroundingSettings

    known = {f.name for f in dataclasses.fields(GroundingSettings)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise SystemExit(
                f"--set takes KEY=VALUE with KEY one of {', '.join(sorted(known))}, not {pair!r}"
            )
        changes[key] = yaml.safe_load(value)
    try:
        return GroundingSettings(**changes)
    except (ConfigError, TypeError) as error:
        raise SystemExit(f"--set: {error}") from None


def sample_words() -> frozenset[str]:
    """Every word of the sample's documents, which the stored runs searched."""
    from knowledge.base import words_of

    return words_of(path.read_text(encoding="utf-8") for path in sorted((SAMPLE / "docs").glob("*.md")))


@lru_cache(maxsize=1)
def sample_cased() -> dict[str, str]:
    """The names the sample's documents write (``KnowledgeBase.cased``), as the agent reads them."""
    from knowledge.base import cased_words

    return cased_words(path.read_text(encoding="utf-8") for path in sorted((SAMPLE / "docs").glob("*.md")))


def replay(
    row: dict[str, Any], item: dict[str, Any], embed: Any, settings: Any = None, vocabulary: Any = None
) -> tuple[str, str]:
    """(text sent, action) for a stored check-off answer, through the check the agent runs with
    ``settings`` (the defaults when None: ``agent.grounding.turn_gate`` and ``fallback_answer``).
    The stored rows keep the passages' text, not their titles. ``vocabulary``: every word of the
    documents the run searched (``sample_words``), as the agent's knowledge base gives it."""
    from agent import grounding, referents, written
    from agent.config import GroundingSettings, Persona
    from agent.prompt import Passage

    settings, persona = settings or GroundingSettings(), Persona()
    if not row["passages"]:
        return row["answer"], "none"
    passages = [Passage(doc_id="", source="", text=text) for text in row["passages"]]

    # The customer's messages are read as the pages would write them (``agent.written``), as the agent does.
    def read(text: str) -> str:
        return written.as_written(text, sample_cased()) if settings.read_as_written else text

    history = [
        (t["role"], read(t["text"]) if t["role"] == "customer" else t["text"])
        for t in item.get("history", [])
    ]
    # The customer's answer to the question back is checked with the first question, as the agent does.
    # "a new one" is read as what the customer named before (``referents.one_meant``), as the agent does.
    question = referents.one_meant(read(item["question"]), history, vocabulary)
    question = referents.asked_as(question, history) if settings.ask_unnamed else question
    gate = grounding.turn_gate(question, history, passages, settings, persona, embed, vocabulary)
    kept = row["answer"][: gate.feed(row["answer"], final=True)].strip()
    if gate.held_decline and gate.quote:
        return gate.quote, grounding.EXTRACTIVE
    if kept:
        return kept, grounding.SENT
    return grounding.fallback_answer(
        question,
        row["passages"],
        settings,
        persona.company,
        ranked=gate.ranked,
        embed=embed,
        gate=gate,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="round3_dev", help="A tuned_default results file (name).")
    parser.add_argument(
        "--questions",
        choices=[*QUESTION_SETS, *FOCUSED_SETS],
        default="dev.jsonl",
    )
    parser.add_argument("--name", default="replay_check")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Change one grounding setting for the replay (repeatable): match_question=false.",
    )
    add_typed_option(parser)  # the stored answers stay the model's answers to the messages as written
    args = parser.parse_args()
    settings = grounding_settings(args.set)
    stored = json.loads((RESULTS / f"{args.results}.json").read_text(encoding="utf-8"))
    lines = (SAMPLE / args.questions).read_text(encoding="utf-8").splitlines()
    items = {item["id"]: typed_item(item, args.typed) for item in map(json.loads, lines)}
    arms = [arm for arm in stored["sample"] if not arm.endswith("_no_check")]
    from agent.evaluate import behaviour

    embed, vocabulary = embedding_model(), sample_words()
    result: dict[str, Any] = {
        "machine": machine(),
        "results": args.results,
        "questions": args.questions,
        "set": args.set,
        "typed": args.typed,
    }
    rows = []
    for arm in arms:
        sent = {r["id"]: r for r in stored["sample"][arm]["rows"]}
        counts = {"right_stored": 0, "right_now": 0, "agree": 0, "declined_stored": 0, "declined_now": 0}
        for row in stored["sample"][f"{arm}_no_check"]["rows"]:
            item = items[row["id"]]
            text, _ = replay(row, item, embed, settings, vocabulary)
            facts = item["answer_contains"]
            counts["right_stored"] += bool(facts) and contains_all(sent[row["id"]]["answer"], facts)
            counts["right_now"] += bool(facts) and contains_all(text, facts)
            counts["agree"] += text == sent[row["id"]]["answer"].strip()
            if item["kind"] == "unanswerable":  # declined or handed off, as the benchmark reads a reply
                counts["declined_stored"] += sent[row["id"]]["behaviour"] == "decline"
                counts["declined_now"] += behaviour(text, escalated=False, refused=False) == "decline"
        result[arm] = {
            **counts,
            "n": len(sent),
            "answerable": sum(bool(items[i]["answer_contains"]) for i in sent),
        }
        rows.append([arm, *counts.values(), len(sent)])
    print(
        table(
            rows,
            ["arm", "right (stored)", "right (now)", "agree", "declined (stored)", "declined (now)", "n"],
        )
    )
    write_result(args.name, result, echo=False)


if __name__ == "__main__":
    main()
