"""A correction acts at once: reviewers' verified answers, served for the same and closely similar
questions before retrieval and generation run.

Invariants:

* **Precision first.** A customer question gets a verified answer only when it is the same
  question (case and spacing folded), or when all of these hold: the cosine similarity of the two
  questions' embeddings is at least ``MIN_SIMILARITY``; both name the same figures and codes
  (``E4``, ``300``), the same names (``Turbo``, ``HomeKit``) and the same contrast words (on/off,
  colours, standard/express); and the new question is not an *edit* of the verified one (mostly
  the same words with one swapped: "website" for "store"). The threshold and the rules are
  calibrated on ``agent/sample/verified_pairs.jsonl`` (paraphrases and near-misses written from
  the sample company's questions; ``docs/verified-answers.md``): precision 1.0, recall 0.59.
* **Verbatim.** The reply is the reviewer's text, unchanged, cited as "verified by the support
  team"; no model runs. The answer check counts it as its own source:
  ``grounding = {"passed": true, "action": "sent", "checked": false, "source": "verified"}``.
* **Live across processes.** Every lookup reads the live answers from the log store (one small
  query), so a correction saved in the console serves at once in the server; embeddings are
  computed by the serving process with its own model and cached by answer id.
* A correction is recorded in one place, ``record_correction``, for the console, the CLI and the
  API: the feedback row (which ``data compile`` turns into SFT and DPO rows) and the verified
  answer keyed by the customer message the corrected turn answered.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.errors import InputError
from agent.types import Citation, Feedback, Turn, VerifiedAnswer

if TYPE_CHECKING:
    import numpy as np

    from agent.store import LogStore

MIN_SIMILARITY = 0.80
SOURCE = "verified by the support team"
DOC_PREFIX = "verified:"
# Words that flip an answer while leaving a question's embedding almost unchanged.
CONTRAST = frozenset(
    [
        "off",
        "enable",
        "disable",
        "red",
        "green",
        "blue",
        "orange",
        "yellow",
        "white",
        "purple",
        "amber",
        "standard",
        "express",
    ]
)
_ON = re.compile(r"\b(?:switch|turn)(?:es|ed|ing|s)?\s+on\b|\bon/off\b")
_FIGURE = re.compile(r"[a-z]*\d+")
_WORD = re.compile(r"[A-Za-z][\w&-]*")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "i",
        "my",
        "me",
        "you",
        "your",
        "we",
        "our",
        "is",
        "are",
        "am",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "to",
        "of",
        "for",
        "in",
        "on",
        "at",
        "with",
        "by",
        "from",
        "and",
        "or",
        "it",
        "its",
        "this",
        "that",
        "what",
        "whats",
        "what's",
        "how",
        "when",
        "where",
        "which",
        "who",
        "why",
        "if",
        "be",
        "have",
        "has",
        "i'm",
        "there",
        "any",
        "ever",
        "so",
        "up",
        "get",
    ]
)
EDIT_OVERLAP = 0.6  # content-word overlap from which two questions are one edited into the other

Embed = Callable[[list[str]], "np.ndarray"]


# ------------------------------------------------------------------------------- matching


def key_terms(question: str) -> tuple[frozenset[str], frozenset[str]]:
    """(figures, codes and contrast words; names) of a question, lower-cased, plurals folded."""
    low = question.lower()
    fixed = set(_FIGURE.findall(low)) | {w for w in re.findall(r"[a-z]+", low) if w in CONTRAST}
    if _ON.search(low):
        fixed.add("on")
    names = set()
    for m in _WORD.finditer(question):
        word = m.group(0)
        sentence_start = m.start() == 0 or re.search(r"[.?!]\s*$", question[: m.start()])
        if word[0].isupper() and not sentence_start and word not in ("I", "OK"):
            names.add(word.lower().rstrip("s"))
    return frozenset(fixed), frozenset(names)


def _content(question: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z0-9']+", question.lower()) if w not in _STOP}


def is_edit(a: str, b: str) -> bool:
    """Whether one question is the other with words swapped (a near-miss, not a rewording)."""
    ca, cb = _content(a), _content(b)
    overlap = len(ca & cb) / max(len(ca | cb), 1)
    return overlap >= EDIT_OVERLAP and bool(ca - cb) and bool(cb - ca)


def compatible(a: str, b: str) -> bool:
    """The lexical half of a match: same key terms and not an edit of each other."""
    return key_terms(a) == key_terms(b) and not is_edit(a, b)


def same_question(a: str, b: str) -> bool:
    from agent.store.verified import question_key

    return question_key(a) == question_key(b)


@dataclass(frozen=True)
class Match:
    answer: VerifiedAnswer
    similarity: float  # 1.0 for the same question


class VerifiedIndex:
    """Looks up the live verified answer for a customer question (thread-safe)."""

    def __init__(self, store: LogStore, embed: Embed | None, min_similarity: float = MIN_SIMILARITY):
        """``embed``: texts -> L2-normalised vectors (``KnowledgeBase.embed``); without one only
        the same question matches."""
        self.store = store
        self.embed = embed
        self.min_similarity = min_similarity
        self._vectors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def match(self, question: str) -> Match | None:
        live = self.store.verified_answers()
        if not live:
            return None
        for answer in reversed(live):  # newest first
            if same_question(answer.question, question):
                return Match(answer, 1.0)
        candidates = [a for a in live if compatible(a.question, question)]
        if not candidates or self.embed is None:
            return None
        import numpy as np

        vectors = self._vectors_for(candidates)
        query = np.asarray(self.embed([question]), dtype=np.float32).reshape(-1)
        scores = vectors @ query
        best = int(np.argmax(scores))
        if float(scores[best]) < self.min_similarity:
            return None
        return Match(candidates[best], float(scores[best]))

    def _vectors_for(self, answers: Sequence[VerifiedAnswer]) -> np.ndarray:
        import numpy as np

        assert self.embed is not None
        with self._lock:
            missing = [a for a in answers if a.id not in self._vectors]
            if missing:
                new = np.asarray(self.embed([a.question for a in missing]), dtype=np.float32)
                for answer, vector in zip(missing, new.reshape(len(missing), -1), strict=True):
                    self._vectors[str(answer.id)] = vector
            return np.stack([self._vectors[str(a.id)] for a in answers])


# ------------------------------------------------------------------------------- serving


def citation(match: Match) -> Citation:
    return Citation(
        doc_id=f"{DOC_PREFIX}{match.answer.id}",
        source=SOURCE,
        snippet=match.answer.question,
        index=1,
        score=round(match.similarity, 4),
    )


def grounding() -> dict[str, Any]:
    """The answer check's verdict on a verified answer: its own source, nothing to check."""
    from agent.grounding import Grounding

    return {**Grounding(passed=True, checked=False).to_dict(), "source": "verified"}


