"""Property-based tests (``hypothesis``) of the pure transforms and the readers.

Bounded: every property runs ``max_examples=200`` generated cases (``PROPERTY`` below: 9
properties, 1,800 cases, 10-20 s on one core), with no deadline (CI machines are shared) and no
example database (nothing is written beside the checkout). ``SUPPORTLOOP_PROPERTY_EXAMPLES``
raises the count for a deeper run by hand. A failure prints the smallest
case hypothesis found; pin it with ``@example`` when fixing it.

* **Identifiers** (``agent.validation``): accepted exactly when 1-128 characters from
  ``A-Z a-z 0-9 . _ : -``, checked against an oracle written independently of the regex; an
  accepted id is safe as an HTTP header value; nothing but ``InputError`` is ever raised.
* **Text checks**: accepted text is storable (UTF-8 encodable, no NUL); nothing but ``InputError``.
* **Chunking** (``knowledge.chunking``): never raises; chunks are non-empty, numbered in order,
  within ``chunk_size`` (plus the heading trail), with unique ids that depend only on content;
  plain text loses no character (every non-space character appears, in order, in the chunks).
* **PII redaction** (``training.pii``): idempotent, spans in bounds and never overlapping, and
  generated e-mail addresses and Luhn-valid card numbers never survive, whatever surrounds them.
* **Readers**: arbitrary bytes, and JSON Lines rows built from the keys the readers look for with
  arbitrary JSON values, never raise anything but the project's own errors (``DataError``,
  ``LoaderError``), with or without ``--skip-invalid``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.errors import InputError, SupportloopError
from agent.validation import ID_CHARS, ID_MAX_CHARS, check_chars, check_identifier, check_labels, check_text
from knowledge.chunking import chunk_document, heading_trail
from knowledge.types import Document
from training.pii import find_pii, luhn_ok, redact

# 200 in CI; SUPPORTLOOP_PROPERTY_EXAMPLES=2000 for a deeper run by hand (docs/reliability.md).
CI_EXAMPLES = 200
MAX_EXAMPLES = int(os.environ.get("SUPPORTLOOP_PROPERTY_EXAMPLES", CI_EXAMPLES))
PROPERTY = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ID_ALPHABET = set(string.ascii_letters + string.digits + "._:-")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the files the reader properties write (one file per example, overwritten)."""
    return tmp_path_factory.mktemp("properties")


# -- identifiers and text ------------------------------------------------------------------------


def _is_identifier(value: str) -> bool:
    return 1 <= len(value) <= ID_MAX_CHARS and all(ch in ID_ALPHABET for ch in value)


_ids = st.text(alphabet="".join(sorted(ID_ALPHABET)), min_size=1, max_size=ID_MAX_CHARS)
_near_ids = st.builds(
    lambda head, bad, tail: head + bad + tail,
    _ids,
    st.sampled_from(["\r", "\n", "\x00", " ", "/", "é", "☕", "\u2028", "\udc80", "%", "@"]),
    st.text(alphabet="".join(sorted(ID_ALPHABET)), max_size=5),
)


@PROPERTY
@given(st.one_of(st.text(), _ids, _near_ids, st.text(min_size=120, max_size=140)))
@example("a" * ID_MAX_CHARS)
@example("a" * (ID_MAX_CHARS + 1))
@example("")
@example(" ")
@example("١٢٣")  # Arabic-Indic digits: \d would take them, the rule does not
def test_identifier_accepted_exactly_when_the_rule_says(value: str) -> None:
    if _is_identifier(value):
        assert check_identifier(value, "conversation_id") == value
        header = value.encode("latin-1")  # what an HTTP header can carry ...
        assert not re.search(rb"[\x00-\x20\x7f-\xff]", header)  # ... with no control or space
    else:
        with pytest.raises(InputError) as refused:
            check_identifier(value, "conversation_id")
        # Never echoed: the message is the rule alone (a space is "in" any sentence).
        assert str(refused.value) == f"conversation_id must be 1-{ID_MAX_CHARS} characters from {ID_CHARS}"
        assert refused.value.param == "conversation_id"


@PROPERTY
@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text()), st.text()), st.integers(0, 300))
def test_text_checks_raise_only_input_errors_and_pass_only_storable_text(value: Any, limit: int) -> None:
    for check in (lambda v: check_chars(v, "text"), lambda v: check_text(v, "text", limit)):
        try:
            accepted = check(value)
        except InputError:
            continue
        assert isinstance(accepted, str) and "\x00" not in accepted
        accepted.encode("utf-8")  # a lone surrogate would raise here
    try:
        labels = check_labels(value if isinstance(value, list) else [value])
    except InputError:
        return
    assert all(label and label == label.strip() and "\x00" not in label for label in labels)


# -- chunking ------------------------------------------------------------------------------------

_markdownish = st.lists(
    st.one_of(
        st.text(max_size=200),
        st.sampled_from(["# Title", "## Section", "### Sub", "```", "~~~", "", "Para one.", "---", "==="]),
        st.builds(lambda w: " ".join(w), st.lists(st.text(min_size=1, max_size=30), max_size=40)),
    ),
    max_size=30,
).map("\n".join)
_sizes = st.integers(1, 400).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size - 1)))


