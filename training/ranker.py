"""`supportloop train ranker`: tune the embedding model that chooses the chunks the model is shown.

Pairs come from past conversations, redacted first (``training.data.redact``): each customer
message (after the customer's previous one, as the agent reads a follow-up) and the chunk its
answer came from. That chunk is the one the knowledge index finds for the agent's reply, among
the conversation's ``gold_doc_ids`` pages where it names them; a reply no chunk of those pages
holds gives no pair. The packaged all-MiniLM-L6-v2 gets a LoRA adapter (PEFT), trained with
in-batch negatives (``MultipleNegativesRankingLoss``) to put each message next to its chunk and
next to the chunk's sentence closest to the reply, the unit the re-rank scores
(``agent.grounding.rank_passages``).

Before it writes anything, the run is checked: the conversations must read cleanly, the index
must hold documents, and there must be ``MIN_PAIRS`` pairs. A share of the conversations
(``validation``, by conversation) is kept out of training, and on their messages the run measures
what the agent would show: how often the answering chunk is among the ``k`` chunks the re-rank
picks from the retriever's candidates, with the index's model and with the ranker, both in the
same run (``ranker.json``: ``metrics``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import DataError
from agent.ranker import RANKER_BASE, RANKER_FILES, check_ranker
from training.ship import hardware

MIN_PAIRS = 20
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Pair:
    conversation: str
    message: str  # the customer's message, after their previous one
    chunk: str  # the chunk the answer came from
    sentence: str  # its sentence closest to the answer


def read_conversations(paths: Sequence[Path]) -> list[Any]:
    """The conversations of ``paths`` (any format ``data compile`` reads that has turns), redacted;
    a DataError names the file and line of the first bad row."""
    from training.data.readers import read_source
    from training.data.records import SourceConversation
    from training.data.redact import Redactor

    conversations = []
    for path in paths:
        for record in read_source(Path(path)):
            if not isinstance(record, SourceConversation):
                raise DataError(
                    "a ranker trains on conversations (turns or messages), not on prepared TRL rows",
                    path=str(path),
                )
            conversations.append(record)
    redactor = Redactor()
    redactor.warm_conversations(conversations)
    return [redactor.conversation(c) for c in conversations]


def mine_pairs(conversations: Sequence[Any], kb: Any, embed: Callable[[list[str]], Any]) -> list[Pair]:
    """(message, answering chunk, its sentence closest to the answer) for every answered customer
    message whose answer the index can place."""
    import numpy as np

    pairs = []
    for conv in conversations:
        earlier: list[str] = []
        turns = list(conv.turns)
        for i, (role, text) in enumerate(turns):
            if role != "customer":
                continue
            answer = turns[i + 1][1] if i + 1 < len(turns) and turns[i + 1][0] == "agent" else None
            message = f"{earlier[-1]} {text}" if earlier else text
            earlier.append(text)
            if not answer or not text.strip():
                continue
            hits = kb.search(answer, k=30, distinct=False)
            if conv.gold_doc_ids:
                hits = [h for h in hits if h.doc_id in conv.gold_doc_ids]
            if not hits:
                continue
            chunk = hits[0].text
            sentences = [s for s in _SENTENCES.split(chunk) if len(s.split()) >= 3] or [chunk]
            vectors = np.asarray(embed([answer, *sentences]))
            sentence = sentences[int(np.argmax(vectors[1:] @ vectors[0]))]
            pairs.append(Pair(conv.public_id or conv.id, message, chunk, sentence))
    return pairs


def split_pairs(pairs: Sequence[Pair], validation: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Training and validation pairs, split by conversation (seeded)."""
    import random

    conversations = sorted({p.conversation for p in pairs})
    random.Random(seed).shuffle(conversations)
    held = set(conversations[: round(len(conversations) * validation)])
    return [p for p in pairs if p.conversation not in held], [p for p in pairs if p.conversation in held]


def shown_recall(pairs: Sequence[Pair], kb: Any, embed: Any, k: int, candidates: int) -> float | None:
    """The share of ``pairs`` whose answering chunk is among the ``k`` chunks the re-rank (with
    ``embed``) picks from the retriever's ``candidates``, as the agent picks them."""
    from agent.knowledge import ranked_search

    if not pairs:
        return None
    found = 0
    for pair in pairs:
        hits = ranked_search(kb, pair.message, [], k=k, candidates=candidates, embed=embed, one_per_page=True)
        found += any(h.text == pair.chunk for h in hits)
    return round(found / len(pairs), 3)


def _digest(paths: Sequence[Path]) -> str:
    """The data's digest as mixes record it (``training.mix.digest``); several files: of their digests."""
    from training.mix import digest

    digests = [digest(Path(p)) for p in paths]
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()


