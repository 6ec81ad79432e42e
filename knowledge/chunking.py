"""Document -> chunks, respecting structure; pure (no I/O, no models).

Invariants:
- Markdown is cut at headings first, then paragraphs, then sentences, then words; a chunk never
  spans two sections, and code fences are never cut at a ``#`` line inside them. A table too long
  for a chunk is cut between rows, each piece under the table's header row; a list between items.
- Every chunk's text starts with its heading trail (``Title > Section > Subsection``), so a chunk
  read alone still says what it is about.
- ``chunk_id`` is a hash of the document identity (source, doc_id, title, metadata) and the chunk
  text (plus its occurrence number, for repeated text): unchanged documents give the same ids, and
  any change to text or metadata gives new ones. Metadata values are made Chroma-safe here
  (str/int/float/bool), so the hash covers exactly what gets stored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from knowledge.types import Chunk, Document

TRAIL_SEPARATOR = " > "

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]
    paragraphs: tuple[str, ...]


def chunk_document(doc: Document, chunk_size: int = 600, chunk_overlap: int = 100) -> list[Chunk]:
    """Chunks of ``doc`` in reading order, with stable content-hash ids."""
    if chunk_size <= 0 or not 0 <= chunk_overlap < chunk_size:
        raise ValueError("need chunk_size > 0 and 0 <= chunk_overlap < chunk_size")
    sections = markdown_sections(doc.text) if doc.format == "markdown" else [plain_section(doc.text)]
    metadata = clean_metadata(doc.metadata)
    identity = _identity(doc, metadata)
    chunks: list[Chunk] = []
    occurrences: dict[str, int] = {}
    for section in sections:
        trail = heading_trail(doc.title, section.headings)
        for body in pack(section.paragraphs, chunk_size, chunk_overlap):
            text = f"{trail}\n\n{body}" if trail else body
            seen = occurrences.get(text, 0)
            occurrences[text] = seen + 1
            chunk_id = content_hash(identity, text, str(seen))
            chunks.append(
                Chunk(
                    chunk_id,
                    doc.doc_id,
                    doc.source,
                    text,
                    len(chunks),
                    section.headings,
                    doc.title,
                    metadata,
                    doc.file,
                )
            )
    return chunks


def heading_trail(title: str | None, headings: tuple[str, ...]) -> str:
    parts = list(headings)
    if title and (not parts or parts[0].casefold() != title.casefold()):
        parts.insert(0, title)
    return TRAIL_SEPARATOR.join(parts)


def plain_section(text: str) -> Section:
    return Section((), tuple(paragraphs(text.splitlines())))


def markdown_sections(text: str) -> list[Section]:
    """Split Markdown at ATX and setext headings, keeping the heading path of each section."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        paras = tuple(paragraphs(lines))
        if paras:
            sections.append(Section(tuple(h for _, h in path), paras))
        lines.clear()

    for level, heading, body_line in _scan_headings(text.splitlines()):
        if heading is None:
            lines.append(body_line)
            continue
        flush()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))
    flush()
    return sections


def _scan_headings(lines: list[str]) -> Iterator[tuple[int, str | None, str]]:
    """(level, heading, "") for heading lines and (0, None, line) for body lines; fences respected."""
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        atx = None if in_fence else _ATX.match(line)
        if atx and atx.group(2):
            yield len(atx.group(1)), _clean_heading(atx.group(2)), ""
        elif not in_fence and line.strip() and _SETEXT.match(nxt) and not _is_block_start(line):
            yield (1 if nxt.strip().startswith("=") else 2), _clean_heading(line), ""
            i += 1
        else:
            yield 0, None, line
        i += 1


def _is_block_start(line: str) -> bool:
    return bool(re.match(r"^\s*([-*+]\s|\d+[.)]\s|>|\||```|~~~)", line))


def _clean_heading(text: str) -> str:
    return re.sub(r"[*_`]+", "", text).strip()


def paragraphs(lines: list[str]) -> Iterator[str]:
    """Blank-line separated blocks; a fenced code block stays one block."""
    block: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if block:
                yield "\n".join(block).strip()
            block = []
        else:
            block.append(line.rstrip())
    if block and "\n".join(block).strip():
        yield "\n".join(block).strip()


