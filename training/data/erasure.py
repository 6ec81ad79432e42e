"""Compiled datasets against the log store's erasures: which were compiled before the latest one.

A dataset's ``manifest.json`` records ``compiled_at`` (older manifests: the file's modification
time). A dataset compiled before a conversation was erased may hold that conversation's rows, so
it is *stale*: ``data compile`` lists the stale datasets in the data home, and the trainers warn
when given one. Recompiling leaves erased conversations out (``compile_dataset``'s ``erased``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


def compiled_at(folder: Path) -> datetime | None:
    """When the dataset in ``folder`` was compiled, or None if ``folder`` holds no compiled dataset."""
    manifest = folder / "manifest.json"
    if not manifest.is_file() or not (folder / "sft_train.jsonl").is_file():
        return None
    try:
        value = json.loads(manifest.read_text(encoding="utf-8")).get("compiled_at")
        if isinstance(value, str):
            return datetime.fromisoformat(value)
    except (OSError, ValueError, AttributeError):
        pass
    return datetime.fromtimestamp(manifest.stat().st_mtime, UTC)


def is_stale(data: Path, latest_erasure: datetime | None) -> bool:
    """Whether ``data`` (a compiled folder, or a file in one) was compiled before ``latest_erasure``."""
    if latest_erasure is None:
        return False
    folder = data if data.is_dir() else data.parent
    when = compiled_at(folder)
    return when is not None and when < latest_erasure


def stale_datasets(home: Path, latest_erasure: datetime | None) -> list[Path]:
    """The compiled datasets under ``<home>/runs`` compiled before ``latest_erasure``."""
    runs = home / "runs"
    if latest_erasure is None or not runs.is_dir():
        return []
    return sorted(p for p in runs.iterdir() if p.is_dir() and is_stale(p, latest_erasure))


def stale_warning(data: Path, latest_erasure: datetime | None) -> str | None:
    """A one-line warning if ``data`` is stale, else None."""
    if not is_stale(data, latest_erasure):
        return None
    assert latest_erasure is not None
    return (
        f"{data} was compiled before a conversation was erased ({latest_erasure:%Y-%m-%d %H:%M} UTC) "
        "and may hold its rows: recompile it with `supportloop data compile`"
    )


def trained_before_erasure(
    metrics: dict[str, object], created_at: str, latest_erasure: datetime | None
) -> bool:
    """Whether a registry version was trained here (its metrics name its ``data``) before the
    latest erasure, so its weights may have seen the erased conversation. Shipped versions (no
    ``data``: trained elsewhere, on no customer's logs) are never flagged."""
    if latest_erasure is None or not metrics.get("data") or not created_at:
        return False
    try:
        created = datetime.fromisoformat(created_at)
    except ValueError:
        return False
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    return created < latest_erasure
