"""Pure statistics of preference pairs: the reward model's accuracy, and the pairwise logistic
fits behind its length prior and its control features.

A pair is a preference row (``prompt``, ``chosen``, ``rejected``, TRL's conversational format);
scores are whatever a reward model gave each answer. Nothing here loads a model.

* ``pairwise_accuracy``: the share of pairs a scoring ranks right (ties count as wrong).
* ``fit_length_prior``: the length-only pairwise logistic weight on log(len(chosen) /
  len(rejected)), the offset a reward model with ``model.length_prior`` trains against.
* ``fit_control``: the weights of ``w_score * score + sum(w_f * f(prompt, answer))`` over the
  ``CONTROL_FEATURES`` (``length``: log1p(answer characters); ``groundedness``: the share of the
  answer's content words found in the prompt's passages), fit on training pairs only;
  ``controlled_rewards`` applies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from agent.errors import ConfigError
from training.heldout import split_user_message
from training.metrics import groundedness


def _log_length(prompt: Sequence[Mapping[str, str]], answer: str) -> float:
    return math.log1p(len(answer))


def _groundedness(prompt: Sequence[Mapping[str, str]], answer: str) -> float:
    passages, _question = split_user_message(prompt[-1]["content"]) if prompt else ("", "")
    score = groundedness(answer, passages)
    return 0.0 if score is None else score


CONTROL_FEATURES = {
    "length": ("log1p(answer characters)", _log_length),
    "groundedness": ("share of the answer's content words in the prompt's passages", _groundedness),
}


def control_features(names: Any) -> tuple[str, ...]:
    """The recipe's ``model.control`` as a tuple of known feature names (bad settings refused)."""
    if names in (None, False):
        return ()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"model.control must be a list of feature names, got {names!r}")
    unknown = [n for n in names if n not in CONTROL_FEATURES]
    if unknown:
        raise ConfigError(
            f"unknown control feature(s) {', '.join(unknown)}; known: {', '.join(CONTROL_FEATURES)}"
        )
    return tuple(dict.fromkeys(names))


def pairwise_accuracy(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> float:
    """Share of pairs where the chosen answer scores strictly higher (ties count as wrong)."""
    pairs = list(zip(chosen_scores, rejected_scores, strict=True))
    return sum(c > r for c, r in pairs) / len(pairs) if pairs else float("nan")


def _feature_difference(pair: Mapping[str, Any], name: str) -> float:
    """A control feature of the chosen answer minus that of the rejected one."""
    feature, prompt = CONTROL_FEATURES[name][1], pair.get("prompt") or []
    return feature(prompt, pair["chosen"][-1]["content"]) - feature(prompt, pair["rejected"][-1]["content"])


def fit_control(
    pairs: Sequence[Mapping[str, Any]],
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    features: Sequence[str] = ("length",),
    l2: float = 1e-3,
) -> dict[str, float]:
    """Weights ``{"score": w, feature: w, ...}`` of a pairwise logistic model fit on training
    pairs: P(chosen beats rejected) = sigmoid(w_score * score difference + sum of w_f * feature
    difference). What the features explain is credited to them; ``w_score`` says how much the
    reward model adds beyond them."""
    if not (len(pairs) == len(chosen_scores) == len(rejected_scores)) or not pairs:
        raise ValueError("fit_control needs one chosen and one rejected score per pair")
    features = control_features(list(features))
    w = _pairwise_logistic(
        [
            [c - r, *(_feature_difference(p, name) for name in features)]
            for p, c, r in zip(pairs, chosen_scores, rejected_scores, strict=True)
        ],
        l2,
    )
    return {"score": float(w[0]), **{name: float(x) for name, x in zip(features, w[1:], strict=True)}}


def controlled_rewards(
    weights: Mapping[str, float],
    prompt: Sequence[Mapping[str, str]],
    answers: Sequence[str],
    scores: Sequence[float],
) -> list[float]:
    """``w_score * score + sum(w_f * f(prompt, answer))`` for each answer (``fit_control``'s weights)."""
    return [
        weights["score"] * s
        + sum(w * CONTROL_FEATURES[name][1](prompt, a) for name, w in weights.items() if name != "score")
        for s, a in zip(scores, answers, strict=True)
    ]


def controlled_pair_rewards(
    pairs: Sequence[Mapping[str, Any]],
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    weights: Mapping[str, float],
) -> tuple[list[float], list[float]]:
    """Per pair, the controlled reward of chosen and rejected, ready for ``pairwise_accuracy``."""
    out: tuple[list[float], list[float]] = ([], [])
    for p, c, r in zip(pairs, chosen_scores, rejected_scores, strict=True):
        answers = [p["chosen"][-1]["content"], p["rejected"][-1]["content"]]
        rewards = controlled_rewards(weights, p.get("prompt") or [], answers, [c, r])
        out[0].append(rewards[0])
        out[1].append(rewards[1])
    return out


def log_length_ratio(pair: Mapping[str, Any]) -> float:
    """log(len(chosen) / len(rejected)) in characters, 1 added so that an empty answer is finite."""
    return math.log1p(len(pair["chosen"][-1]["content"])) - math.log1p(len(pair["rejected"][-1]["content"]))


def fit_length_prior(pairs: Sequence[Mapping[str, Any]], l2: float = 1e-3) -> float:
    """The length-only pairwise logistic weight on log(len(chosen) / len(rejected)), fit on
    ``pairs``: negative when raters prefer shorter answers. A reward model trained with this
    prior as an offset learns only what length does not explain."""
    if not pairs:
        raise ValueError("fit_length_prior needs at least one pair")
    return float(_pairwise_logistic([[log_length_ratio(p)] for p in pairs], l2)[0])


def _pairwise_logistic(features: Sequence[Sequence[float]], l2: float) -> Any:
    """Weights of P(chosen wins) = sigmoid(w . features) on pairs' feature differences. Each pair
    also enters flipped (negated features, label 0), so no intercept is needed. Newton steps on
    the L2-regularised log-loss; the problem is convex with few unknowns, so it converges in a few
    steps."""
    import numpy as np

    x = np.asarray(features, dtype=float)
    x = np.concatenate([x, -x])
    y = np.concatenate([np.ones(len(x) // 2), np.zeros(len(x) // 2)])
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) / len(x) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x / len(x) + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w
