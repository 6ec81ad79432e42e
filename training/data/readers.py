"""Readers: input files, the log store and documents -> the compiler's records.

Formats (``FORMATS``, told apart by ``detect_format`` from the extension and the first row):
JSON Lines with ``turns`` (dstc11, mtrag, the sample, log exports), Hugging Face ``messages``,
CSV with one row per turn, mtrag-style rated ``responses``, and rows already in TRL format
(``sft``, ``preference``, ``kto``), passed through with only their format's columns.

Invariant: nothing is skipped silently. A malformed line raises ``DataError`` naming
``path:line``; with a ``skipped`` list the line is appended to it (the manifest lists it) instead.
CSV is read strictly: a quote never closed, text after a closing quote or more fields than the
header is such an error, not a silent merge of the rest of the file. No input, however shaped
(wrong types, nesting deeper than the parser's stack, bytes that are not UTF-8), raises anything
but ``DataError`` (a property test in ``tests/hardening`` checks it).
The log store yields only reviewed conversations; its answers are model outputs, so they are not
trusted as references (``trusted_answers=False``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import DataError
from agent.prompt import Message, Passage
from training.data.records import (
    ANSWER_ROLES,
    Alternative,
    PassThroughRow,
    Row,
    SourceConversation,
    TurnFeedback,
)

if TYPE_CHECKING:
    from agent.store import LogStore
    from agent.types import Feedback, Turn

ROLE_ALIASES = {
    "customer": "customer",
    "user": "customer",
    "agent": "agent",
    "assistant": "agent",
    "human": "human",
    "system": "system",
}
RESPONSE_KEYS = ("gold_response", "reference_response", "response")
CSV_TEXT_COLUMNS = ("text", "content", "message")
CSV_ORDER_COLUMNS = ("turn", "seq")
FORMATS = ("turns", "messages", "csv", "rated_responses", "sft", "preference", "kto")


# ---------------------------------------------------------------------------------------------
# Input files
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


def load_rows(path: Path) -> list[Row]:
    """Rows of a JSON Lines file written by ``CompiledDataset.write`` (DataError names path:line)."""
    return [_parse_json(line, path, line_no) for line_no, line in _lines(Path(path))]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"not UTF-8 text: {exc.reason}", path=str(path), line=line_no) from None
                if line.strip():
                    yield line_no, line
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc


def _parse_json(line: str, path: Path, line_no: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except RecursionError:
        raise DataError("JSON nested too deeply", path=str(path), line=line_no) from None
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
        value = " ".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
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
    labels = data.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
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
        title = item.get("title")
        passages.append(
            Passage(
                doc_id=doc_id,
                source=str(item.get("source") or ""),
                text=item["text"],
                title=title if isinstance(title, str) else None,
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
    gold = row.get("gold_doc_ids") or []
    if not isinstance(gold, list) or not all(isinstance(x, (str, int)) for x in gold):
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
        metadata = turn.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise DataError(f"{what}: `metadata` must be an object", path=str(path), line=line)
        logged = turn.get("passages", metadata.get("passages"))
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
            turn_index = row.get("turn_index")
            if turn_index is not None and (isinstance(turn_index, bool) or not isinstance(turn_index, int)):
                raise DataError("`turn_index` must be an integer", path=str(path), line=line)
            out["turn_index"] = turn_index
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
    """(first line, conversation id, order, role, text) per record. The reader is strict: a
    quote that is never closed (it would swallow the rest of the file into one field), text
    after a closing quote and a record with more fields than the header are errors naming the
    line the record starts on, never a silent merge or drop."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, strict=True)
        start = 1
        try:
            reader.fieldnames = [h.strip().lower() for h in reader.fieldnames or []]
            text_col, order_col = _csv_columns(reader.fieldnames, path)
            while True:
                start = reader.line_num + 1
                try:
                    record = next(reader)
                    yield start, *_csv_turn(record, text_col, order_col, path, start)
                except StopIteration:
                    return
                except (csv.Error, DataError) as exc:
                    error = (
                        exc if isinstance(exc, DataError) else _csv_error(exc, path, start, reader.line_num)
                    )
                    if skipped is None:
                        raise error from None
                    skipped.append(str(error))
        except UnicodeDecodeError as exc:
            raise DataError(
                f"not UTF-8 text: {exc.reason}", path=str(path), line=reader.line_num + 1
            ) from None
        except csv.Error as exc:  # in the header
            raise _csv_error(exc, path, start, reader.line_num) from None


