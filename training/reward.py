"""A reward model: a thin entry point over ``trl.RewardTrainer``, and the scoring around it.

Invariants:

* The model is ``AutoModelForSequenceClassification(num_labels=1)`` on the base, with
  ``pad_token_id`` set (the score is read at the last non-pad token); LoRA on the body with the
  ``score`` head trained in full, or the whole model with ``model.freeze_layers``.
* From a version with an adapter (an SFT model, say), that adapter is merged into the body
  first, and the trained reward model is saved merged, as a full model: it never depends on
  a parent's adapter at load time.
* It is registered as kind ``reward``: **never servable** (``supportloop models promote`` and
  the gate refuse it); it only scores.
* The pure pairwise statistics it uses (``pairwise_accuracy``, the length prior and control
  fits) live in ``training.pairwise``; the length analyses only the benchmarks use
  (``length_baseline``, ``fit_length_control``) in ``training.length_analysis``. Both are
  re-exported here.
* Length prior (``model.length_prior: true``): the length-only pairwise logistic weight ``b`` is
  fit on the training pairs first and enters the loss as a fixed offset (TRL's ``margin`` column,
  ``-b * log length ratio``), so the trained score learns what length does not explain. The
  reward is then ``score + b * log1p(answer characters)``: ``reward_scores`` adds the prior
  (``length_prior.json`` beside the adapter) unless asked for the bare score.
* Control features (``model.control: [length, groundedness]``, ``--control NAME``): after
  training, the model scores its own training pairs and a pairwise logistic model on the score
  difference and each feature's difference is fit on them (``pairwise.fit_control``). The reward is then
  ``w_score * score + sum(w_f * f(answer))`` (``reward_control.json`` beside the model), so
  what a feature explains is credited to it at the weight the training pairs give it, and the
  score keeps what it adds. Features (``CONTROL_FEATURES``): ``length``, log1p(answer
  characters); ``groundedness``, the share of the answer's content words found in the prompt's
  passages. Only training pairs enter the fit.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.config import Persona
from agent.errors import ConfigError
from training.data import Row, TrainingData, training_rows
from training.decoding import common_prefix
from training.length_analysis import (
    fit_length_control,
    length_baseline,
    length_controlled_scores,
    length_direction,
    length_ranks_right,
)
from training.pairwise import (
    CONTROL_FEATURES,
    control_features,
    controlled_pair_rewards,
    controlled_rewards,
    fit_control,
    fit_length_prior,
    log_length_ratio,
    pairwise_accuracy,
)
from training.recipes import lora_config, trl_config
from training.run import (
    Base,
    TrainResult,
    freeze_layers,
    load_tokenizer,
    resolve_base,
    run_training,
    save_and_register,
    start_run,
)

__all__ = [
    "CONTROL_FEATURES",
    "CONTROL_FILE",
    "LENGTH_PRIOR_FILE",
    "control_features",
    "controlled_pair_rewards",
    "controlled_rewards",
    "fit_control",
    "fit_length_control",
    "fit_length_prior",
    "length_baseline",
    "length_controlled_scores",
    "length_direction",
    "length_ranks_right",
    "load_registered_reward",
    "load_reward_model",
    "pairwise_accuracy",
    "reward_scores",
    "train_reward",
    "with_length_prior",
]

logger = logging.getLogger(__name__)
LENGTH_PRIOR_FILE = "length_prior.json"
CONTROL_FILE = "reward_control.json"


def train_reward(
    data: TrainingData,
    *,
    base: str | Path = "production",
    recipe: str | Path = "cpu",
    overrides: Mapping[str, Any] | None = None,
    out_dir: Path | None = None,
    home: Path | None = None,
    docs: Path | None = None,
    persona: Persona | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a scalar reward model on preference pairs and register it (kind ``reward``)."""
    from trl import RewardConfig, RewardTrainer

    # 1. Recipe + overrides, run folder.
    config, home, out_dir = start_run(
        "reward", recipe, overrides, home=home, out_dir=out_dir, progress=progress
    )
    features = control_features(config["model"].get("control"))
    truncate = config["model"].get("truncate", "left")
    if truncate not in ("left", "drop"):
        raise ConfigError(f"model.truncate must be 'left' or 'drop', got {truncate!r}")

    # 2. Pairs.
    train, _val, data_info = training_rows(
        data, "reward", docs=docs, persona=persona, max_examples=config["data"].get("max_examples")
    )

    # Length prior: the length-only fit becomes a fixed offset in the loss (TRL's margin column:
    # loss = -logsigmoid(r_chosen - r_rejected - margin)), so the score learns the rest.
    prior = None
    if config["model"].get("length_prior"):
        prior = fit_length_prior(train)
        train = [{**row, "margin": -prior * log_length_ratio(row)} for row in train]
        logger.info("reward: length prior %.4f per log character fit on %d pairs", prior, len(train))

    # 3. The base body with a fresh scalar head (the base's own adapter, if any, is merged first).
    start = resolve_base(base, home)
    tokenizer = load_tokenizer(start.model_dir)
    model, peft_config = _reward_model(start, tokenizer, config)
    dataset, cut = _pairs_dataset(train, tokenizer, config, truncate)
    trainer = RewardTrainer(
        model=model,
        args=trl_config(RewardConfig, config, "reward", out_dir),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    used = _pairs_used(trainer, len(train), config)

    # 4. Train, plot, register (kind reward: never served).
    metrics = run_training(trainer, out_dir, title=f"reward model on {used} pairs")
    metrics.update(
        train_rows=len(train),
        train_rows_used=used,
        answers_cut_left=cut,
        data=data_info["source"],
        recipe=config["source"],
    )
    if prior is not None:
        metrics["length_prior"] = round(prior, 6)
    trained: Any = trainer.model
    if start.adapter and peft_config is not None:
        # The body is the parent's adapter merged into the base: an adapter saved on its own would
        # be loaded onto the bare base and lose the parent's weights. Save the merged model.
        trained = trained.merge_and_unload()
    control = None
    if features:
        control = _fit_control_on(trained, tokenizer, train, features, prior or 0.0, config, progress)
        metrics["control"] = {k: round(v, 6) for k, v in control["weights"].items()}
        metrics["control_train_accuracy"] = round(control["train_accuracy"], 4)
    version, adapter_dir = save_and_register(
        trained, tokenizer, home=home, base=start, kind="reward", metrics=metrics, notes="reward model"
    )
    _write_reward_files(Path(adapter_dir), prior, control)
    return TrainResult(version, adapter_dir, metrics, out_dir / "loss.png", "reward", start.parent, out_dir)


def _reward_model(start: Base, tokenizer: Any, config: dict[str, Any]) -> tuple[Any, Any | None]:
    """The classifier (the base body, its adapter merged, a fresh scalar head) and the LoRA to
    hand TRL, or None with ``model.freeze_layers`` (the top layers and the head trained in full)."""
    from transformers import AutoModelForSequenceClassification

    model: Any = AutoModelForSequenceClassification.from_pretrained(start.model_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    if start.adapter:
        model = _with_merged_adapter(model, start.adapter)
    freeze = config["model"].get("freeze_layers")
    if freeze is None:
        return model, lora_config(config)
    model = freeze_layers(model, int(freeze))
    for param in model.score.parameters():
        param.requires_grad = True
    return model, None


def _pairs_dataset(
    train: Sequence[Row], tokenizer: Any, config: Mapping[str, Any], truncate: str
) -> tuple[Any, int]:
    """The pairs as a ``datasets.Dataset``, cut from the left to ``max_length`` unless
    ``model.truncate: drop``; and how many answers were cut."""
    from datasets import Dataset

    max_length = config["reward"].get("max_length")
    if truncate != "left" or not max_length:
        return Dataset.from_list(list(train)), 0
    tokenized = [_tokenized_pair(row, tokenizer, int(max_length)) for row in train]
    cut = sum(n for _, n in tokenized)
    if cut:
        logger.info("reward: %d answers cut from the left to max_length=%s", cut, max_length)
    return Dataset.from_list([row for row, _ in tokenized]), cut


def _pairs_used(trainer: Any, given: int, config: Mapping[str, Any]) -> int:
    """How many pairs TRL kept. It drops pairs longer than max_length (it does not truncate them;
    ``model.truncate: drop`` leaves that to it): say so, never silently."""
    used = len(trainer.train_dataset)
    if used < given:
        logger.warning(
            "reward: %d of %d pairs are longer than max_length=%s and were left out by TRL; shorten "
            "their passages or raise max_length",
            given - used,
            given,
            config["reward"].get("max_length"),
        )
    return used


def _write_reward_files(directory: Path, prior: float | None, control: Mapping[str, Any] | None) -> None:
    """The length prior and the control weights beside the saved model (``load_reward_model``)."""
    if prior is not None:
        (directory / LENGTH_PRIOR_FILE).write_text(
            json.dumps({"weight": prior, "feature": "log1p(answer characters)"}, indent=2)
        )
    if control is not None:
        (directory / CONTROL_FILE).write_text(json.dumps(control, indent=2))


def _tokenized_pair(row: Mapping[str, Any], tokenizer: Any, max_length: int) -> tuple[dict[str, Any], int]:
    """The row with TRL's ``chosen_ids``/``rejected_ids`` (the chat template of prompt + answer, as
    TRL tokenizes it), each cut from the left to ``max_length`` tokens like ``reward_scores`` cuts
    (the answer and the end of the prompt are kept), and how many of the two were cut."""
    out: dict[str, Any] = dict(row)
    n_cut = 0
    for key in ("chosen", "rejected"):
        ids = tokenizer.apply_chat_template([*row["prompt"], *row[key]], tokenize=True, return_dict=True)[
            "input_ids"
        ]
        n_cut += len(ids) > max_length
        out[f"{key}_ids"] = list(ids[-max_length:])
    return out, n_cut


def _fit_control_on(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[Mapping[str, Any]],
    features: Sequence[str],
    prior: float,
    config: Mapping[str, Any],
    progress: bool,
) -> dict[str, Any]:
    """Score the training pairs with the trained model (its length prior included) and fit the
    controlled reward's weights on them (``fit_control``)."""
    from tqdm.auto import tqdm

    model.eval()
    model.length_prior = prior
    max_length = int(config["reward"].get("max_length") or 1024)
    chosen, rejected = [], []
    for pair in tqdm(pairs, desc="reward control: scoring training pairs", unit="pair", disable=not progress):
        answers = [pair["chosen"][-1]["content"], pair["rejected"][-1]["content"]]
        c, r = reward_scores(model, tokenizer, pair["prompt"], answers, max_length, control=False)
        chosen.append(c)
        rejected.append(r)
    weights = fit_control(pairs, chosen, rejected, features)
    logger.info("reward: control fit on %d pairs: %s", len(pairs), weights)
    return {
        "weights": weights,
        "features": {name: CONTROL_FEATURES[name][0] for name in features},
        "fit_on_pairs": len(pairs),
        "train_accuracy": pairwise_accuracy(*controlled_pair_rewards(pairs, chosen, rejected, weights)),
    }


def _with_merged_adapter(model: Any, adapter: str) -> Any:
    """A causal-LM adapter merged into the classifier's body (its LM-head weights do not apply).

    The adapter's task type (causal LM) is dropped, so PEFT wraps the classifier in its plain
    ``PeftModel`` instead of the causal-LM class, which needs generation methods it lacks."""
    from peft import PeftConfig, PeftModel

    config = PeftConfig.from_pretrained(adapter)
    config.task_type = None
    return PeftModel.from_pretrained(model, adapter, config=config).merge_and_unload()


# ------------------------------------------------------------------------------- scoring


def load_reward_model(directory: str | Path, base_dir: str | None = None) -> tuple[Any, Any]:
    """A trained reward model (adapter on ``base_dir``, or a full model directory), in eval mode.

    A model trained with a length prior carries its weight as ``model.length_prior``; one with
    control features, their weights as ``model.reward_control`` (``{"score": w, feature: w}``)."""
    from transformers import AutoModelForSequenceClassification

    directory = Path(directory)
    tokenizer = load_tokenizer(str(directory))
    model: Any
    if (directory / "adapter_config.json").is_file():
        from peft import PeftModel

        base_dir = (
            base_dir or json.loads((directory / "adapter_config.json").read_text())["base_model_name_or_path"]
        )
        body = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1)
        body.config.pad_token_id = tokenizer.pad_token_id
        model = PeftModel.from_pretrained(body, str(directory))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(directory), num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    prior_file = directory / LENGTH_PRIOR_FILE
    model.length_prior = float(json.loads(prior_file.read_text())["weight"]) if prior_file.is_file() else 0.0
    control_file = directory / CONTROL_FILE
    if control_file.is_file():
        weights = json.loads(control_file.read_text())["weights"]
        control_features([k for k in weights if k != "score"])  # a file from elsewhere: refuse unknowns
        model.reward_control = {k: float(v) for k, v in weights.items()}
    return model, tokenizer


def load_registered_reward(version: str, home: Path, what: str = "the reward model") -> tuple[Any, Any]:
    """The registered reward model ``version`` (``load_reward_model``); ConfigError, naming the
    setting ``what``, for a version of another kind."""
    from agent.models import ModelRegistry, resolve_spec

    entry = ModelRegistry(home).get(version)
    if entry.kind != "reward":
        raise ConfigError(f"{what} {version!r} is a {entry.kind} model, not a reward model")
    resolved = resolve_spec(version, home=home)
    if resolved.adapter:
        return load_reward_model(resolved.adapter, resolved.base)
    return load_reward_model(resolved.base)


def reward_scores(
    model: Any,
    tokenizer: Any,
    prompt: list[dict[str, str]],
    answers: Sequence[str],
    max_length: int = 1024,
    length_prior: bool = True,
    control: bool = True,
) -> list[float]:
    """The reward of each answer to ``prompt`` (the prompt is cut from the left to fit): the
    model's score, plus its length prior, then weighed with its control features when it was
    trained with them (``length_prior=False``: the bare score; ``control=False``: no control).

    The token prefix that every answer's text shares (the prompt, usually most of the tokens)
    runs through the model once; each answer then runs on a copy of its key/value cache. When a
    text must be cut to ``max_length``, or there is a single answer, each text runs in full."""
    scores = _model_scores(model, tokenizer, prompt, answers, max_length)
    if not length_prior:
        return scores
    rewards = with_length_prior(model, answers, scores)
    weights = getattr(model, "reward_control", None)
    return controlled_rewards(weights, prompt, answers, rewards) if control and weights else rewards


def with_length_prior(model: Any, answers: Sequence[str], scores: Sequence[float]) -> list[float]:
    """Bare scores plus the model's length prior, ``weight * log1p(answer characters)`` (0 for a
    model trained without one)."""
    prior = getattr(model, "length_prior", 0.0)
    return [s + prior * math.log1p(len(a)) for s, a in zip(scores, answers, strict=True)]


def _model_scores(
    model: Any, tokenizer: Any, prompt: list[dict[str, str]], answers: Sequence[str], max_length: int
) -> list[float]:
    import copy

    import torch

    texts = [
        tokenizer(
            tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": a}], tokenize=False),
            add_special_tokens=False,
        )["input_ids"]
        for a in answers
    ]
    shared = len(common_prefix(texts))
    if len(texts) < 2 or max(map(len, texts)) > max_length or shared < 1:
        return [_score(model, ids[-max_length:]) for ids in texts]
    # The last token of the shortest text must stay in its own suffix: the score is read there.
    shared = min(shared, min(map(len, texts)) - 1)
    if shared < 1:
        return [_score(model, ids) for ids in texts]
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(
            input_ids=torch.tensor([texts[0][:shared]], device=device),
            attention_mask=torch.ones(1, shared, dtype=torch.long, device=device),
            use_cache=True,
        )
    return [
        _score(model, ids[shared:], past=copy.deepcopy(out.past_key_values), past_length=shared)
        for ids in texts
    ]


def _score(model: Any, ids: Sequence[int], past: Any = None, past_length: int = 0) -> float:
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(
            input_ids=torch.tensor([list(ids)], device=device),
            attention_mask=torch.ones(1, past_length + len(ids), dtype=torch.long, device=device),
            past_key_values=past,
            use_cache=past is not None,
        )
    return float(out.logits[0, 0])