def pack(paras: tuple[str, ...], size: int, overlap: int) -> Iterator[str]:
    """Greedy packing of paragraphs (split further when too long) into chunks of at most ``size``.
    A chunk opens with the last sentences of the one before (``overlap``), except next to a table:
    a table's rows are not sentences, and a table piece opens with its own header instead."""
    current = ""
    for sep, piece in _pieces(paras, size):
        if current and len(current) + len(sep) + len(piece) > size:
            yield current
            table = piece.lstrip().startswith("|") or current.rstrip().endswith("|")
            current = "" if table else _tail(current, overlap)
            if current and len(current) + len(sep) + len(piece) > size:
                current = ""
        current = f"{current}{sep}{piece}" if current else piece
    if current:
        yield current


def _pieces(paras: tuple[str, ...], size: int) -> Iterator[tuple[str, str]]:
    """(separator, text): whole paragraphs, or the sentences (then words) of a paragraph too long;
    a Markdown table too long is cut between rows, each piece under the table's header."""
    for para in paras:
        if len(para) <= size:
            yield "\n\n", para
            continue
        rows = table_pieces(para, size) or line_pieces(para, size)
        if rows:
            yield from (("\n\n", piece) for piece in rows)
            continue
        sep = "\n\n"
        for sentence in _SENTENCE_END.split(para):
            for part in _split_words(sentence, size) if len(sentence) > size else [sentence]:
                yield sep, part
                sep = " "


TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")  # "|---|:--:|"


def table_pieces(para: str, size: int) -> list[str]:
    """A Markdown table (header row, rule, rows) cut between rows into pieces of at most ``size``
    characters where the rows allow, each starting with the header and the rule, so that a row
    read alone still says what its columns are ("| | Aero 300 | Aero 500 |" over "| Price | $199 |
    $329 |"). [] when ``para`` is not such a table."""
    lines = para.splitlines()
    if len(lines) < 3 or not lines[0].lstrip().startswith("|") or not TABLE_RULE.match(lines[1]):
        return []
    if not all(line.lstrip().startswith("|") for line in lines[2:]):
        return []
    head = "\n".join(lines[:2])
    pieces: list[str] = []
    current: list[str] = []
    for row in lines[2:]:
        if current and len(head) + sum(len(r) + 1 for r in current) + len(row) + 1 > size:
            pieces.append("\n".join([head, *current]))
            current = []
        current.append(row)
    if current:
        pieces.append("\n".join([head, *current]))
    return pieces if all(len(piece) <= size for piece in pieces) else []  # too wide: cut as text


def line_pieces(para: str, size: int) -> list[str]:
    """A block of lines (a list, an address) cut between lines into pieces of at most ``size``,
    so that a list item stays on its own line; [] when the block is one line or has a line
    longer than ``size`` (then it is cut at sentences)."""
    lines = para.splitlines()
    if len(lines) < 2 or any(len(line) > size for line in lines):
        return []
    pieces: list[list[str]] = [[]]
    for line in lines:
        if pieces[-1] and sum(len(x) + 1 for x in pieces[-1]) + len(line) > size:
            pieces.append([])
        pieces[-1].append(line)
    return ["\n".join(piece) for piece in pieces]


def _split_words(text: str, size: int) -> Iterator[str]:
    words: list[str] = []
    length = 0
    for word in text.split():
        for part in (word[i : i + size] for i in range(0, len(word), size)):
            if words and length + len(part) + 1 > size:
                yield " ".join(words)
                words, length = [], 0
            words.append(part)
            length += len(part) + 1
    if words:
        yield " ".join(words)


def _tail(chunk: str, overlap: int) -> str:
    """The last whole sentences of a finished chunk, up to ``overlap`` characters, to open the next."""
    if overlap <= 0:
        return ""
    sentences = [s for s in re.split(r"(?<=[.!?。！？])\s+|\n\s*\n", chunk) if s.strip()]
    tail: list[str] = []
    for sentence in reversed(sentences[1:]):
        if sum(len(s) + 1 for s in tail) + len(sentence) > overlap:
            break
        tail.insert(0, sentence.strip())
    return " ".join(tail)


def clean_metadata(metadata: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """Chroma accepts str/int/float/bool values: others are JSON-encoded, ``None`` dropped."""
    clean: dict[str, str | int | float | bool] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            clean[str(key)] = value
        else:
            clean[str(key)] = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return clean


def _identity(doc: Document, metadata: Mapping[str, Any]) -> str:
    meta = json.dumps(metadata, ensure_ascii=False, sort_keys=True)
    return "\x1f".join((doc.source, doc.doc_id, doc.title or "", doc.file, meta))


def content_hash(*parts: str) -> str:
    """The content hash chunk ids are made of (32 hex digits of SHA-256 over the parts); anything
    that names a version of a text (training rows' passage provenance) uses this one."""
    return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()[:32]