def _csv_error(exc: csv.Error, path: Path, start: int, end: int) -> DataError:
    if "unexpected end of data" in str(exc):
        message = (
            f"a quote opened in this record is never closed (it runs to line {end}, the end of the file)"
        )
    else:
        message = f"malformed CSV: {exc}"
    return DataError(message, path=str(path), line=start)


def _csv_columns(header: Sequence[str], path: Path) -> tuple[str, str | None]:
    text_col = next((c for c in CSV_TEXT_COLUMNS if c in header), None)
    if "conversation_id" not in header or "role" not in header or text_col is None:
        message = f"CSV header must have conversation_id, role and text (or content/message); got {header}"
        raise DataError(message, path=str(path), line=1)
    return text_col, next((c for c in CSV_ORDER_COLUMNS if c in header), None)


def _csv_turn(
    record: dict[str, Any], text_col: str, order_col: str | None, path: Path, line: int
) -> tuple[str, float, str, str]:
    if None in record:  # DictReader's place for fields beyond the header's
        extra = len(record[None])  # type: ignore[index]
        raise DataError(
            f"{extra} more field(s) than the header has; quote a text that holds commas",
            path=str(path),
            line=line,
        )
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


def merge_feedback(items: Iterable[Feedback]) -> TurnFeedback:
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


def _logged(turn: Turn) -> tuple[Passage, ...] | None:
    """The passages the runtime logged with a turn (``metadata["passages"]``), if any, each with
    the id of the index chunk it was retrieved as: logged with it, or else (older logs) the
    retrieved chunk at its position, or the one retrieved chunk of its document."""
    logged = (turn.metadata or {}).get("passages")
    if logged is None:
        return None
    chunk_ids = {(c.doc_id, c.source): c.chunk_id for c in turn.retrieved}
    passages = []
    for i, p in enumerate(logged):
        doc_id, source = str(p.get("doc_id") or ""), str(p.get("source") or "")
        at = turn.retrieved[i] if i < len(turn.retrieved) else None
        if at is not None and (at.doc_id, at.source) == (doc_id, source):
            chunk_ids[doc_id, source] = at.chunk_id
        passages.append(
            Passage(
                doc_id=doc_id,
                source=source,
                text=str(p.get("text") or ""),
                title=p.get("title"),
                chunk_id=p.get("chunk_id") or chunk_ids.get((doc_id, source)),
            )
        )
    return tuple(passages)


def from_store(store: LogStore, since: datetime | None = None) -> Iterator[SourceConversation]:
    """Reviewed conversations of the log store, and those a person answered after a hand-off,
    with the passages each answer was shown. A conversation nobody reviewed gives only its human
    answers (its customers' thumbs are left out, as they are everywhere else). A conversation
    holding a turn redacted for personal data is left out whole."""
    for conversation, feedback in store.reviewed_conversations(since=since, human_answered=True):
        if any(turn.metadata.get("redacted") for turn in conversation.turns):
            continue
        if not any(is_review(item) for item in feedback):
            feedback = []
        index = {turn.id: i for i, turn in enumerate(conversation.turns)}
        by_turn: dict[int, list[Feedback]] = defaultdict(list)
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
            turn_ids=tuple(str(turn.id) for turn in conversation.turns),
            reviewed_at=_last_reviews(by_turn),
        )


def _last_reviews(by_turn: dict[int, list[Feedback]]) -> dict[int, datetime]:
    """When a reviewer last gave feedback on each turn (turns with none are absent)."""
    last = {}
    for position, items in by_turn.items():
        times = [item.created_at for item in items if is_review(item) and item.created_at is not None]
        if times:
            last[position] = max(times)
    return last


def is_review(item: Feedback) -> bool:
    """Whether a feedback row is a reviewer's (not a customer's thumbs or stars): as the store's ``feedback.reviewed`` (``agent.store.log``): a reviewer's row."""
    return bool(item.reviewer or item.correction or item.labels or item.mark_for_training)


# ---------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------


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
        try:
            content = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read as UTF-8 text: {exc}", path=str(file)) from None
        title = next((ln[2:].strip() for ln in content.splitlines() if ln.startswith("# ")), None)
        docs[file.stem] = Passage(doc_id=file.stem, source=file.name, text=content, title=title)
    return docs