def _document(text: str, markdown: bool, title: str | None, meta: dict[str, Any]) -> Document:
    fmt = "markdown" if markdown else "text"
    return Document("d1", "guide.md", text, title=title, metadata=meta, format=fmt, file="guide.md")


def _is_subsequence(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)


@PROPERTY
@given(
    _markdownish,
    st.booleans(),
    st.one_of(st.none(), st.text(max_size=20)),
    st.dictionaries(
        st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=3
    ),
    _sizes,
)
def test_chunking_invariants(
    text: str, markdown: bool, title: str | None, meta: dict[str, Any], sizes: tuple[int, int]
) -> None:
    size, overlap = sizes
    doc = _document(text, markdown, title, meta)
    chunks = chunk_document(doc, size, overlap)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert [c.chunk_id for c in chunk_document(doc, size, overlap)] == [c.chunk_id for c in chunks]
    for chunk in chunks:
        trail = heading_trail(title, chunk.headings)
        body = chunk.text[len(trail) + 2 :] if trail else chunk.text
        assert chunk.text.strip() and body.strip() and len(body) <= size, (size, chunk.text)
    if not markdown and not title:
        stripped = "".join(text.split())
        assert _is_subsequence(stripped, "".join("".join(c.text.split()) for c in chunks))


@PROPERTY
@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=10))
def test_chunk_ids_change_with_the_metadata(text: str, value: str) -> None:
    plain = chunk_document(_document(text, False, None, {}))
    tagged = chunk_document(_document(text, False, None, {"product": value}))
    assert {c.chunk_id for c in plain}.isdisjoint({c.chunk_id for c in tagged})


# -- PII redaction -------------------------------------------------------------------------------

_word = st.text(alphabet=string.ascii_letters, min_size=1, max_size=8)
_emails = st.builds(
    lambda local, dom, tld: f"{local}@{dom}.{tld}",
    st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,5})?", fullmatch=True),
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    st.sampled_from(["com", "org", "net", "co.uk", "de", "io"]),
)


def _with_luhn(digits: str) -> str:
    for last in "0123456789":
        if luhn_ok(digits + last):
            return digits + last
    raise AssertionError("unreachable")


_cards = (
    st.from_regex(r"4[0-9]{14}", fullmatch=True)
    .map(_with_luhn)
    .map(lambda d: " ".join(d[i : i + 4] for i in range(0, 16, 4)))
)
_pii_text = st.lists(
    st.one_of(_word, _emails, _cards, st.sampled_from(["call", "+44 20 7946 0958", "192.168.1.20", "at"])),
    max_size=12,
).map(" ".join)


@PROPERTY
@given(st.one_of(st.text(), _pii_text))
@example("+00000000 0@0.AA")  # found: the phone ran into the e-mail, was dropped, and was left in
def test_redaction_is_idempotent_and_spans_are_sound(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    spans = find_pii(text)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text) and text[span.start : span.end] == span.value
    for left, right in itertools.pairwise(spans):
        assert left.end <= right.start


@PROPERTY
@given(_word, st.one_of(_emails, _cards), _word)
def test_an_email_or_card_never_survives_redaction(before: str, secret: str, after: str) -> None:
    redacted = redact(f"{before} {secret} {after}")
    assert secret not in redacted
    assert re.sub(r"\D", "", secret) not in re.sub(r"\D", "", redacted) or "@" in secret


# -- readers -------------------------------------------------------------------------------------

READER_KEYS = [
    "turns", "messages", "responses", "prompt", "chosen", "rejected", "completion", "label", "id",
    "conversation_id", "contexts", "gold_doc_ids", "gold_response", "thumbs", "rating", "labels",
    "correction", "mark_for_training", "metadata", "passages", "role", "text", "content", "ratings",
    "doc_id", "title", "source", "answerability", "model", "type",
]  # fmt: skip
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(["customer", "agent", "user", "assistant", "system", "human", "up", "down", "text"]),
)  # fmt: skip
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(READER_KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)
# Values of the wrong shape are where a reader trips: favour short non-empty lists and objects.
_odd = st.one_of(
    _scalars,
    st.lists(_scalars, min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(READER_KEYS), _scalars, min_size=1, max_size=3),
    _json,
)
_loose_rows = st.dictionaries(st.sampled_from(READER_KEYS), _json, max_size=6)
# Rows of each format the readers know, well-formed where it matters and arbitrary JSON in any
# optional field (and sometimes in a required one), so generation reaches the field parsers.
_role = st.sampled_from(["customer", "agent", "user", "assistant", "human", "system"])
_words = st.from_regex(r"[A-Za-z][A-Za-z ?.]{0,19}", fullmatch=True)
_maybe = st.one_of(_words, _words, _words, st.text(max_size=20), _odd)  # mostly usable text
_turn = st.fixed_dictionaries(
    {"role": st.one_of(_role, _role, _odd), "text": _maybe},
    optional={
        k: _odd for k in ("content", "metadata", "passages", "labels", "rating", "thumbs", "correction")
    },
)
_row_optional = {k: _odd for k in READER_KEYS if k not in ("turns", "messages", "responses")}
_turns_rows = st.fixed_dictionaries(
    {"turns": st.lists(_turn, min_size=1, max_size=4)}, optional=_row_optional
)
_message_rows = st.fixed_dictionaries(
    {"messages": st.lists(st.fixed_dictionaries({"role": _role, "content": _maybe}), min_size=1, max_size=4)},
    optional=_row_optional,
)
_rated_rows = st.fixed_dictionaries(
    {
        "turns": st.lists(_turn, min_size=1, max_size=3),
        "responses": st.lists(
            st.fixed_dictionaries({"text": _maybe, "ratings": st.dictionaries(st.text(max_size=5), _json)}),
            max_size=3,
        ),
    },
    optional=_row_optional,
)
_trl_rows = st.fixed_dictionaries(
    {"prompt": _maybe, "completion": _maybe},
    optional={"chosen": _maybe, "rejected": _maybe, "label": _json, "conversation_id": _json},
)
_doc_rows = st.fixed_dictionaries(
    {"doc_id": _json, "text": _maybe}, optional={"title": _json, "contexts": _json}
)
_rows = st.one_of(_loose_rows, _turns_rows, _message_rows, _rated_rows, _trl_rows, _doc_rows)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


