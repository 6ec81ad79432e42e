"""The dataset compiler: past conversations and reviewed logs -> TRL training files.

``compile_dataset`` reads conversation files (JSON Lines with ``turns``, HF ``messages``, CSV with
one row per turn, mtrag-style rated responses, or rows already in TRL format) and the reviewed
conversations of the log store, and builds three kinds of rows in TRL's conversational formats:

* SFT (prompt-completion): ``{"prompt": [messages], "completion": [assistant message],
  "conversation_id", "turn_index"}``, one per agent answer;
* preference: ``{"prompt", "chosen", "rejected", "conversation_id"}``: a reviewer's correction over
  the original reply, or the higher-rated of two alternative responses (ties dropped);
* unpaired (KTO): ``{"prompt", "completion", "label", "conversation_id"}``: thumbs up/down, or,
  without thumbs, a rating >= 4 (true) / <= 2 (false).

Invariants:

* **Same prompt as serving.** Every prompt is ``agent.prompt.build_messages(question, passages,
  persona, history)`` with the history the runtime passes (all earlier customer/agent/human turns),
  so the model is tuned on exactly the prompt it is served with.
* **PII never reaches a row.** Every text (turns, passages, corrections, alternative responses,
  conversation ids) is redacted with ``training.pii`` before rows are built. The one exception is
  a value the company itself publishes in ``docs`` (its support line or address): it is kept, and
  listed in the manifest, unless ``keep_public=False``.
* **No leak between splits.** A conversation's side is a stable hash of its (original) id, so all
  its rows land on one side, in every run, whatever the other inputs.
* **Nothing is skipped silently.** Malformed input raises ``DataError`` naming ``path:line``; with
  ``skip_invalid`` the line is skipped and reported in the manifest. Dropped duplicates, ties,
  negative answers left out of SFT and unresolved doc ids are counted there too.

Passages for an answer, first that applies: the passages logged with that turn (what the model was
actually shown), else the conversation's gold documents (mtrag ``contexts``, or ``gold_doc_ids``
looked up in ``docs``), else the ``retriever``, else none. Gold documents apply to *every* answer of
the conversation, not only the last: they are the conversation's topic, and at serving time the
agent always sees the passages retrieved for that topic, relevant to the current turn or not. A
long gold document is cut to its window that best matches the turn (``focus_passage``), as serving
shows retrieved chunks, and gold or retrieved passages are cleaned like the runtime cleans them.

Which answers are SFT targets: in imported files every agent answer is a reference answer (they are
the support team's history), except those with negative feedback and no correction. From the log
store, answers are model outputs, so only trusted ones are used: human turns, corrected turns (the
correction is the target), turns marked for training and positively rated ones. A correction
always replaces the reply as the SFT target; the history of later turns keeps what was said. An
answer's question is the customer's last message before it; agent turns in between (a hand-off
note before a human's answer) are left out of that prompt.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Persona
from agent.errors import DataError, InputError
from agent.guardrails import clean_passage
from agent.prompt import Message, Passage, build_messages
from training.pii import find_pii, replace_spans

if TYPE_CHECKING:
    from agent.store import LogStore

Retriever = Callable[[str, Sequence[tuple[str, str]]], list[Passage]]
Row = dict[str, Any]

ROLE_ALIASES = {
    "customer": "customer",
    "user": "customer",
    "agent": "agent",
    "assistant": "agent",
    "human": "human",
    "system": "system",
}
ANSWER_ROLES = ("agent", "human")
RESPONSE_KEYS = ("gold_response", "reference_response", "response")
CSV_TEXT_COLUMNS = ("text", "content", "message")
CSV_ORDER_COLUMNS = ("turn", "seq")
SPLIT_FILES = ("sft_train", "sft_val", "pref_train", "pref_val", "kto_train", "kto_val")
FORMATS = ("turns", "messages", "csv", "rated_responses", "sft", "preference", "kto")


# ---------------------------------------------------------------------------------------------
# Source records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnFeedback:
    """Feedback on one answer, merged over every piece of feedback it received."""

    rating: float | None = None
    thumbs: int | None = None
    correction: str | None = None
    labels: tuple[str, ...] = ()
    mark_for_training: bool = False

    @property
    def negative(self) -> bool:
        return self.thumbs == -1 or (self.rating is not None and self.rating <= 2)

    @property
    def positive(self) -> bool:
        return self.thumbs == 1 or (self.rating is not None and self.rating >= 4)


@dataclass(frozen=True)
class Alternative:
    """One of several rated responses to the same prompt."""

    text: str
    rating: float
    source: str = ""


@dataclass(frozen=True)
class SourceConversation:
    """A conversation as read from any input, before redaction and row building.

    ``passages``, ``feedback`` and ``alternatives`` are keyed by the index in ``turns`` of the
    answer they belong to; an alternative may sit at ``len(turns)`` (responses to a conversation
    that ends on the customer).
    """

    id: str
    turns: tuple[tuple[str, str], ...]
    origin: str  # "path:line" or "store:<id>"
    passages: dict[int, tuple[Passage, ...]] = field(default_factory=dict)
    context: tuple[Passage, ...] = ()  # conversation-level passages (mtrag contexts)
    gold_doc_ids: tuple[str, ...] = ()
    feedback: dict[int, TurnFeedback] = field(default_factory=dict)
    alternatives: dict[int, tuple[Alternative, ...]] = field(default_factory=dict)
    trusted_answers: bool = True  # imported history: every answer is a reference answer
    public_id: str | None = None  # the id written to rows (set by redaction)

    def answer_positions(self) -> list[int]:
        positions = {i for i, (role, _) in enumerate(self.turns) if role in ANSWER_ROLES}
        return sorted(positions | set(self.alternatives))


@dataclass(frozen=True)
class PassThroughRow:
    """A row read from a file already in TRL format (sft, preference or kto)."""

    kind: str
    row: Row
    split_key: str
    origin: str


# ---------------------------------------------------------------------------------------------
# Reading input files
# ---------------------------------------------------------------------------------------------


def detect_format(path: Path, *, lenient: bool = False) -> str:
    """One of ``FORMATS``, from the extension and the first row; DataError if unrecognised.
    ``lenient``: decide from the first *recognisable* row (the bad ones are reported on reading)."""
    if path.suffix.lower() == ".csv":
        return "csv"
    for line_no, line in _lines(path):
        try:
            return _row_format(_parse_json(line, path, line_no), path, line_no)
        except DataError:
            if not lenient:
                raise
    raise DataError(
        "the file has no recognisable rows" if lenient else "the file has no rows", path=str(path)
    )


def _row_format(row: dict[str, Any], path: Path, line: int) -> str:
    keys = set(row)
    shapes = [
        ({"turns", "responses"}, "rated_responses"),
        ({"turns"}, "turns"),
        ({"messages"}, "messages"),
        ({"prompt", "chosen", "rejected"}, "preference"),
        ({"prompt", "completion", "label"}, "kto"),
        ({"prompt", "completion"}, "sft"),
    ]
    for required, fmt in shapes:
        if required <= keys:
            return fmt
    raise DataError(
        f"unrecognised row (keys: {', '.join(sorted(keys))}); expected `turns`, `messages`, "
        "`responses` or TRL rows (prompt/completion, prompt/chosen/rejected)",
        path=str(path),
        line=line,
    )


def read_source(
    path: Path, fmt: str | None = None, skipped: list[str] | None = None
) -> Iterator[SourceConversation | PassThroughRow]:
    """Records of one input file. A malformed line raises DataError (path:line), or, when
    ``skipped`` is a list, is appended to it as ``"path:line: reason"`` and skipped."""
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        yield from _read_csv(path, skipped)
        return
    parse = _ROW_PARSERS[fmt]
    for line_no, line in _lines(path):
        try:
            yield parse(_parse_json(line, path, line_no), path, line_no)
        except DataError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    yield line_no, line
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text: {exc}", path=str(path)) from exc
    except OSError as exc:
        raise DataError(f"cannot read: {exc}", path=str(path)) from exc


def _parse_json(line: str, path: Path, line_no: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg} (column {exc.colno})"
        if line_no == 1 and line.lstrip().startswith("["):
            message += "; expected JSON Lines (one object per line), not a JSON array"
        raise DataError(message, path=str(path), line=line_no) from exc
    if not isinstance(row, dict):
        raise DataError("each line must be a JSON object", path=str(path), line=line_no)
    return row


def _role(value: Any, path: Path, line: int) -> str:
    role = ROLE_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if role is None:
        raise DataError(
            f"unknown role {value!r}; expected customer, agent, human or system (or user/assistant)",
            path=str(path),
            line=line,
        )
    return role


def _text(value: Any, what: str, path: Path, line: int) -> str:
    if isinstance(value, list):  # HF content parts: [{"type": "text", "text": ...}]
        value = " ".join(p.get("text", "") for p in value if isinstance(p, dict))
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{what} has empty or missing text", path=str(path), line=line)
    return value.strip()


def _content_id(row: dict[str, Any], key: str) -> str:
    """A stable id for rows without one: the hash of their content, so reruns agree."""
    digest = hashlib.sha256(json.dumps(row.get(key), sort_keys=True).encode()).hexdigest()
    return f"sha-{digest[:16]}"


def _thumbs(value: Any, path: Path, line: int) -> int | None:
    table = {1: 1, -1: -1, "up": 1, "down": -1, "1": 1, "-1": -1}
    if value is None:
        return None
    if isinstance(value, bool):
        return 1 if value else -1
    if isinstance(value, (int, str)) and value in table:
        return table[value]
    raise DataError(f"thumbs must be 1/-1 or up/down, got {value!r}", path=str(path), line=line)


def _rating(value: Any, path: Path, line: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 5:
        raise DataError(f"rating must be a number from 1 to 5, got {value!r}", path=str(path), line=line)
    return float(value)


def _feedback(data: dict[str, Any], path: Path, line: int) -> TurnFeedback | None:
    """Feedback fields of a row or turn object, or None when it carries none."""
    correction = data.get("correction")
    if correction is not None:
        correction = _text(correction, "correction", path, line)
    labels = data.get("labels") or ()
    if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
        raise DataError("labels must be a list of strings", path=str(path), line=line)
    feedback = TurnFeedback(
        rating=_rating(data.get("rating"), path, line),
        thumbs=_thumbs(data.get("thumbs"), path, line),
        correction=correction,
        labels=tuple(labels),
        mark_for_training=bool(data.get("mark_for_training")),
    )
    return feedback if feedback != TurnFeedback() else None


def _passage_list(items: Any, what: str, path: Path, line: int) -> tuple[Passage, ...]:
    if not isinstance(items, list):
        raise DataError(f"{what} must be a list of passages", path=str(path), line=line)
    passages = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise DataError(f"each of {what} needs a `text`", path=str(path), line=line)
        doc_id = str(item.get("doc_id") or item.get("id") or "")
        passages.append(
            Passage(
                doc_id=doc_id,
                source=str(item.get("source") or ""),
                text=item["text"],
                title=item.get("title"),
            )
        )
    return tuple(passages)


def _turns_row(row: dict[str, Any], path: Path, line: int) -> SourceConversation:
    """A JSON Lines row with ``turns`` (dstc11, mtrag, the sample, log exports)."""
    raw_turns = row.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise DataError("missing or empty `turns` (a list of {role, text})", path=str(path), line=line)
    turns, passages, feedback = _parse_turns(raw_turns, path, line)
    # A conversation that ends on the customer is answered by its reference response.
    response = next((row[k] for k in RESPONSE_KEYS if row.get(k) is not None), None)
    if turns[-1][0] == "customer" and response is not None:
        turns.append(("agent", _text(response, "the reference response", path, line)))
    # Conversation-level feedback belongs to the last answer.
    answers = [i for i, (role, _) in enumerate(turns) if role in ANSWER_ROLES]
    row_feedback = _feedback(row, path, line)
    if row_feedback is not None:
        if not answers:
            raise DataError("feedback but no agent turn to attach it to", path=str(path), line=line)
        feedback[answers[-1]] = row_feedback
    gold = row.get("gold_doc_ids") or ()
    if isinstance(gold, str) or not all(isinstance(x, (str, int)) for x in gold):
        raise DataError("gold_doc_ids must be a list of ids", path=str(path), line=line)
    return SourceConversation(
        id=str(row.get("id") or row.get("conversation_id") or _content_id(row, "turns")),
        turns=tuple(turns),
        origin=f"{path}:{line}",
        passages=passages,
        context=_passage_list(row.get("contexts") or [], "contexts", path, line),
        gold_doc_ids=tuple(str(x) for x in gold),
        feedback=feedback,
    )


def _parse_turns(
    raw_turns: list[Any], path: Path, line: int
) -> tuple[list[tuple[str, str]], dict[int, tuple[Passage, ...]], dict[int, TurnFeedback]]:
    """(role, text) turns, plus any passages and feedback a turn object carries itself."""
    turns: list[tuple[str, str]] = []
    passages: dict[int, tuple[Passage, ...]] = {}
    feedback: dict[int, TurnFeedback] = {}
    for index, turn in enumerate(raw_turns):
        what = f"turn {index + 1}"
        if not isinstance(turn, dict):
            raise DataError(f"{what} is not an object", path=str(path), line=line)
        role = _role(turn.get("role"), path, line)
        turns.append((role, _text(turn.get("text", turn.get("content")), what, path, line)))
        logged = turn.get("passages", (turn.get("metadata") or {}).get("passages"))
        if logged is not None:
            passages[index] = _passage_list(logged, f"{what} passages", path, line)
        if (turn_feedback := _feedback(turn, path, line)) is not None:
            feedback[index] = turn_feedback
    return turns, passages, feedback


def _messages_row(row: dict[str, Any], path: Path, line: int) -> SourceConversation:
    """A Hugging Face chat row: ``messages`` of user/assistant/system. The file's own system
    messages are dropped: the persona's system prompt replaces them, as at serving time."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError("missing or empty `messages`", path=str(path), line=line)
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise DataError(f"message {index + 1} is not an object", path=str(path), line=line)
        role = _role(message.get("role"), path, line)
        if role != "system":
            turns.append((role, _text(message.get("content"), f"message {index + 1}", path, line)))
    if not turns:
        raise DataError("no user or assistant messages", path=str(path), line=line)
    base = _turns_row({"turns": [{"role": r, "text": t} for r, t in turns]}, path, line)
    conversation_id = str(row.get("id") or row.get("conversation_id") or _content_id(row, "messages"))
    feedback = _feedback(row, path, line)
    answers = [i for i, (role, _) in enumerate(turns) if role in ANSWER_ROLES]
    return dataclasses.replace(
        base,
        id=conversation_id,
        feedback={answers[-1]: feedback} if feedback and answers else {},
    )


