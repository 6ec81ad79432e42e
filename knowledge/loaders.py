"""Files -> ``Document``: Markdown, plain text, HTML, PDF and JSON Lines.

Invariants:
- Loading never raises for a bad document: each one that cannot be read becomes a ``Failure`` naming
  its path (``path:line`` for a JSON Lines row) and the reason; the others load.
- Only regular files inside the paths given are read (``discover``): a symlink out of a folder, a
  broken symlink, a FIFO or a device is skipped and reported with its reason, never opened.
- ``source`` is the path relative to the ingest root given (a folder, or a glob's fixed prefix), or
  the file name for a file given directly; ``doc_id`` is the file stem. A JSON Lines row's ``doc_id``
  comes from its ``doc_id`` or ``id`` field and its source is ``<file source>#<doc_id>``; every
  other field is kept as metadata.
- Text must be UTF-8 (a BOM is allowed); anything else is reported, never guessed.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.errors import LoaderError
from knowledge.types import Document, Failure

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx"})
TEXT_SUFFIXES = frozenset({".txt", ".text"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PDF_SUFFIXES = frozenset({".pdf"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | JSONL_SUFFIXES

# Metadata keys the index itself writes; a JSON Lines field of the same name is kept as ``meta_<name>``.
# Written by the index on every chunk it stores: when the chunk was written (ISO 8601, UTC). Chunk
# ids are content hashes, so an unchanged chunk keeps the time it was first ingested.
INGESTED_AT = "ingested_at"
RESERVED_KEYS = frozenset(
    {"doc_id", "source", "title", "file", "chunk_index", "headings", "doc_hash", INGESTED_AT}
)

_GLOB_CHARS = re.compile(r"[*?\[]")
NOT_REGULAR = "not a regular file (a FIFO, socket or device)"


@dataclass(frozen=True)
class FileRef:
    """A file to load and the source name it gets."""

    path: Path
    source: str


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def discover(paths: Sequence[str | Path]) -> tuple[list[FileRef], list[Failure]]:
    """Expand files, folders (recursively) and globs into files to load, each once.

    Only regular files inside what was given are read: in a folder (or under a glob's fixed
    prefix) a symlink that leads out of it, a broken symlink and a FIFO, socket or device come
    back as ``Failure(..., skipped=True)`` with the reason, never opened. A path given that does
    not exist, or is itself a special file, is a plain ``Failure``."""
    refs: dict[Path, FileRef] = {}
    failures: list[Failure] = []
    for raw in paths:
        found, problems = _expand(str(raw))
        failures.extend(problems)
        for ref in found:
            refs.setdefault(ref.path.resolve(), ref)
    return list(refs.values()), failures


def _expand(raw: str) -> tuple[list[FileRef], list[Failure]]:
    path = Path(raw).expanduser()
    if path.is_file():
        return [FileRef(path, path.name)], []
    if path.is_dir():
        walked, unread = _walk(path)
        return [FileRef(p, p.relative_to(path).as_posix()) for p in walked], unread
    if path.exists():
        return [], [Failure(raw, NOT_REGULAR)]
    if not _GLOB_CHARS.search(raw):
        return [], [Failure(raw, "no such file or directory")]
    base = _glob_base(raw)
    refs: list[FileRef] = []
    skipped: list[Failure] = []
    for match in sorted(Path(m) for m in glob.glob(str(path), recursive=True)):
        files: list[Path] = []
        if match.is_dir():
            files, more = _walk(match)
            skipped.extend(more)
        elif _supported(match):
            reason = _outside_or_special(match, base.resolve())
            if reason:
                skipped.append(Failure(str(match), reason, skipped=True))
            else:
                files = [match]
        refs.extend(FileRef(f, _relative(f, base)) for f in files)
    return refs, skipped


def _walk(folder: Path) -> tuple[list[Path], list[Failure]]:
    """The supported regular files under ``folder`` and the supported names skipped, with why.
    Dot-folders (.git, .venv, ...) never hold product documents."""
    root = folder.resolve()
    files: list[Path] = []
    skipped: list[Failure] = []
    for path in sorted(folder.rglob("*")):
        if not _supported(path) or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.is_dir() and not path.is_symlink():
            continue
        reason = _outside_or_special(path, root)
        if reason:
            skipped.append(Failure(str(path), reason, skipped=True))
        else:
            files.append(path)
    return files, skipped


def _outside_or_special(path: Path, root: Path) -> str:
    """Why ``path`` must not be read as a document under ``root``; "" for a regular file in it."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling or looping symlink
        return "a broken symlink"
    if not resolved.is_relative_to(root):
        return f"it leads outside {root} through a symlink"
    if not resolved.is_file():
        return "a directory" if resolved.is_dir() else NOT_REGULAR
    return ""


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _glob_base(pattern: str) -> Path:
    fixed = list(_takewhile_fixed(Path(pattern).expanduser().parts))
    return Path(*fixed) if fixed else Path(".")


def _takewhile_fixed(parts: Sequence[str]) -> Iterator[str]:
    for part in parts:
        if _GLOB_CHARS.search(part):
            return
        yield part


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name


def load_file(ref: FileRef) -> LoadResult:
    """Load one file into documents; never raises for unreadable content."""
    suffix = ref.path.suffix.lower()
    if not ref.path.is_file():  # replaced since discover(): never open a FIFO (it would block)
        return LoadResult(failures=[Failure(str(ref.path), NOT_REGULAR)])
    try:
        if suffix in JSONL_SUFFIXES:
            return load_jsonl(ref.path, ref.source)
        loader = _LOADERS.get(suffix)
        if loader is None:
            raise LoaderError(ref.path, f"unsupported file type {suffix or '(none)'}")
        doc = loader(ref.path, ref.source)
        if not doc.text.strip():
            raise LoaderError(ref.path, "no text found in the document")
        return LoadResult([doc])
    except LoaderError as exc:
        return LoadResult(failures=[Failure(exc.location, exc.reason)])
    except OSError as exc:
        return LoadResult(failures=[Failure(str(ref.path), f"cannot read file: {exc.strerror or exc}")])


