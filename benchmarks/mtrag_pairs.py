"""MT-RAG rated responses as preference pairs, for the reward and preference benchmarks.

* The pairs come from ``../shared/data/mtrag/rated_responses.jsonl`` through the dataset
  compiler (a response's rating is the mean over annotators of the mean of the four criteria,
  ties dropped), split by task (``split_pairs``).
* ``fit`` cuts a pair until it fits a token budget (passages, then the earlier turns), on
  training and held-out pairs alike.
* The model-free rankings a reward must beat (length only, length + groundedness, both fit on
  the training pairs) and the paired comparison of two rankings: the discordant pairs and the
  exact two-sided sign test on them.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from benchmarks.common import CACHED_MODEL, require_data


def rated_responses() -> Path:
    return require_data("mtrag", "rated_responses.jsonl")


def split_pairs(salt: str | None = None) -> tuple[list[dict], list[dict]]:
    """(training, held-out) pairs, split by task: the compiler's split (30 % held out), or with
    ``salt`` a fresh draw of the same size, hashed from the task id as exported (``salt:id``,
    ``training.data.is_validation``). The order is the compiler's, its training pairs first, so
    that saved per-pair scores line up with a rebuild."""
    from training.data import compile_dataset, is_validation

    data = compile_dataset([rated_responses()], val_fraction=0.3)
    if not salt:
        return data.pref_train, data.pref_val
    pairs = data.pref_train + data.pref_val
    held_out = [r for r in pairs if is_validation(r["conversation_id"], 0.3, salt)]
    return [r for r in pairs if not is_validation(r["conversation_id"], 0.3, salt)], held_out


def shorten(row: dict, chars: int) -> dict:
    """The row with each passage in the last user message cut to ``chars`` characters."""
    from training.evaluate import split_user_message

    block, question = split_user_message(row["prompt"][-1]["content"])
    passages = [line[:chars] for line in block.split("\n") if line.strip()]
    user = {"role": "user", "content": "Passages:\n" + "\n".join(passages) + f"\n\nCustomer: {question}"}
    return {**row, "prompt": [*row["prompt"][:-1], user]}


def without_history(row: dict) -> dict:
    """The row with the earlier turns of the conversation dropped (system prompt and last message kept)."""
    prompt = row["prompt"]
    return {**row, "prompt": [m for m in prompt[:-1] if m["role"] == "system"] + [prompt[-1]]}


def fit(row: dict, chars: int, max_length: int) -> dict:
    """The first of these at which both answers fit ``max_length`` tokens with the prompt:
    passages cut to ``chars``, 200, 120, 60, then 0 characters; then the same without the earlier
    turns. The last try is kept even if it does not fit (TRL then drops the pair, and says so)."""
    levels = (chars, *(c for c in (200, 120, 60, 0) if c < chars))
    for history in (True, False):
        for c in levels:
            short = shorten(row, c) if history else without_history(shorten(row, c))
            if max(n_tokens(short, "chosen"), n_tokens(short, "rejected")) <= max_length:
                return short
    return short


def n_tokens(row: dict, key: str) -> int:
    """Tokens of the row's prompt and its ``key`` answer in the default model's chat template."""
    encoded = tokenizer().apply_chat_template(row["prompt"] + row[key], tokenize=True, return_dict=True)
    return len(encoded["input_ids"])


@functools.cache
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(CACHED_MODEL))


def features_only(train: list[dict], held_out: list[dict], names: list[str]) -> tuple[dict, list[bool]]:
    """The control features without any model score: weights fit on the training pairs, and per
    held-out pair whether they rank the chosen answer first (what a reward model must add to)."""
    from training.reward import controlled_pair_rewards, fit_control

    weights = fit_control(train, [0.0] * len(train), [0.0] * len(train), names)
    zeros = [0.0] * len(held_out)
    chosen, rejected = controlled_pair_rewards(held_out, zeros, zeros, weights)
    return weights, [c > r for c, r in zip(chosen, rejected, strict=True)]


def model_free(train: list[dict], held_out: list[dict]) -> dict[str, list[bool]]:
    """Per held-out pair: the fitted length direction, and length + groundedness fit on train."""
    from training.reward import length_direction, length_ranks_right

    return {
        "length": length_ranks_right(held_out, length_direction(train)),
        "features": features_only(train, held_out, ["length", "groundedness"])[1],
    }


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial (sign) test p-value of ``wins`` against ``losses`` at 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def versus(right: dict[str, list[bool]], method: str, baseline: str) -> dict:
    """Discordant pairs of ``method`` against ``baseline`` and the exact sign test on them."""
    wins = sum(r and not x for r, x in zip(right[method], right[baseline], strict=True))
    losses = sum(x and not r for r, x in zip(right[method], right[baseline], strict=True))
    return {
        "method": method,
        "wins": wins,
        "losses": losses,
        "sign_test_p": round(sign_test(wins, losses), 4),
    }