def response_score(ratings: dict[str, list[float | None]]) -> float | None:
    """Mean over annotators of each annotator's mean over the criteria (None values ignored)."""
    annotators = max((len(v) for v in ratings.values() if isinstance(v, list)), default=0)
    means = []
    for a in range(annotators):
        column = [v[a] for v in ratings.values() if isinstance(v, list) and a < len(v)]
        values = [float(x) for x in column if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if values:
            means.append(sum(values) / len(values))
    return sum(means) / len(means) if means else None


def _rated_row(row: dict[str, Any], path: Path, line: int) -> SourceConversation:
    """An mtrag-style task: ``turns`` ending on the customer, ``contexts``, rated ``responses``."""
    base = _turns_row({k: v for k, v in row.items() if k != "responses"}, path, line)
    responses = row.get("responses")
    if not isinstance(responses, list) or not responses:
        raise DataError("missing or empty `responses`", path=str(path), line=line)
    alternatives = []
    for index, response in enumerate(responses):
        if not isinstance(response, dict) or not isinstance(response.get("ratings"), dict):
            raise DataError(f"response {index + 1} needs `text` and `ratings`", path=str(path), line=line)
        score = response_score(response["ratings"])
        if score is None:
            raise DataError(f"response {index + 1} has no ratings", path=str(path), line=line)
        text = _text(response.get("text"), f"response {index + 1}", path, line)
        alternatives.append(Alternative(text, score, str(response.get("model") or "")))
    return dataclasses.replace(base, alternatives={len(base.turns): tuple(alternatives)})


def _conversational(value: Any, role: str, what: str, path: Path, line: int) -> list[Message]:
    """A TRL field as chat messages; a plain string becomes one message of ``role``."""
    if isinstance(value, str) and value.strip():
        return [{"role": role, "content": value}]
    ok = (
        isinstance(value, list)
        and value
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value
        )
    )
    if not ok:
        message = f"`{what}` must be a string or a list of {{role, content}}"
        raise DataError(message, path=str(path), line=line)
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _pass_through(kind: str) -> Callable[[dict[str, Any], Path, int], PassThroughRow]:
    """A parser for rows already in TRL's format; only the columns of that format are kept."""
    answer_fields = ("chosen", "rejected") if kind == "preference" else ("completion",)

    def parse(row: dict[str, Any], path: Path, line: int) -> PassThroughRow:
        out: Row = {"prompt": _conversational(row.get("prompt"), "user", "prompt", path, line)}
        for name in answer_fields:
            out[name] = _conversational(row.get(name), "assistant", name, path, line)
        if kind == "kto":
            if not isinstance(row.get("label"), bool):
                raise DataError("`label` must be true or false", path=str(path), line=line)
            out["label"] = row["label"]
        key = str(row.get("conversation_id") or _content_id(out, "prompt"))
        out["conversation_id"] = key
        if kind == "sft":
            out["turn_index"] = row.get("turn_index")
        return PassThroughRow(kind, out, key, f"{path}:{line}")

    return parse