def train_ranker(
    conversations: Sequence[Path],
    kb: Any,
    out: Path,
    *,
    seed: int = 0,
    epochs: int = 3,
    learning_rate: float = 2e-4,
    lora_r: int = 16,
    validation: float = 0.15,
    k: int = 2,
    candidates: int = 10,
    progress: bool = False,
) -> dict[str, Any]:
    """Train a ranker on ``conversations`` against the index ``kb`` and write it to ``out``;
    returns its manifest. Checks everything before it writes anything."""
    if not 0 <= validation < 1:
        raise DataError(f"--validation must be at least 0 and below 1, not {validation}")
    if epochs < 1 or lora_r < 1 or learning_rate <= 0:
        raise DataError("--epochs and --lora-r must be 1 or more, and --learning-rate above 0")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not an empty directory; choose another --out")
    if kb.count() == 0:
        raise DataError("the knowledge index is empty: ingest the documents first (`supportloop kb ingest`)")
    convs = read_conversations(conversations)
    from agent.grounding import CachedEmbed

    base_embed = CachedEmbed(kb.embed)
    pairs = mine_pairs(convs, kb, base_embed)
    if len(pairs) < MIN_PAIRS:
        raise DataError(
            f"only {len(pairs)} customer messages have an answer the index can place; "
            f"a ranker needs {MIN_PAIRS} or more (more conversations, or the documents they answer from)"
        )
    train, held = split_pairs(pairs, validation, seed)
    if not train:
        raise DataError(f"--validation {validation} leaves no conversation to train on; lower it")

    started = time.perf_counter()
    model = _fit(
        train, seed=seed, epochs=epochs, learning_rate=learning_rate, lora_r=lora_r, progress=progress
    )
    seconds = round(time.perf_counter() - started, 1)

    staging = Path(tempfile.mkdtemp(prefix=".ranker-", dir=out.parent if out.parent.exists() else None))
    try:
        _save_adapter(model, staging)
        manifest = {
            "base": RANKER_BASE,
            "kind": "ranker",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {
                "conversations": [str(p) for p in conversations],
                "sha256": _digest(conversations),
                "conversations_read": len(convs),
                "pairs": len(pairs),
                "train_pairs": len(train),
                "validation_pairs": len(held),
            },
            "recipe": {
                "seed": seed,
                "epochs": epochs,
                "learning_rate": learning_rate,
                "lora_r": lora_r,
                "lora_alpha": 2 * lora_r,
                "loss": "MultipleNegativesRankingLoss",
                "batch_size": 32,
                "validation": validation,
            },
            "train": {"seconds": seconds, "hardware": hardware()},
            "metrics": {},
        }
        (staging / "ranker.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        from agent.ranker import load_ranker

        tuned = CachedEmbed(load_ranker(str(check_ranker(staging))))
        manifest["metrics"] = {
            "validation_pairs": len(held),
            "k": k,
            "candidates": candidates,
            "shown_recall_index_model": shown_recall(held, kb, base_embed, k, candidates),
            "shown_recall_ranker": shown_recall(held, kb, tuned, k, candidates),
        }
        load_ranker.cache_clear()
        (staging / "ranker.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        shutil.move(str(staging), str(out))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _fit(
    pairs: Sequence[Pair], *, seed: int, epochs: int, learning_rate: float, lora_r: int, progress: bool
) -> Any:
    import torch
    from peft import LoraConfig, TaskType
    from sentence_transformers import InputExample, SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from torch.utils.data import DataLoader

    from knowledge.encoding import default_model_path

    torch.manual_seed(seed)
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.add_adapter(
        LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=lora_r,
            lora_alpha=2 * lora_r,
            lora_dropout=0.05,
            target_modules=["query", "key", "value", "dense"],
        )
    )
    examples = [InputExample(texts=[p.message, text]) for p in pairs for text in (p.chunk, p.sentence)]
    generator = torch.Generator().manual_seed(seed)
    loader: DataLoader[Any] = DataLoader(examples, shuffle=True, batch_size=32, generator=generator)  # type: ignore[arg-type]
    model.fit(
        train_objectives=[(loader, MultipleNegativesRankingLoss(model))],
        epochs=epochs,
        warmup_steps=10,
        optimizer_params={"lr": learning_rate},
        show_progress_bar=progress,
    )
    return model


def _save_adapter(model: Any, directory: Path) -> None:
    """The adapter's two files (float16), its config pointing at the packaged model by name (portable)."""
    import torch
    from safetensors.torch import load_file, save_file

    model[0].auto_model.save_pretrained(str(directory))
    weights = directory / "adapter_model.safetensors"
    save_file({k: v.to(torch.float16).contiguous() for k, v in load_file(str(weights)).items()}, str(weights))
    config_path = directory / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = RANKER_BASE
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    for name in list(directory.iterdir()):
        if name.name not in RANKER_FILES:
            if name.is_dir():
                shutil.rmtree(name)
            else:
                name.unlink()