_lines = st.lists(
    st.one_of(
        _rows.map(json.dumps),
        st.text(max_size=40),
        st.sampled_from(["[", "{", '{"turns": [', "null", "[]", "1", '"x"', "\ufeff{}", "{}"]),
    ),
    min_size=1,
    max_size=6,
).map(lambda lines: _encode("\n".join(lines) + "\n"))
_jsonl = st.lists(_rows.map(json.dumps), min_size=1, max_size=4).map(lambda rows: _encode("\n".join(rows)))
_one_json = st.one_of(_rows, _json).map(lambda value: _encode(json.dumps(value)))
_bytes = st.one_of(_jsonl, _jsonl, _one_json, _lines, st.binary(max_size=300))


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _drain(items: Iterator[Any]) -> None:
    for _ in items:
        pass


@PROPERTY
@given(_bytes, st.booleans())
# Found (each raised AttributeError or TypeError from the compiler's readers):
@example(b'{"turns":[{"role":"customer","text":"?","metadata":[1]}]}', True)
@example(b'{"turns":[{"role":"customer","text":"?"}],"labels":5}', False)
@example(b'{"turns":[{"role":"customer","text":"?"}],"gold_doc_ids":3}', False)
@example(b'{"turns":[{"role":"customer","text":[{"text":5}]}]}', False)
@example(b"[" * 5_000, False)  # RecursionError
def test_compiler_readers_raise_only_data_errors(scratch: Path, data: bytes, skip: bool) -> None:
    from training.data.readers import detect_format, load_docs, load_rows, read_source

    skipped: list[str] | None = [] if skip else None
    for name in ("rows.jsonl", "turns.csv"):
        path = _write(scratch, name, data)
        with contextlib.suppress(SupportloopError):
            _drain(read_source(path, skipped=skipped))
        with contextlib.suppress(SupportloopError):
            detect_format(path, lenient=skip)
        with contextlib.suppress(SupportloopError):
            load_rows(path)
        with contextlib.suppress(SupportloopError):
            load_docs(path)


@PROPERTY
@given(_bytes)
@example(b"[" * 5_000)  # found: RecursionError out of the JSON Lines loader
def test_knowledge_loaders_never_raise(scratch: Path, data: bytes) -> None:
    from knowledge.loaders import FileRef, load_file

    for name in ("docs.jsonl", "guide.md", "notes.txt", "page.html"):
        result = load_file(FileRef(_write(scratch, name, data), name))
        assert all(f.reason for f in result.failures)


@PROPERTY
@given(_bytes)
@example(b"\x80")  # found: UnicodeDecodeError out of the evaluation reader
@example(b'{"turns":[null]}')  # found: AttributeError out of the evaluation reader
@example(b'{"turns":[{"role":"customer","text":"x"}],"contexts":true}')  # found: TypeError (session 40)
@example(b"[" * 5_000)
def test_history_and_evaluation_readers_raise_only_data_errors(scratch: Path, data: bytes) -> None:
    from agent.commands import read_history
    from agent.evaluate import read_cases, read_documents

    path = _write(scratch, "history.json", data)
    for read in (read_history, read_cases, read_documents):
        with contextlib.suppress(SupportloopError):
            read(path)


def test_reliability_doc_states_the_case_counts() -> None:
    """docs/reliability.md states how many properties run and how many cases each: keep it true."""
    import sys

    module = sys.modules[__name__]
    properties = [
        name for name, fn in vars(module).items() if name.startswith("test_") and hasattr(fn, "hypothesis")
    ]
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert f"**{CI_EXAMPLES} generated cases**" in doc and f"max_examples={CI_EXAMPLES}" in doc
    assert f"Per run: {len(properties)} properties, {len(properties) * CI_EXAMPLES:,} generated cases" in doc