_ROW_PARSERS: dict[str, Callable[[dict[str, Any], Path, int], Any]] = {
    "turns": _turns_row,
    "messages": _messages_row,
    "rated_responses": _rated_row,
    "sft": _pass_through("sft"),
    "preference": _pass_through("preference"),
    "kto": _pass_through("kto"),
}


def _read_csv(path: Path, skipped: list[str] | None) -> Iterator[SourceConversation]:
    """CSV with one row per turn: ``conversation_id``, ``role``, ``text`` (or ``content`` /
    ``message``), optionally ``turn``/``seq`` to order turns; otherwise file order."""
    groups: dict[str, list[tuple[float, int, str, str]]] = defaultdict(list)
    first_line: dict[str, int] = {}
    for line, key, order, role, text in _csv_turns(path, skipped):
        groups[key].append((order, len(groups[key]), role, text))  # file order breaks ties
        first_line.setdefault(key, line)
    for key, rows in groups.items():
        turns = tuple((role, text) for _, _, role, text in sorted(rows))
        yield SourceConversation(id=key, turns=turns, origin=f"{path}:{first_line[key]}")


def _csv_turns(path: Path, skipped: list[str] | None) -> Iterator[tuple[int, str, float, str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            reader.fieldnames = [h.strip().lower() for h in reader.fieldnames or []]
            text_col, order_col = _csv_columns(reader.fieldnames, path)
            for record in reader:
                try:
                    yield reader.line_num, *_csv_turn(record, text_col, order_col, path, reader.line_num)
                except DataError as exc:
                    if skipped is None:
                        raise
                    skipped.append(str(exc))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"unreadable CSV: {exc}", path=str(path), line=reader.line_num + 1) from exc


def _csv_columns(header: Sequence[str], path: Path) -> tuple[str, str | None]:
    text_col = next((c for c in CSV_TEXT_COLUMNS if c in header), None)
    if "conversation_id" not in header or "role" not in header or text_col is None:
        message = f"CSV header must have conversation_id, role and text (or content/message); got {header}"
        raise DataError(message, path=str(path), line=1)
    return text_col, next((c for c in CSV_ORDER_COLUMNS if c in header), None)


def _csv_turn(
    record: dict[str, Any], text_col: str, order_col: str | None, path: Path, line: int
) -> tuple[str, float, str, str]:
    key = (record.get("conversation_id") or "").strip()
    if not key:
        raise DataError("empty conversation_id", path=str(path), line=line)
    order = 0.0
    if order_col is not None:
        try:
            order = float(record.get(order_col) or "")
        except ValueError:
            raise DataError(f"`{order_col}` must be a number", path=str(path), line=line) from None
    role = _role(record.get("role"), path, line)
    return key, order, role, _text(record.get(text_col), "the turn", path, line)


# ---------------------------------------------------------------------------------------------
# The log store
# ---------------------------------------------------------------------------------------------


def merge_feedback(items: Iterable[Any]) -> TurnFeedback:
    """Several pieces of feedback on one turn (``agent.types.Feedback``, oldest first) as one:
    the latest value of each field wins, labels are unioned, mark-for-training if any says so."""
    merged = TurnFeedback()
    for item in items:
        merged = TurnFeedback(
            rating=float(item.rating) if item.rating is not None else merged.rating,
            thumbs=item.thumbs if item.thumbs is not None else merged.thumbs,
            correction=item.correction or merged.correction,
            labels=tuple(dict.fromkeys((*merged.labels, *item.labels))),
            mark_for_training=merged.mark_for_training or bool(item.mark_for_training),
        )
    return merged


def _logged(turn: Any) -> tuple[Passage, ...] | None:
    """The passages the runtime logged with a turn (``metadata["passages"]``), if any."""
    logged = (getattr(turn, "metadata", None) or {}).get("passages")
    if logged is None:
        return None
    return tuple(
        Passage(
            doc_id=str(p.get("doc_id") or ""),
            source=str(p.get("source") or ""),
            text=str(p.get("text") or ""),
            title=p.get("title"),
        )
        for p in logged
    )


def from_store(store: LogStore, since: Any = None) -> Iterator[SourceConversation]:
    """Reviewed conversations of the log store, with the passages each answer was shown."""
    for conversation, feedback in store.reviewed_conversations(since=since):
        index = {turn.id: i for i, turn in enumerate(conversation.turns)}
        by_turn: dict[int, list[Any]] = defaultdict(list)
        for item in feedback:
            if item.turn_id in index:
                by_turn[index[item.turn_id]].append(item)
        logged = {i: _logged(turn) for i, turn in enumerate(conversation.turns)}
        passages = {i: shown for i, shown in logged.items() if shown is not None}
        yield SourceConversation(
            id=conversation.id,
            turns=tuple((turn.role, turn.text) for turn in conversation.turns),
            origin=f"store:{conversation.id}",
            passages=passages,
            feedback={i: merge_feedback(items) for i, items in by_turn.items()},
            trusted_answers=False,
        )


# ---------------------------------------------------------------------------------------------
# Pure transforms: redaction, passages, rows, dedupe, split
# ---------------------------------------------------------------------------------------------


class Redactor:
    """``training.pii.redact`` that counts what it replaced, by kind (for the manifest).

    ``public`` values are kept: contact details the company publishes in its own documents (the
    support line, its email address). They are not personal data, and replacing them would teach
    the model to answer "call [PHONE]" when the passage in front of it holds the real number.
    """

    def __init__(self, public: Iterable[str] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()
        self.public = frozenset(_public_key(v) for v in public)
        self._cache: dict[str, tuple[str, list[str], list[str]]] = {}

    def __call__(self, text: str) -> str:
        """``text`` redacted; counted per occurrence, computed once per distinct text."""
        if text not in self._cache:
            spans = find_pii(text)
            keep = [s for s in spans if _public_key(s.value) in self.public]
            spans = [s for s in spans if s not in keep]
            redacted = replace_spans(text, spans) if spans else text
            self._cache[text] = (redacted, [s.kind for s in spans], [s.value for s in keep])
        redacted, kinds, kept = self._cache[text]
        self.counts.update(kinds)
        self.kept.update(kept)
        return redacted

    def passage(self, passage: Passage) -> Passage:
        title = passage.title and self(passage.title)
        return dataclasses.replace(passage, text=self(passage.text), title=title)

    @staticmethod
    def public_id(conversation_id: str) -> str:
        """The id written to rows: itself, or its hash when it holds PII (an email as id)."""
        if not find_pii(conversation_id):
            return conversation_id
        return f"redacted-{hashlib.sha256(conversation_id.encode()).hexdigest()[:12]}"

    def conversation(self, conv: SourceConversation) -> SourceConversation:
        """Every text of the conversation redacted, and its public id set."""
        return dataclasses.replace(
            conv,
            public_id=self.public_id(conv.id),
            turns=tuple((role, self(text)) for role, text in conv.turns),
            passages={i: tuple(map(self.passage, ps)) for i, ps in conv.passages.items()},
            context=tuple(map(self.passage, conv.context)),
            feedback={
                i: dataclasses.replace(f, correction=f.correction and self(f.correction))
                for i, f in conv.feedback.items()
            },
            alternatives={
                i: tuple(dataclasses.replace(a, text=self(a.text)) for a in alts)
                for i, alts in conv.alternatives.items()
            },
        )

    def row(self, item: PassThroughRow) -> PassThroughRow:
        def clean(value: Any) -> Any:
            if isinstance(value, list):
                return [{**m, "content": self(m["content"])} for m in value]
            return value

        row = {k: clean(v) for k, v in item.row.items()}
        return dataclasses.replace(
            item, row={**row, "conversation_id": self.public_id(row["conversation_id"])}
        )


def _public_key(value: str) -> str:
    return " ".join(value.lower().split())


def public_values(docs: dict[str, Passage]) -> set[str]:
    """PII-shaped values in the company's own documents (see ``Redactor``)."""
    return {span.value for doc in docs.values() for span in find_pii(doc.text)}


def load_docs(path: Path) -> dict[str, Passage]:
    """Documents by id: JSON Lines with ``doc_id`` (or ``id``) and ``text`` (``title`` or
    ``entity_name`` as the label), or a folder of Markdown/text files (id = file stem)."""
    if path.is_dir():
        return _markdown_docs(path)
    docs = {}
    for line_no, line in _lines(path):
        row = _parse_json(line, path, line_no)
        doc_id, text = row.get("doc_id", row.get("id")), row.get("text")
        if doc_id is None or not isinstance(text, str):
            raise DataError("a document needs `doc_id` (or `id`) and `text`", path=str(path), line=line_no)
        title = row.get("title") or row.get("entity_name")
        docs[str(doc_id)] = Passage(
            doc_id=str(doc_id),
            source=str(row.get("source") or path.name),
            text=text,
            title=str(title) if title else None,
        )
    return docs


def _markdown_docs(folder: Path) -> dict[str, Passage]:
    docs = {}
    for file in sorted([*folder.rglob("*.md"), *folder.rglob("*.txt")]):
        content = file.read_text(encoding="utf-8")
        title = next((ln[2:].strip() for ln in content.splitlines() if ln.startswith("# ")), None)
        docs[file.stem] = Passage(doc_id=file.stem, source=file.name, text=content, title=title)
    return docs


def question_and_history(
    turns: Sequence[tuple[str, str]], position: int
) -> tuple[str, list[tuple[str, str]]] | None:
    """The customer message an answer at ``position`` replies to, and the turns before it
    (as the runtime passes them: system notes excluded). None if no customer spoke first."""
    for q in range(min(position, len(turns)) - 1, -1, -1):
        if turns[q][0] == "customer":
            return turns[q][1], [t for t in turns[:q] if t[0] != "system"]
    return None


PASSAGE_CHARS = 900  # agent.prompt.format_passages cuts each passage to this many characters
_WORDS = re.compile(r"[^\W_]{3,}")


def focus_passage(passage: Passage, query: str, max_chars: int = PASSAGE_CHARS) -> Passage:
    """A long document cut to the window of paragraphs that shares most words with ``query``.

    At serving time the model sees retrieved *chunks*; a whole gold document would be cut after
    ``max_chars`` by the prompt builder, often before the part that answers the question.
    """
    if len(" ".join(passage.text.split())) <= max_chars:
        return passage
    pieces = [p for p in re.split(r"\n\s*\n|(?<=[.!?])\s+(?=[A-Z#*-])", passage.text) if p.strip()]
    windows, current = [], ""
    for piece in pieces:
        if current and len(current) + len(piece) + 1 > max_chars:
            windows.append(current)
            current = ""
        current = f"{current}\n{piece}" if current else piece
    windows.append(current)
    wanted = {w.lower() for w in _WORDS.findall(query)}
    best = max(windows, key=lambda w: len(wanted & {x.lower() for x in _WORDS.findall(w)}))
    return dataclasses.replace(passage, text=best.strip())


# The same gold document is shown for every answer of a conversation, and cleaning is regex-heavy.
_clean_passage = functools.lru_cache(maxsize=65_536)(clean_passage)


def as_served(passages: Iterable[Passage]) -> tuple[Passage, ...]:
    """Passages as the runtime shows them: injection-like sentences removed, empty ones dropped.
    (Logged passages were already cleaned when they were served.)"""
    cleaned = (dataclasses.replace(p, text=_clean_passage(p.text)) for p in passages)
    return tuple(p for p in cleaned if p.text)


def resolve_passages(
    conv: SourceConversation,
    docs: dict[str, Passage] | None,
    retriever: Retriever | None,
    stats: Counter[str],
) -> SourceConversation:
    """``conv`` with passages for every answer position (see the module docstring for the order)."""
    gold = list(conv.context)
    if not gold and conv.gold_doc_ids and docs is not None:
        gold = [docs[d] for d in conv.gold_doc_ids if d in docs]
        stats["missing_doc_ids"] += sum(d not in docs for d in conv.gold_doc_ids)
    resolved = {}
    for position in conv.answer_positions():
        if position in conv.passages:
            resolved[position], source = conv.passages[position], "logged"
        elif gold:
            query = " ".join(text for _, text in conv.turns[max(0, position - 1) : position + 1])
            resolved[position], source = as_served(focus_passage(p, query) for p in gold), "gold"
        elif retriever is not None and (qh := question_and_history(conv.turns, position)) is not None:
            resolved[position], source = as_served(retriever(*qh)), "retrieved"
        else:
            resolved[position], source = (), "none"
        stats[source] += 1
    return dataclasses.replace(conv, passages=resolved)


@dataclass(frozen=True)
class PromptOptions:
    persona: Persona = field(default_factory=Persona)
    budget_tokens: int | None = None
    count_tokens: Callable[[str], int] | None = None


def prompt_for(conv: SourceConversation, position: int, options: PromptOptions) -> list[Message] | None:
    """The serving prompt for the answer at ``position``, or None without a customer question."""
    qh = question_and_history(conv.turns, position)
    if qh is None:
        return None
    question, history = qh
    return build_messages(
        question,
        conv.passages.get(position, ()),
        options.persona,
        history,
        budget_tokens=options.budget_tokens,
        count_tokens=options.count_tokens,
    )


def _assistant(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


def sft_target(conv: SourceConversation, position: int) -> str | None:
    """The answer to learn at ``position``, or None when it is not a trusted answer."""
    if position >= len(conv.turns) or conv.turns[position][0] not in ANSWER_ROLES:
        return None
    role, text = conv.turns[position]
    feedback = conv.feedback.get(position, TurnFeedback())
    if feedback.correction:
        return feedback.correction
    if feedback.mark_for_training:
        return text
    if feedback.negative:
        return None
    if conv.trusted_answers or role == "human" or feedback.positive:
        return text
    return None


def sft_rows(conv: SourceConversation, options: PromptOptions, turns: str = "all") -> list[Row]:
    """TRL conversational prompt-completion rows, one per trusted answer (``turns="last"``:
    only the conversation's last answer)."""
    positions = [p for p in conv.answer_positions() if p < len(conv.turns)]
    if turns == "last":
        positions = positions[-1:]
    rows = []
    for position in positions:
        target, prompt = sft_target(conv, position), prompt_for(conv, position, options)
        if target is not None and prompt is not None:
            rows.append(
                {
                    "prompt": prompt,
                    "completion": _assistant(target),
                    "conversation_id": conv.public_id or conv.id,
                    "turn_index": position,
                }
            )
    return rows


def preference_pairs(conv: SourceConversation, position: int) -> list[tuple[str, str]]:
    """(chosen, rejected) texts at one position: correction over the reply; then every pair of
    alternatives with different ratings, higher over lower (ties dropped)."""
    pairs = []
    feedback = conv.feedback.get(position)
    if feedback and feedback.correction and position < len(conv.turns):
        original = conv.turns[position][1]
        if feedback.correction.strip() != original.strip():
            pairs.append((feedback.correction, original))
    alternatives = conv.alternatives.get(position, ())
    for i, a in enumerate(alternatives):
        for b in alternatives[i + 1 :]:
            if round(a.rating, 6) != round(b.rating, 6) and a.text.strip() != b.text.strip():
                pairs.append((a.text, b.text) if a.rating > b.rating else (b.text, a.text))
    return pairs


def count_ties(conv: SourceConversation) -> int:
    return sum(
        round(a.rating, 6) == round(b.rating, 6)
        for alts in conv.alternatives.values()
        for i, a in enumerate(alts)
        for b in alts[i + 1 :]
    )


def preference_rows(conv: SourceConversation, options: PromptOptions) -> list[Row]:
    rows = []
    for position in conv.answer_positions():
        prompt = prompt_for(conv, position, options)
        for chosen, rejected in preference_pairs(conv, position) if prompt else ():
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": _assistant(chosen),
                    "rejected": _assistant(rejected),
                    "conversation_id": conv.public_id or conv.id,
                }
            )
    return rows


def kto_label(feedback: TurnFeedback) -> bool | None:
    """Thumbs decide; without thumbs, a rating >= 4 is desirable and <= 2 undesirable (3: none)."""
    if feedback.thumbs is not None:
        return feedback.thumbs == 1
    if feedback.rating is not None and feedback.rating != 3:
        return feedback.rating >= 4
    return None


def kto_rows(conv: SourceConversation, options: PromptOptions) -> list[Row]:
    rows = []
    for position, feedback in sorted(conv.feedback.items()):
        label = kto_label(feedback)
        prompt = prompt_for(conv, position, options) if label is not None else None
        if prompt is not None and position < len(conv.turns):
            rows.append(
                {
                    "prompt": prompt,
                    "completion": _assistant(conv.turns[position][1]),
                    "label": label,
                    "conversation_id": conv.public_id or conv.id,
                }
            )
    return rows


def dedupe(rows: Iterable[tuple[str, Row]], keys: Sequence[str]) -> tuple[list[tuple[str, Row]], int]:
    """(split key, row) pairs with identical ``keys`` fields kept once (the first), and the
    number dropped."""
    seen: set[str] = set()
    kept, dropped = [], 0
    for split_key, row in rows:
        fingerprint = json.dumps([row[k] for k in keys], sort_keys=True, ensure_ascii=False)
        if fingerprint in seen:
            dropped += 1
        else:
            seen.add(fingerprint)
            kept.append((split_key, row))
    return kept, dropped


def is_validation(conversation_id: str, fraction: float, salt: str | None = None) -> bool:
    """Stable split: the same id lands on the same side in every run, on every machine.

    ``salt`` draws a different split of the same size (for cross-validation, or to check that a
    result is not an accident of one split): the hash is taken of ``"{salt}:{id}"``."""
    key = f"{salt}:{conversation_id}" if salt else conversation_id
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 10_000
    return bucket < round(fraction * 10_000)


# ---------------------------------------------------------------------------------------------
# The compiled dataset
# ---------------------------------------------------------------------------------------------


@dataclass
class CompiledDataset:
    sft_train: list[Row] = field(default_factory=list)
    sft_val: list[Row] = field(default_factory=list)
    pref_train: list[Row] = field(default_factory=list)
    pref_val: list[Row] = field(default_factory=list)
    kto_train: list[Row] = field(default_factory=list)
    kto_val: list[Row] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def splits(self) -> dict[str, list[Row]]:
        return {name: getattr(self, name) for name in SPLIT_FILES}

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write ``<split>.jsonl`` for the six splits and ``manifest.json``; returns their paths."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {name: out_dir / f"{name}.jsonl" for name in SPLIT_FILES}
        for name, rows in self.splits().items():
            write_rows(paths[name], rows)
        paths["manifest"] = out_dir / "manifest.json"
        manifest = {**self.manifest, "files": {k: p.name for k, p in paths.items()}}
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        paths["manifest"].write_text(text, encoding="utf-8")
        return paths


def write_rows(path: Path, rows: Iterable[Row]) -> None:
    # Written to a temporary name then renamed, so a reader never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def load_rows(path: Path) -> list[Row]:
    """Rows of a JSON Lines file written by ``CompiledDataset.write`` (DataError names path:line)."""
    return [_parse_json(line, path, line_no) for line_no, line in _lines(Path(path))]


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


def compile_dataset(
    sources: Sequence[Path],
    *,
    store: LogStore | None = None,
    docs: Path | None = None,
    retriever: Retriever | None = None,
    persona: Persona | None = None,
    val_fraction: float = 0.2,
    turns: str = "all",
    skip_invalid: bool = False,
    progress: bool = False,
    budget_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    keep_public: bool = True,
    split_salt: str | None = None,
) -> CompiledDataset:
    """Read, redact, ground, build, dedupe and split: see the module docstring.

    ``split_salt``: draw a different train/validation split of the same size (``is_validation``);
    still by conversation id, so no conversation lands on both sides.

    ``budget_tokens``/``count_tokens`` window long histories exactly as the runtime does (pass the
    served model's context budget and token counter); without them the full history is kept.
    ``keep_public``: leave contact details that ``docs`` publishes unredacted (see ``Redactor``).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if turns not in ("all", "last"):
        raise InputError(f"turns must be 'all' or 'last', got {turns!r}")
    if not sources and store is None:
        raise InputError("nothing to compile: give input files or a log store")
    skipped: list[str] | None = [] if skip_invalid else None
    stats: Counter[str] = Counter()
    options = PromptOptions(persona or Persona(), budget_tokens, count_tokens)

    # 1. Read every input (a folder means the conversation files in it), then the log store.
    files = _expand(sources)
    formats = {str(path): detect_format(path, lenient=skip_invalid) for path in files}
    records: list[SourceConversation | PassThroughRow] = []
    for path in _progress(files, progress, "reading"):
        records.extend(read_source(path, formats[str(path)], skipped))
    if store is not None:
        records.extend(from_store(store))
    conversations = [r for r in records if isinstance(r, SourceConversation)]
    pass_through = [r for r in records if isinstance(r, PassThroughRow)]

    # 2. The same conversation id in two places is allowed (its rows share a side) but reported.
    id_counts = Counter(c.id for c in conversations)
    duplicate_ids = sorted(cid for cid, n in id_counts.items() if n > 1)

    # 3. Redact PII before anything else touches the text (the company's published contacts stay).
    all_docs = load_docs(docs) if docs is not None else None
    redactor = Redactor(public_values(all_docs) if all_docs and keep_public else ())
    conversations = [redactor.conversation(c) for c in conversations]
    pass_through = [redactor.row(r) for r in pass_through]

    # 4. Ground every answer in passages (logged, gold, retrieved); the documents are redacted too.
    doc_index = None
    if all_docs is not None:  # only the documents some conversation cites are redacted and used
        cited = {doc_id for conv in conversations for doc_id in conv.gold_doc_ids}
        doc_index = {k: redactor.passage(p) for k, p in all_docs.items() if k in cited}
    safe_retriever = _redacting(retriever, redactor) if retriever is not None else None
    conversations = [
        resolve_passages(c, doc_index, safe_retriever, stats)
        for c in _progress(conversations, progress, "grounding")
    ]

    # 5. Build rows, keyed by the original conversation id for the split.
    built: dict[str, list[tuple[str, Row]]] = {"sft": [], "pref": [], "kto": []}
    for conv in _progress(conversations, progress, "building rows"):
        built["sft"] += [(conv.id, row) for row in sft_rows(conv, options, turns)]
        built["pref"] += [(conv.id, row) for row in preference_rows(conv, options)]
        built["kto"] += [(conv.id, row) for row in kto_rows(conv, options)]
        stats["ties_dropped"] += count_ties(conv)
        stats["answers_not_used_for_sft"] += _unused_answers(conv, turns)
    kinds = {"sft": "sft", "preference": "pref", "kto": "kto"}
    for item in pass_through:
        built[kinds[item.kind]].append((item.split_key, item.row))

    # 6. Dedupe identical rows (first kept).
    keys = {
        "sft": ("prompt", "completion"),
        "pref": ("prompt", "chosen", "rejected"),
        "kto": ("prompt", "completion", "label"),
    }
    duplicates = {}
    for kind in built:
        built[kind], duplicates[kind] = dedupe(built[kind], keys[kind])

    # 7. Split by conversation id.
    dataset = CompiledDataset()
    for kind, rows in built.items():
        for split_key, row in rows:
            side = "val" if is_validation(split_key, val_fraction, split_salt) else "train"
            getattr(dataset, f"{kind}_{side}").append(row)

    # 8. The manifest: what went in, what came out, and everything left out.
    dataset.manifest = {
        "sources": [*formats, *(["log store"] if store is not None else [])],
        "formats": formats,
        "conversations": len(conversations),
        "pass_through_rows": len(pass_through),
        "val_fraction": val_fraction,
        "split_salt": split_salt,
        "turns": turns,
        "counts": {kind: _counts(dataset, kind) for kind in ("sft", "pref", "kto")},
        "redactions": dict(sorted(redactor.counts.items())),
        "public_values_kept": dict(sorted(redactor.kept.items())),
        "passages": {k: stats[k] for k in ("logged", "gold", "retrieved", "none")},
        "missing_doc_ids": stats["missing_doc_ids"],
        "duplicates_dropped": duplicates,
        "duplicate_conversation_ids": duplicate_ids,
        "preference_ties_dropped": stats["ties_dropped"],
        "answers_not_used_for_sft": stats["answers_not_used_for_sft"],
        "skipped": skipped or [],
    }
    return dataset


def _counts(dataset: CompiledDataset, kind: str) -> dict[str, int]:
    return {side: len(getattr(dataset, f"{kind}_{side}")) for side in ("train", "val")}


def _expand(sources: Sequence[Path]) -> list[Path]:
    files = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jsonl", ".json", ".csv"))
            if not found:
                raise DataError("the folder has no .jsonl or .csv files", path=str(source))
            files += found
        elif source.is_file():
            files.append(source)
        else:
            raise DataError("no such file or folder", path=str(source))
    return files


def _redacting(retriever: Retriever, redactor: Redactor) -> Retriever:
    def retrieve(question: str, history: Sequence[tuple[str, str]]) -> list[Passage]:
        return [redactor.passage(p) for p in retriever(question, history)]

    return retrieve


def _unused_answers(conv: SourceConversation, turns: str) -> int:
    """Answers in the conversation that gave no SFT row (negative, untrusted or no question)."""
    positions = [p for p in conv.answer_positions() if p < len(conv.turns)]
    if turns == "last":
        positions = positions[-1:]
    return sum(sft_target(conv, p) is None or question_and_history(conv.turns, p) is None for p in positions)


def _progress(items: Sequence[Any], enabled: bool, what: str) -> Iterable[Any]:
    if not enabled:
        return items
    import sys

    from tqdm import tqdm

    return tqdm(items, desc=what, file=sys.stderr, leave=False, disable=None)
