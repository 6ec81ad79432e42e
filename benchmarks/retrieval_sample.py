"""Does the agent show the model a passage that holds the answer? Retrieval on the sample's questions.

For each answerable question of the sample's dev and held-out sets (follow-ups with their
earlier turns), the ``k`` passages the agent shows the model are checked for the question's key
facts (``answer_contains``, as ``tuned_default`` scores an answer): ``recall`` is the share of
questions whose shown passages hold every key fact. Three retrieval settings side by side, one
run, one index:

- ``shipped``: the defaults (ten candidate chunks re-ranked by their best answering sentence,
  scored by the shipped ranker, each page once);
- ``index_model``: as shipped, with the sentences scored by the index's own embedding model
  instead of the ranker (``ranker: none``, the default before session 46);
- ``keep_retrieved``: as shipped, with the retriever's own best two chunks shown beside the
  re-ranked ones where the re-rank left them out (``keep_retrieved: 2``: up to four passages);
- ``retriever``: the retriever's own top ``k``, one chunk a page (``candidates: 0``);
- ``two_per_page``: the re-rank with two chunks of a page allowed (``one_per_page: false``);
- ``openers_read``: the re-rank as shipped, but reading the sentences a page says about itself
  ("This page explains every color and icon"), as it did before session 38
  (``agent.grounding.about_the_page``).

It then splits the stored answers of a ``tuned_default`` results file that missed a key fact
into *reading* misses (every key fact was in the passages the model was shown) and *retrieval*
misses (it was not), for each arm with the check off and on: where the next gain has to come
from.

    python -m benchmarks.retrieval_sample            # about 20 s on 2 CPU cores, no model runs
    python -m benchmarks.retrieval_sample --questions dev.jsonl heldout.jsonl fresh.jsonl \
        fresh2.jsonl fresh3.jsonl fresh4.jsonl --name retrieval_sample_all

Writes benchmarks/results/retrieval_sample.json (``--name``: another name).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import QUESTION_SETS, RESULTS, SAMPLE, machine, table, write_result
from benchmarks.tuned_default import contains_all

SETTINGS = {
    "shipped": {},
    "index_model": {"ranker": "none"},
    "keep_retrieved": {"keep_retrieved": 2},
    "retriever": {"candidates": 0},
    "two_per_page": {"one_per_page": False},
    "openers_read": {"read_page_openers": True},
}


@contextlib.contextmanager
def page_openers(read: bool) -> Iterator[None]:
    """With ``read``, the sentence ranking reads what a page says about itself, as before session 38."""
    from agent import grounding

    shipped = grounding._ABOUT_PAGE
    if read:
        grounding._ABOUT_PAGE = re.compile(r"(?!)")  # matches nothing
    try:
        yield
    finally:
        grounding._ABOUT_PAGE = shipped


def questions(name: str) -> list[dict[str, Any]]:
    """The answerable questions (and follow-ups) of one of the sample's question sets."""
    items = [json.loads(line) for line in (SAMPLE / name).read_text().splitlines() if line]
    return [i for i in items if i["kind"] != "unanswerable" and i["answer_contains"]]


class Sample:
    """The sample's documents in a fresh data home, retrieved as the agent retrieves (its config's
    retrieval settings and its sentence ranking); no model is loaded."""

    def __init__(self, home: Path) -> None:
        from agent import grounding
        from agent.config import load_config
        from agent.knowledge import open_knowledge

        self.config = load_config(env={"SUPPORTLOOP_HOME": str(home)})
        self.knowledge = open_knowledge(self.config)
        if self.knowledge.count() == 0:
            self.knowledge.ingest([SAMPLE / "docs"])
        self.embed = grounding.CachedEmbed(self.knowledge.embed)
        from agent.ranker import SHIPPED_RANKER, load_ranker

        # The shipped default's ranker (``agent.ranker``), where the package has one.
        shipped = SHIPPED_RANKER.is_dir()
        self.ranker = grounding.CachedEmbed(load_ranker(str(SHIPPED_RANKER))) if shipped else self.embed

    def shown(self, item: dict[str, Any], setting: dict[str, Any]) -> list[str]:
        """The passages the agent shows the model for ``item`` under ``setting``."""
        from agent.knowledge import ranked_search

        retrieval = self.config.retrieval
        with page_openers(setting.get("read_page_openers", False)):
            hits = ranked_search(
                self.knowledge,
                item["question"],
                [(t["role"], t["text"]) for t in item.get("history", [])],
                k=retrieval.k,
                candidates=setting.get("candidates", retrieval.candidates),
                embed=self.embed if setting.get("ranker") == "none" else self.ranker,
                one_per_page=setting.get("one_per_page", retrieval.one_per_page),
                keep_retrieved=setting.get("keep_retrieved", retrieval.keep_retrieved),
            )
        return [h.text for h in hits]


