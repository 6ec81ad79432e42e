"""The compiler's orchestration, and the one way any input becomes the rows a trainer reads.

``compile_dataset`` reads, redacts, grounds, builds, dedupes and splits, in that order (the
invariants are the package's: see ``training.data``). ``read_rows`` is the one way to turn an
input (a file, a ``CompiledDataset`` or rows) into one kind's training and validation rows:
a file of TRL rows of that kind is read as is (it was split when it was compiled), anything
else is compiled here with its stable split. ``training_rows`` selects a trainer's columns.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Persona
from agent.errors import DataError, InputError
from agent.prompt import Passage
from agent.store.erasure import erasure_key
from training.data.passages import resolve_passages
from training.data.provenance import IndexState, StaleCheck, leave_out_stale
from training.data.readers import detect_format, from_store, load_docs, load_rows, read_source
from training.data.records import PassThroughRow, Retriever, Row, SourceConversation, question_and_history
from training.data.redact import Redactor, public_values
from training.data.rows import (
    PromptOptions,
    count_ties,
    dedupe,
    is_handoff_example,
    is_validation,
    kto_rows,
    preference_rows,
    sft_rows,
    sft_target,
)

if TYPE_CHECKING:
    from agent.store import LogStore

SPLIT_FILES = ("sft_train", "sft_val", "pref_train", "pref_val", "kto_train", "kto_val")
# The fields that make a compiled row of each kind (identical fields: a duplicate).
ROW_FIELDS = {
    "sft": ("prompt", "completion"),
    "pref": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
}
# Which compiled split feeds which trainer, and the file format a trainer reads as is.
SPLIT_KIND = {"sft": "sft", "dpo": "pref", "reward": "pref", "kto": "kto", "grpo": "sft"}
FILE_FORMAT = {"sft": "sft", "dpo": "preference", "reward": "preference", "kto": "kto", "grpo": "sft"}
# The columns each TRL trainer reads; the compiler's bookkeeping columns are dropped. GRPO reads
# the completion as the reference some rewards compare with.
COLUMNS = {kind: ROW_FIELDS[split] for kind, split in SPLIT_KIND.items()}


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
        """Write ``<split>.jsonl`` for the six splits and ``manifest.json``; returns their paths.
        DataError naming ``out_dir`` if it cannot be written (not a folder, read-only, full)."""
        paths = {name: out_dir / f"{name}.jsonl" for name in SPLIT_FILES}
        paths["manifest"] = out_dir / "manifest.json"
        manifest = {**self.manifest, "files": {k: p.name for k, p in paths.items()}}
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            for name, rows in self.splits().items():
                write_rows(paths[name], rows)
            text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
            paths["manifest"].write_text(text, encoding="utf-8")
        except OSError as exc:
            raise DataError(
                f"cannot write the compiled data: {exc.strerror or exc}", path=str(out_dir)
            ) from None
        return paths


def write_rows(path: Path, rows: Iterable[Row]) -> None:
    # Written to a temporary name then renamed, so a reader never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


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
    erased: Collection[str] | None = None,
    index: IndexState | None = None,
) -> CompiledDataset:
    """Read, redact, ground, build, dedupe and split: see the package docstring.

    ``erased``: ``erasure_key``s of erased conversations, left out wherever they are read (default:
    the store's, when there is a store). A file of TRL rows is matched by its ``conversation_id``.

    ``split_salt``: draw a different train/validation split of the same size (``is_validation``);
    still by conversation id, so no conversation lands on both sides.

    ``budget_tokens``/``count_tokens`` window long histories exactly as the runtime does (pass the
    served model's context budget and token counter); without them the full history is kept.
    ``keep_public``: leave contact details that ``docs`` publishes unredacted (see ``Redactor``).

    ``index``: the knowledge index as it is now; with a ``store``, answers whose logged passages
    it no longer holds are left out unless re-reviewed since (``training.data.provenance``), and
    the store records what was found. None (or an empty index): not checked.
    """
    _check_options(sources, store, val_fraction, turns)
    skipped: list[str] | None = [] if skip_invalid else None
    stats: Counter[str] = Counter()

    # 1. Read every input (a folder means the conversation files in it), then the log store.
    files = _expand(sources)
    formats = {str(path): detect_format(path, lenient=skip_invalid) for path in files}
    conversations, pass_through = _read(files, formats, store, skipped, progress)
    if erased is None:
        erased = store.erasure_keys() if store is not None else frozenset()
    conversations, pass_through, erased_out = _drop_erased(conversations, pass_through, erased)
    stale = StaleCheck()
    if store is not None and index is not None:
        conversations, stale = leave_out_stale(conversations, index, store)

    # 2. The same conversation id in two places is allowed (its rows share a side) but reported.
    id_counts = Counter(c.id for c in conversations)
    duplicate_ids = sorted(cid for cid, n in id_counts.items() if n > 1)

    # 3. Redact PII before anything else touches the text (the company's published contacts stay).
    all_docs = load_docs(docs) if docs is not None else None
    redactor = Redactor(public_values(all_docs) if all_docs and keep_public else ())
    redactor.warm_conversations(conversations)
    conversations = [redactor.conversation(c) for c in conversations]
    pass_through = [redactor.row(r) for r in pass_through]

    # 4. Ground every answer in passages (logged, gold, retrieved); the documents are redacted too.
    conversations = _ground(conversations, all_docs, retriever, redactor, stats, progress)

    # 5. Build rows, keyed by the original conversation id for the split.
    options = PromptOptions(persona or Persona(), budget_tokens, count_tokens)
    built = _build(conversations, pass_through, options, turns, stats, progress)

    # 6. Dedupe identical rows (first kept).
    duplicates = {}
    for kind in built:
        built[kind], duplicates[kind] = dedupe(built[kind], ROW_FIELDS[kind])

    # 7. Split by conversation id.
    dataset = CompiledDataset()
    for kind, rows in built.items():
        for split_key, row in rows:
            side = "val" if is_validation(split_key, val_fraction, split_salt) else "train"
            getattr(dataset, f"{kind}_{side}").append(row)

    # 8. The manifest: what went in, what came out, and everything left out.
    dataset.manifest = {
        "sources": [*formats, *(["log store"] if store is not None else [])],
        "compiled_at": datetime.now(UTC).isoformat(),
        "erased_left_out": erased_out,
        "provenance_checked": bool(store is not None and index),
        "stale_left_out": stats["stale_left_out"],
        "stale_documents": stale.documents(),
        "stale_rereviewed": len(stale.rereviewed),
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
        "hand_off": {k: stats[k] for k in ("human_answers", "should_have_handed_off")},
        "skipped": skipped or [],
    }
    return dataset


def _check_options(sources: Sequence[Path], store: LogStore | None, val_fraction: float, turns: str) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if turns not in ("all", "last"):
        raise InputError(f"turns must be 'all' or 'last', got {turns!r}")
    if not sources and store is None:
        raise InputError("nothing to compile: give input files or a log store")


def _read(
    files: Sequence[Path],
    formats: dict[str, str],
    store: LogStore | None,
    skipped: list[str] | None,
    progress: bool,
) -> tuple[list[SourceConversation], list[PassThroughRow]]:
    """Every record of the files, then of the log store: (conversations, pass-through rows)."""
    records: list[SourceConversation | PassThroughRow] = []
    for path in _progress(files, progress, "reading"):
        records.extend(read_source(path, formats[str(path)], skipped))
    if store is not None:
        records.extend(from_store(store))
    conversations = [r for r in records if isinstance(r, SourceConversation)]
    return conversations, [r for r in records if isinstance(r, PassThroughRow)]


def _drop_erased(
    conversations: list[SourceConversation], pass_through: list[PassThroughRow], erased: Collection[str]
) -> tuple[list[SourceConversation], list[PassThroughRow], int]:
    """The records whose conversation was not erased, and how many records were left out."""
    if not erased:
        return conversations, pass_through, 0
    keep = [c for c in conversations if erasure_key(c.id) not in erased]
    rows = [r for r in pass_through if erasure_key(r.split_key) not in erased]
    return keep, rows, len(conversations) - len(keep) + len(pass_through) - len(rows)


def _ground(
    conversations: Sequence[SourceConversation],
    all_docs: dict[str, Passage] | None,
    retriever: Retriever | None,
    redactor: Redactor,
    stats: Counter[str],
    progress: bool,
) -> list[SourceConversation]:
    """Passages for every answer; only the documents some conversation cites are redacted and
    used, and retrieved passages are redacted as they arrive."""
    doc_index = None
    if all_docs is not None:
        cited = {doc_id for conv in conversations for doc_id in conv.gold_doc_ids}
        doc_index = {k: redactor.passage(p) for k, p in all_docs.items() if k in cited}
    safe_retriever = _redacting(retriever, redactor) if retriever is not None else None
    return [
        resolve_passages(c, doc_index, safe_retriever, stats)
        for c in _progress(conversations, progress, "grounding")
    ]


def _build(
    conversations: Sequence[SourceConversation],
    pass_through: Sequence[PassThroughRow],
    options: PromptOptions,
    turns: str,
    stats: Counter[str],
    progress: bool,
) -> dict[str, list[tuple[str, Row]]]:
    """(split key, row) pairs of each kind; a conversation's rows are keyed by its original id."""
    built: dict[str, list[tuple[str, Row]]] = {"sft": [], "pref": [], "kto": []}
    for conv in _progress(conversations, progress, "building rows"):
        rows = _rows(conv, options, turns)
        for kind in built:
            built[kind] += [(conv.id, row) for row in rows[kind]]
        if conv.left_out:  # what the stale answers would have given
            everything = _rows(dataclasses.replace(conv, left_out=frozenset()), options, turns)
            stats["stale_left_out"] += sum(len(everything[k]) - len(rows[k]) for k in rows)
        stats["ties_dropped"] += count_ties(conv)
        stats["answers_not_used_for_sft"] += _unused_answers(conv, turns)
        stats["human_answers"] += sum(role == "human" for role, _ in conv.turns)
        stats["should_have_handed_off"] += sum(is_handoff_example(conv, p) for p in conv.answer_positions())
    kinds = {"sft": "sft", "preference": "pref", "kto": "kto"}
    for item in pass_through:
        built[kinds[item.kind]].append((item.split_key, item.row))
    return built


def _rows(conv: SourceConversation, options: PromptOptions, turns: str) -> dict[str, list[Row]]:
    return {
        "sft": sft_rows(conv, options, turns),
        "pref": preference_rows(conv, options),
        "kto": kto_rows(conv, options),
    }


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
    return sum(
        (sft_target(conv, p) is None and not is_handoff_example(conv, p))
        or question_and_history(conv.turns, p) is None
        for p in positions
    )


def _progress(items: Sequence[Any], enabled: bool, what: str) -> Iterable[Any]:
    if not enabled:
        return items
    import sys

    from tqdm import tqdm

    return tqdm(items, desc=what, file=sys.stderr, leave=False, disable=None)


# ---------------------------------------------------------------------------------------------
# Any input -> one kind's rows
# ---------------------------------------------------------------------------------------------

# What a trainer takes: a conversation or TRL-rows file (or folder), a compiled dataset, or rows.
TrainingData = str | Path | CompiledDataset | Sequence[Row]


def read_rows(
    data: TrainingData,
    kind: str,
    *,
    docs: Path | None = None,
    persona: Persona | None = None,
    turns: str = "all",
    val_fraction: float = 0.2,
) -> tuple[list[Row], list[Row] | None, str]:
    """(training rows, validation rows, where they came from) of ``kind``'s split.

    ``data``: a ``CompiledDataset``; rows already in TRL format, or a file of them in ``kind``'s
    format (validation ``None``: they were split when they were compiled, so which side they are
    is the caller's to say); or any conversation file or folder the compiler reads (compiled
    here, with its stable split)."""
    split = SPLIT_KIND[kind]
    if isinstance(data, CompiledDataset):
        return getattr(data, f"{split}_train"), getattr(data, f"{split}_val"), "compiled dataset"
    if not isinstance(data, (str, Path)):
        return list(data), None, "rows"
    path = Path(data)
    if path.is_file() and detect_format(path) == FILE_FORMAT[kind]:
        return load_rows(path), None, str(path)
    compiled = compile_dataset([path], docs=docs, persona=persona, turns=turns, val_fraction=val_fraction)
    return getattr(compiled, f"{split}_train"), getattr(compiled, f"{split}_val"), str(path)


def training_rows(
    data: TrainingData,
    kind: str,
    *,
    docs: Path | None = None,
    persona: Persona | None = None,
    turns: str = "all",
    max_examples: int | None = None,
    seed: int = 0,
) -> tuple[list[Row], list[Row], dict[str, Any]]:
    """(train rows, validation rows, description) for trainer ``kind``, with only the columns it
    reads (``read_rows``: rows read as is are all training data); a seeded subset of
    ``max_examples`` rows when there are more."""
    train, val, source = read_rows(data, kind, docs=docs, persona=persona, turns=turns)
    if not train:
        raise DataError(f"no {kind} training rows (it needs {FILE_FORMAT[kind]} data)", path=source)
    total = len(train)
    if max_examples is not None and len(train) > max_examples:
        train = random.Random(seed).sample(train, int(max_examples))
    columns = COLUMNS[kind]
    missing = [c for c in columns if c not in train[0]]
    if missing:
        raise DataError(f"{kind} rows need {', '.join(columns)}; missing {', '.join(missing)}", path=source)
    keep = [{c: row[c] for c in columns} for row in train]
    keep_val = [{c: row[c] for c in columns} for row in val or [] if all(c in row for c in columns)]
    return keep, keep_val, {"source": source, "rows_available": total, "rows_used": len(keep)}
