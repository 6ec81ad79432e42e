"""Length analyses of preference pairs, used only by ``benchmarks/`` (``reward_mtrag``,
``plot_reward_splits``) and their tests: the length-only ranking a reward model must beat, and
the length-controlled reading of its scores. They move to ``benchmarks/`` with those scripts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.pairwise import controlled_pair_rewards, fit_control


def length_baseline(
    pairs: Sequence[Mapping[str, Any]], fit: Sequence[Mapping[str, Any]] | None = None
) -> float:
    """Pairwise accuracy of a length-only ranking (characters; ties count as wrong).

    Without ``fit``: "the longer answer is better". With ``fit`` (the training pairs): the
    direction, longer or shorter, that ranks ``fit`` better, the fair baseline to beat."""
    right = length_ranks_right(pairs, "longer" if fit is None else length_direction(fit))
    return sum(right) / len(right) if right else float("nan")


def length_ranks_right(pairs: Sequence[Mapping[str, Any]], direction: str) -> list[bool]:
    """Per pair: does "the ``direction`` (longer or shorter) answer wins" rank it right (ties: no)."""
    sign = 1 if direction == "longer" else -1
    return [sign * (len(p["chosen"][-1]["content"]) - len(p["rejected"][-1]["content"])) > 0 for p in pairs]


def length_direction(pairs: Sequence[Mapping[str, Any]]) -> str:
    """``"longer"`` or ``"shorter"``: which answer wins more often in ``pairs``."""
    longer = sum(len(p["chosen"][-1]["content"]) > len(p["rejected"][-1]["content"]) for p in pairs)
    shorter = sum(len(p["chosen"][-1]["content"]) < len(p["rejected"][-1]["content"]) for p in pairs)
    return "longer" if longer >= shorter else "shorter"


def fit_length_control(
    pairs: Sequence[Mapping[str, Any]],
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    l2: float = 1e-3,
) -> tuple[float, float]:
    """``(w_score, w_length)``: ``fit_control`` with length as the only control feature."""
    weights = fit_control(pairs, chosen_scores, rejected_scores, ("length",), l2)
    return weights["score"], weights["length"]


def length_controlled_scores(
    pairs: Sequence[Mapping[str, Any]],
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    weights: tuple[float, float],
) -> tuple[list[float], list[float]]:
    """``controlled_pair_rewards`` for ``fit_length_control``'s ``(w_score, w_length)``."""
    return controlled_pair_rewards(
        pairs, chosen_scores, rejected_scores, {"score": weights[0], "length": weights[1]}
    )
