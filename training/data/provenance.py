"""Stale provenance: logged answers whose passages quote text the knowledge index no longer holds.

The rule (docs/training.md, "Provenance"):

* **A logged passage is stale** when the index no longer holds its text: its document (the
  index's ``source``) is gone (``"removed"``), or the passage's chunk id is gone and no chunk of
  the document, as the runtime would serve it (``agent.guardrails.clean_passage``), has the same
  text hash (``"changed"``). A passage with no source is never stale.
* **A stale answer gives no row of any kind** (SFT, preference, KTO) unless a reviewer gave
  feedback on that turn (an approval, a correction, labels, mark for training) at or after the
  time it was first found stale; the log store keeps that time (``agent.store.provenance``). A
  re-reviewed answer comes back with the passages it was shown: the reviewer vouched for it.
* **Every scan is complete**: it covers every conversation ``from_store`` reads and replaces the
  store's flags, so ``data compile`` and the console's Provenance page always agree.
* The index as it is now is an ``IndexState`` (``KnowledgeBase.stored_chunks``); an empty index is
  never compared with (nothing was ingested here, so there is nothing to judge against).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.guardrails import clean_passage
from agent.prompt import Passage
from agent.store.provenance import ProvenanceFlag
from training.data.passages import passage_hash
from training.data.readers import from_store, is_review
from training.data.records import SourceConversation, question_and_history

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.store import LogStore
    from agent.types import Feedback
    from knowledge.types import Chunk

# The label the console's "re-reviewed" button puts on a reviewer's feedback (any review counts).
RE_REVIEWED = "re-reviewed"


@dataclass(frozen=True)
class IndexState:
    """What the knowledge index holds now: its chunk ids, and the text hashes of each document's
    chunks as served, by document source."""

    chunk_ids: frozenset[str]
    hashes: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, chunks: Iterable[Chunk]) -> IndexState:
        ids: set[str] = set()
        hashes: dict[str, set[str]] = defaultdict(set)
        for chunk in chunks:
            ids.add(chunk.chunk_id)
            hashes[chunk.source].add(passage_hash(clean_passage(chunk.text)))
        return cls(frozenset(ids), {source: frozenset(h) for source, h in hashes.items()})

    def __bool__(self) -> bool:
        return bool(self.chunk_ids)


def current_index(config: AgentConfig) -> IndexState | None:
    """The configured knowledge index as it is now; None when this data home has none (nothing
    was ingested here, so nothing can be judged stale)."""
    from agent.knowledge import knowledge_config
    from knowledge import KnowledgeBase

    if not config.retrieval.chroma_url and not config.index_dir.is_dir():
        return None
    kb = KnowledgeBase(knowledge_config(config))
    try:
        return IndexState.of(kb.stored_chunks())
    finally:
        kb.close()


def stale_reason(passage: Passage, index: IndexState) -> str | None:
    """``"removed"``, ``"changed"`` or None (current, or not from the index): see the rule."""
    if not passage.source or (passage.chunk_id and passage.chunk_id in index.chunk_ids):
        return None
    current = index.hashes.get(passage.source)
    if current is None:
        return "removed"
    return None if passage_hash(passage.text) in current else "changed"


def stale_flags(conv: SourceConversation, index: IndexState) -> list[ProvenanceFlag]:
    """One flag per (logged answer, document) whose passage is stale. Only answers with feedback
    can give rows from the store (a person's answers can too, but carry no passages), so only they
    are flagged; a conversation that is not from the log store (no turn ids) gives none."""
    flags: dict[tuple[int, str], ProvenanceFlag] = {}
    for position, passages in sorted(conv.passages.items()):
        if position >= len(conv.turn_ids) or position not in conv.feedback:
            continue
        for passage in passages:
            reason = stale_reason(passage, index)
            if reason is not None and (position, passage.source) not in flags:
                flags[position, passage.source] = ProvenanceFlag(
                    turn_id=conv.turn_ids[position],
                    conversation_id=conv.id,
                    source=passage.source,
                    doc_id=passage.doc_id,
                    reason=reason,
                    title=passage.title,
                )
    return list(flags.values())


def found_at(flags: Iterable[ProvenanceFlag]) -> dict[str, datetime]:
    """For each flagged turn, when its latest flag was first found: a re-review must come after
    every document it quotes changed."""
    latest: dict[str, datetime] = {}
    for flag in flags:
        assert flag.detected_at is not None, "flags come back from the store with their time"
        latest[flag.turn_id] = max(flag.detected_at, latest.get(flag.turn_id, flag.detected_at))
    return latest


def rereviewed(reviewed_at: datetime | None, found: datetime) -> bool:
    """Whether a reviewer's latest feedback on an answer (None: none) came after it was found stale."""
    return reviewed_at is not None and reviewed_at >= found


@dataclass(frozen=True)
class StaleCheck:
    """What one scan found: every flag (with its time) and the turns it leaves out of training."""

    flags: tuple[ProvenanceFlag, ...] = ()
    left_out: frozenset[str] = frozenset()  # turn ids
    rereviewed: frozenset[str] = frozenset()  # flagged turns a reviewer reviewed since

    def documents(self) -> list[dict[str, Any]]:
        """The documents behind the left-out answers: source, doc id, reason, how many answers."""
        turns: dict[str, set[str]] = defaultdict(set)
        first: dict[str, ProvenanceFlag] = {}
        for flag in self.flags:
            if flag.turn_id in self.left_out:
                turns[flag.source].add(flag.turn_id)
                first.setdefault(flag.source, flag)
        return [
            {"source": s, "doc_id": first[s].doc_id, "reason": first[s].reason, "answers": len(turns[s])}
            for s in sorted(first)
        ]


def leave_out_stale(
    conversations: Sequence[SourceConversation], index: IndexState, store: LogStore
) -> tuple[list[SourceConversation], StaleCheck]:
    """``conversations`` with stale, not re-reviewed answers ``left_out``, and what was found;
    the store's flags become this scan's (``conversations`` must be all that ``from_store`` reads)."""
    if not index:
        return list(conversations), StaleCheck()
    flags = store.sync_provenance_flags(f for conv in conversations for f in stale_flags(conv, index))
    since = found_at(flags)
    out, left_out, back = [], set(), set()
    for conv in conversations:
        stale = set()
        for position, turn_id in enumerate(conv.turn_ids):
            if turn_id not in since:
                continue
            if rereviewed(conv.reviewed_at.get(position), since[turn_id]):
                back.add(turn_id)
            else:
                stale.add(position)
                left_out.add(turn_id)
        out.append(dataclasses.replace(conv, left_out=frozenset(stale)) if stale else conv)
    return out, StaleCheck(tuple(flags), frozenset(left_out), frozenset(back))


def check_store(store: LogStore, index: IndexState) -> StaleCheck:
    """Scan every conversation ``data compile`` reads from the store against ``index`` and
    record what is stale (the console's "Check now"); nothing is compiled."""
    _, found = leave_out_stale(list(from_store(store)), index, store)
    return found


def re_review(store: LogStore, turn_id: str, reviewer: str) -> Feedback:
    """Record that ``reviewer`` re-reviewed the answer and keeps it as it is (a correction on the
    review page re-reviews it too)."""
    return store.add_feedback(turn_id, reviewer=reviewer, labels=[RE_REVIEWED])


@dataclass(frozen=True)
class FlaggedAnswer:
    """A flagged logged answer as the console lists it."""

    turn_id: str
    conversation_id: str
    question: str
    answer: str
    documents: tuple[ProvenanceFlag, ...]
    found_at: datetime
    reviewed_at: datetime | None  # the reviewer's latest feedback on it

    @property
    def rereviewed(self) -> bool:
        return rereviewed(self.reviewed_at, self.found_at)


def flagged_answers(store: LogStore) -> list[FlaggedAnswer]:
    """The stored flags, one entry per answer (oldest finding first), with the customer's
    question and whether a reviewer has re-reviewed it since."""
    stored = store.provenance_flags()
    by_turn: dict[str, list[ProvenanceFlag]] = defaultdict(list)
    for flag in stored:
        by_turn[flag.turn_id].append(flag)
    since = found_at(stored)
    answers = []
    for turn_id, flags in by_turn.items():
        turns = store.turns(flags[0].conversation_id)
        position = next((i for i, t in enumerate(turns) if t.id == turn_id), None)
        if position is None:  # the turn went away since the scan (erased): nothing to review
            continue
        asked = question_and_history([(t.role, t.text) for t in turns], position)
        reviews = [f.created_at for f in store.feedback_for_turn(turn_id) if is_review(f) and f.created_at]
        answers.append(
            FlaggedAnswer(
                turn_id,
                flags[0].conversation_id,
                asked[0] if asked else "",
                turns[position].text,
                tuple(flags),
                since[turn_id],
                max(reviews) if reviews else None,
            )
        )
    return sorted(answers, key=lambda a: (a.found_at, a.turn_id))