def recall(sample: Sample, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Per setting: the share of ``items`` whose shown passages hold every key fact, and which."""
    out: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        shown = {i["id"]: sample.shown(i, setting) for i in items}
        held = {i["id"]: contains_all(" ".join(shown[i["id"]]), i["answer_contains"]) for i in items}
        out[name] = {
            "recall": round(sum(held.values()) / len(held), 3),
            "held": sum(held.values()),
            "n": len(held),
            "passages_shown": round(sum(map(len, shown.values())) / len(shown), 2),
            "missed": sorted(k for k, v in held.items() if not v),
        }
    return out


def misses(results: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm of a stored ``tuned_default`` run: its wrong answers split into reading misses (every
    key fact was in the passages shown) and retrieval misses."""
    facts = {i["id"]: i["answer_contains"] for i in items}
    out: dict[str, Any] = {}
    for arm, run in results["sample"].items():
        rows = [r for r in run["rows"] if r["id"] in facts]
        wrong = [r for r in rows if not r["correct"]]
        reading = [r for r in wrong if contains_all(" ".join(r["passages"]), facts[r["id"]])]
        out[arm] = {
            "n": len(rows),
            "right": len(rows) - len(wrong),
            "reading_misses": len(reading),
            "retrieval_misses": len(wrong) - len(reading),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="tuned_default", help="A tuned_default results file (name).")
    parser.add_argument("--name", default="retrieval_sample")
    parser.add_argument(
        "--questions",
        nargs="+",
        choices=QUESTION_SETS,
        default=QUESTION_SETS[:2],
        help="The sample's question sets to read.",
    )
    args = parser.parse_args()
    stored_path = RESULTS / f"{args.results}.json"
    if not stored_path.is_file():
        raise SystemExit(f"no results file {stored_path}")
    stored = json.loads(stored_path.read_text())
    home = Path(tempfile.mkdtemp(prefix="retrieval-sample-"))
    sample = Sample(home)
    result: dict[str, Any] = {"machine": machine(), "k": sample.config.retrieval.k, "settings": SETTINGS}
    rows = []
    for name in args.questions:
        items = questions(name)
        part = recall(sample, items)
        result[name.split(".")[0]] = part
        base = part["retriever"]["recall"]
        for setting, figures in part.items():
            ratio = f"{figures['recall'] / base:.2f}x" if base else "-"
            rows.append(
                [
                    name,
                    setting,
                    f"{figures['held']}/{figures['n']}",
                    figures["recall"],
                    ratio,
                    figures["passages_shown"],
                ]
            )
    print(table(rows, ["questions", "setting", "held", "recall", "vs retriever", "passages shown"]))
    result["misses"] = {"results": args.results, **misses(stored, questions("heldout.jsonl"))}
    arms = [[arm, m["right"], m["reading_misses"], m["retrieval_misses"]]
            for arm, m in result["misses"].items() if arm != "results"]  # fmt: skip
    print(table(arms, ["arm (held-out)", "right", "reading misses", "retrieval misses"]))
    shutil.rmtree(home, ignore_errors=True)
    write_result(args.name, result, echo=False)


if __name__ == "__main__":
    main()
