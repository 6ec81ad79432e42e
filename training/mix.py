"""A data mix: several conversation sources compiled and blended into one SFT file.

A mix recipe (YAML) lists sources; each is compiled by ``training.data.compile_dataset`` with
its own documents, persona, split and turn selection, then capped, augmented
(``training.augment``) and shuffled with one seed. Only each source's *training* side enters the
mix; validation sides are kept apart. Paths in a recipe may start with ``$SHARED`` (the public
data beside the checkout, ``../shared/data``) or ``$REPO``.

Invariants: the same recipe and seed give the same rows; every row is a serving prompt (the
compiler builds them with ``agent.prompt``); the manifest records each input file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.config import Persona
from agent.errors import DataError
from agent.prompt import Passage
from training import augment

REPO = Path(__file__).resolve().parents[1]
RECIPES = Path(__file__).resolve().parent / "recipes"
Row = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """One entry of a mix recipe."""

    name: str
    path: Path
    docs: Path | None = None
    persona: dict[str, str] = field(default_factory=dict)
    turns: str = "all"
    val_fraction: float = 0.2
    max_rows: int | None = None
    max_prompt_tokens: int | None = None
    distractors: float = 0.0  # share of rows shown with a passage that does not answer
    # copies per row, on average: 0.3 copies a seeded 30 % of the rows once, 2.5 copies every
    # row twice and half of them a third time (each copy drawn afresh)
    declines: float = 0.0  # rows copied as "passages silent -> decline"
    counterfactuals: float = 0.0  # rows copied with their figures changed
    clarifications: float = 0.0  # rows whose answer asks back, copied as they are
    standard_decline: bool = False  # declining answers -> the one decline the agent is taught
    repeat: int = 1  # each training row (augmentations included) this many times: weight a small source


def expand(value: str, shared: Path) -> Path:
    return Path(value.replace("$SHARED", str(shared)).replace("$REPO", str(REPO))).expanduser()


def load_mix(recipe: str | Path, shared: Path | None = None) -> tuple[list[Source], dict[str, Any]]:
    """(sources, settings) of a mix recipe: a name under ``training/recipes`` or a YAML path."""
    path = Path(recipe)
    if not path.is_file():
        path = RECIPES / f"{recipe}.yaml"
    if not path.is_file():
        raise DataError(f"no mix recipe {recipe!r} (a YAML path or a name in {RECIPES})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    shared = shared or REPO.parent / "shared" / "data"
    sources = []
    for item in data.get("sources") or []:
        item = dict(item)
        item["path"] = expand(item["path"], shared)
        if item.get("docs"):
            item["docs"] = expand(item["docs"], shared)
        source = Source(**item)
        if isinstance(source.repeat, bool) or not isinstance(source.repeat, int) or source.repeat < 1:
            raise DataError(f"{path}: source {source.name!r}: repeat must be a whole number of 1 or more")
        for name in ("distractors", "declines", "counterfactuals", "clarifications"):
            value = getattr(source, name)
            limit = 1.0 if name == "distractors" else 10.0
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= limit:
                raise DataError(
                    f"{path}: source {source.name!r}: {name} must be a number from 0 to {limit:g}"
                )
        sources.append(source)
    if not sources:
        raise DataError(f"{path}: a mix recipe needs at least one source")
    return sources, {k: v for k, v in data.items() if k != "sources"}


def shown(path: Path) -> str:
    """``path`` as a recipe writes it ($REPO/$SHARED relative), so manifests do not name a machine."""
    text = str(path)
    shared = str(REPO.parent / "shared" / "data")
    return text.replace(shared, "$SHARED").replace(str(REPO) + "/", "")


def digest(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(file.relative_to(path).as_posix().encode() + b"\0" + file.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def passage_pool(rows: list[Row]) -> list[Passage]:
    """Every distinct passage shown in ``rows`` (the distractor pool of a source)."""
    seen: dict[tuple[str, str], Passage] = {}
    for row in rows:
        parsed = augment.split_user(row["prompt"][-1]["content"])
        for p in parsed[0] if parsed else []:
            seen.setdefault((p.title or p.doc_id, p.text), p)
    return list(seen.values())


def augmented(source: Source, rows: list[Row], rng: random.Random) -> tuple[list[Row], dict[str, int]]:
    """``rows`` with the source's augmentations applied to seeded shares of them."""
    pool = passage_pool(rows)
    out, counts = [], {"distractors": 0, "declines": 0, "counterfactuals": 0, "clarifications": 0}
    for row in rows:
        if source.standard_decline:
            row = augment.standard_decline(row)
        changed = augment.with_distractors(row, pool, rng) if rng.random() < source.distractors else None
        out.append(changed or row)
        counts["distractors"] += changed is not None
        extras = (
            ("declines", source.declines, lambda r: augment.declined(r, pool)),
            ("counterfactuals", source.counterfactuals, lambda r: augment.counterfactual(r, rng)),
        )
        for name, share, make in extras:
            copies = int(share) + (rng.random() < share - int(share))
            for _ in range(copies):
                extra = make(row)
                if extra is not None:
                    out.append({**extra, "augmentation": name})
                    counts[name] += 1
        # Drawn only for rows that ask back, so recipes without it compile to the same rows.
        if source.clarifications and augment.asks_back(row):
            share = source.clarifications
            copies = int(share) + (rng.random() < share - int(share))
            out += [{**row, "augmentation": "clarifications"}] * copies
            counts["clarifications"] += copies
    return out, counts


