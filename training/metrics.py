"""The evaluation's measures, pure: answers and references in, numbers out.

ROUGE-L F1 (``rouge-score``, stemmed, mean over answers), corpus BLEU (``sacrebleu``),
groundedness (share of an answer's content words found in the passages it was shown), behaviour
(declines when it should) and, from the summed negative log-likelihood the decoding engine
returns, perplexity. ``score`` gives every metric of one (model, setting); see
``training.evaluate`` for the protocol they belong to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from agent.citations import groundedness, says_unknown
from agent.prompt import Message
from training.heldout import EvalExample, split_user_message

METRICS = ("rougeL_f1", "bleu", "perplexity", "groundedness", "behaviour_accuracy", "answer_chars")


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]
    return sum(scores) / len(scores) if scores else float("nan")


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def behaviour_scores(predictions: Sequence[str], expected: Sequence[str | None]) -> dict[str, float | None]:
    """Whether each answer declines (hands over) when it should: accuracy, decline precision/recall."""
    pairs = [(says_unknown(p), e == "decline") for p, e in zip(predictions, expected, strict=True) if e]
    if not pairs:
        return {"behaviour_accuracy": None, "decline_precision": None, "decline_recall": None}
    declined = [want for said, want in pairs if said]
    wanted = [said for said, want in pairs if want]
    return {
        "behaviour_accuracy": sum(s == w for s, w in pairs) / len(pairs),
        "decline_precision": sum(declined) / len(declined) if declined else None,
        "decline_recall": sum(wanted) / len(wanted) if wanted else None,
    }


def score(
    predictions: Sequence[str],
    examples: Sequence[EvalExample],
    prompts: Sequence[Sequence[Message]],
    nll: tuple[float, int] | None = None,
) -> dict[str, Any]:
    """Every metric of one (model, setting), from its answers and the prompts it was shown."""
    references = [e.reference for e in examples]
    grounded = [
        g
        for p, prompt in zip(predictions, prompts, strict=True)
        if (g := groundedness(p, split_user_message(prompt[-1]["content"])[0])) is not None
    ]
    metrics: dict[str, Any] = {
        "rougeL_f1": rouge_l(predictions, references),
        "bleu": bleu(predictions, references),
        "perplexity": math.exp(nll[0] / nll[1]) if nll and nll[1] else None,
        "groundedness": sum(grounded) / len(grounded) if grounded else None,
        "answer_chars": sum(map(len, predictions)) / len(predictions) if predictions else None,
    }
    if nll is not None:  # the sums behind perplexity, so reports over parts of a set can be merged
        metrics.update(nll_sum=float(nll[0]), nll_tokens=int(nll[1]))
    metrics.update(behaviour_scores(predictions, [e.expected for e in examples]))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