def read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(
            path, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


def load_markdown(path: Path, source: str) -> Document:
    text, front = _split_front_matter(read_utf8(path))
    title = _first_h1(text) or front.get("title")
    return Document(path.stem, source, text.strip(), title=title, format="markdown", file=source)


def load_text(path: Path, source: str) -> Document:
    return Document(path.stem, source, read_utf8(path).strip(), file=source)


def load_html(path: Path, source: str) -> Document:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode_html(path), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    text = html_to_markdown(soup)
    return Document(path.stem, source, text, title=title or _first_h1(text), format="markdown", file=source)


def load_pdf(path: Path, source: str) -> Document:
    from pypdf import PdfReader

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(path, "the PDF is encrypted; save an unencrypted copy")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = _pdf_title(reader)
    except LoaderError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise LoaderError(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text:
        raise LoaderError(path, "no extractable text in the PDF (scanned images need OCR first)")
    return Document(path.stem, source, text, title=title, file=source)


def _pdf_title(reader: Any) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # damaged info dictionaries are common and harmless
        return None
    return (str(title).strip() or None) if title else None


def load_jsonl(path: Path, source: str) -> LoadResult:
    """One document per row: ``text``, an id from ``doc_id`` or ``id``, other fields as metadata."""
    result = LoadResult()
    seen: set[str] = set()
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            doc = parse_jsonl_row(raw, source, lineno, where=str(path))
            if doc.doc_id in seen:
                raise LoaderError(path, f"duplicate doc_id {doc.doc_id!r}", lineno)
            seen.add(doc.doc_id)
            result.documents.append(doc)
        except LoaderError as exc:
            result.failures.append(Failure(exc.location, exc.reason))
    return result


def parse_jsonl_row(raw: bytes | str, source: str, lineno: int, *, where: str | None = None) -> Document:
    """One row as a document; errors name ``where:lineno`` (``where`` defaults to ``source``)."""
    where = where or source
    row = parse_json_line(raw, where, lineno)
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LoaderError(where, "missing or empty 'text' field", lineno)
    doc_id = row.get("doc_id", row.get("id"))
    if not isinstance(doc_id, str | int) or isinstance(doc_id, bool) or str(doc_id) == "":
        raise LoaderError(where, "missing 'doc_id' (or 'id') field", lineno)
    id_key = "doc_id" if "doc_id" in row else "id"
    metadata = {_meta_key(k): v for k, v in row.items() if k not in ("text", id_key)}
    title = row.get("title") if isinstance(row.get("title"), str) else None
    return Document(
        str(doc_id), f"{source}#{doc_id}", text.strip(), title=title, metadata=metadata, file=source
    )


def parse_json_line(raw: bytes | str, where: str, lineno: int) -> dict[str, Any]:
    """One JSON object from one line, or a ``LoaderError`` naming ``source:line``."""
    try:
        line = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        row = json.loads(line)
    except UnicodeDecodeError:
        raise LoaderError(where, "not valid UTF-8", lineno) from None
    except RecursionError:
        raise LoaderError(where, "JSON nested too deeply", lineno) from None
    except json.JSONDecodeError as exc:
        raise LoaderError(where, f"invalid JSON ({exc.msg} at column {exc.colno})", lineno) from None
    if not isinstance(row, dict):
        raise LoaderError(where, f"expected a JSON object, got {type(row).__name__}", lineno)
    return row


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a JSON Lines file with their line numbers; the first bad line raises ``LoaderError``."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                yield lineno, parse_json_line(raw, str(path), lineno)


def _meta_key(key: str) -> str:
    return f"meta_{key}" if key in RESERVED_KEYS else key


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _split_front_matter(text: str) -> tuple[str, dict[str, str]]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, {}
    fields = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith(" "):
            fields[key.strip()] = value.strip().strip("'\"")
    return text[match.end() :], fields


def _first_h1(text: str) -> str | None:
    match = _H1.search(text)
    return match.group(1).strip() if match else None


_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)


def _decode_html(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        declared = _HTML_CHARSET.search(data[:4096])
        if declared:
            try:
                return data.decode(declared.group(1).decode("ascii"))
            except (LookupError, UnicodeDecodeError):
                pass
    return read_utf8(path)  # raises the UTF-8 error with its offset


_DROP_TAGS = ["script", "style", "noscript", "template", "head", "svg", "nav", "footer"]
_BLOCK_TAGS = [
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "pre",
    "blockquote",
    "table",
    "tr",
    "dt",
    "dd",
    "figcaption",
    "caption",
    "header",
    "aside",
    "form",
]


def html_to_markdown(soup: Any) -> str:
    """Visible text with headings as Markdown ``#`` lines and one paragraph per block element."""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for heading in soup.find_all(re.compile(r"^h[1-6]$")):
        text = heading.get_text(" ", strip=True)
        heading.replace_with(f"\n\n{'#' * int(heading.name[1])} {text}\n\n" if text else "")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" | ")
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", soup.get_text()))
    return "\n\n".join(p.rstrip(" |") for p in paragraphs if p.strip(" |"))


_LOADERS = {
    **dict.fromkeys(MARKDOWN_SUFFIXES, load_markdown),
    **dict.fromkeys(TEXT_SUFFIXES, load_text),
    **dict.fromkeys(HTML_SUFFIXES, load_html),
    **dict.fromkeys(PDF_SUFFIXES, load_pdf),
}