# ------------------------------------------------------------------------------- recording


def question_for(turns: Sequence[Turn], turn_id: str) -> str:
    """The customer message the agent turn ``turn_id`` answered (the last one before it)."""
    position = next((i for i, t in enumerate(turns) if t.id == turn_id), None)
    if position is None or turns[position].role != "agent":
        raise InputError(
            f"turn {turn_id!r} is not an agent turn; corrections are given on the agent's answers"
        )
    for turn in reversed(turns[:position]):
        if turn.role == "customer":
            return turn.text
    raise InputError(f"turn {turn_id!r} answers no customer message; nothing to key a verified answer on")


def record_correction(
    store: LogStore,
    turn_id: str,
    text: str,
    *,
    reviewer: str | None = None,
    **feedback: Any,
) -> tuple[Feedback, VerifiedAnswer]:
    """A reviewer's corrected answer to an agent turn: the feedback row (training) and the
    verified answer (served at once). Everything is checked before anything is written."""
    from agent import validation

    text = validation.check_text(text, "the correction", validation.CORRECTION_MAX_CHARS).strip()
    if reviewer is not None:
        validation.check_name(reviewer, "reviewer")
    turn = store.get_turn(turn_id)
    question = question_for(store.turns(turn.conversation_id or ""), turn_id)
    saved = store.add_feedback(turn_id, correction=text, reviewer=reviewer, **feedback)
    verified = store.add_verified_answer(
        question, text, turn_id=turn_id, feedback_id=saved.id, reviewer=reviewer
    )
    return saved, verified