def compile_source(source: Source, count_tokens: Callable[[str], int] | None) -> tuple[list[Row], list[Row]]:
    from training.data import compile_dataset

    dataset = compile_dataset(
        [source.path],
        docs=source.docs,
        persona=Persona(**source.persona) if source.persona else Persona(),
        val_fraction=source.val_fraction,
        turns=source.turns,
    )
    train, val = dataset.sft_train, dataset.sft_val
    if source.max_prompt_tokens and count_tokens is not None:
        limit = source.max_prompt_tokens
        train = [r for r in train if sum(count_tokens(m["content"]) for m in r["prompt"]) <= limit]
    return train, val


def build_mix(
    sources: list[Source], seed: int = 0, count_tokens: Callable[[str], int] | None = None
) -> tuple[list[Row], list[Row], dict[str, Any]]:
    """(training rows, validation rows, manifest) of a mix, shuffled with ``seed``."""
    rng = random.Random(seed)
    train_all: list[Row] = []
    val_all: list[Row] = []
    manifest: dict[str, Any] = {"seed": seed, "sources": []}
    for source in sources:
        train, val = compile_source(source, count_tokens)
        available = len(train)
        if source.max_rows is not None and len(train) > source.max_rows:
            train = rng.sample(train, source.max_rows)
        rows, counts = augmented(source, train, rng)
        train_all += [{**r, "source": source.name} for r in rows] * source.repeat
        val_all += [{**r, "source": source.name} for r in val]
        manifest["sources"].append(
            {
                "name": source.name,
                "path": shown(source.path),
                "sha256": digest(source.path),
                "docs": shown(source.docs) if source.docs else None,
                "docs_sha256": digest(source.docs) if source.docs else None,
                "rows_available": available,
                "rows_used": len(train),
                "rows_total": len(rows),
                **({"repeat": source.repeat} if source.repeat != 1 else {}),
                "validation_rows": len(val),
                **counts,
            }
        )
    rng.shuffle(train_all)
    manifest["train_rows"], manifest["val_rows"] = len(train_all), len(val_all)
    return train_all, val_all, manifest


def write_mix(out: Path, train: list[Row], val: list[Row], manifest: dict[str, Any]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"sft_train": out / "sft_train.jsonl", "sft_val": out / "sft_val.jsonl"}
    for key, rows in (("sft_train", train), ("sft_val", val)):
        with paths[key].open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    paths["manifest"] = out / "mix_manifest.json"
    paths["manifest"].write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return paths
