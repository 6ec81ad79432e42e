"""Reward-model scores of a shadow's answers (``agent.shadow``).

A reward model is a training artefact (``training.reward``), so it scores served turns here, when
``supportloop models shadow status`` asks, never on the serving path. Each scored turn's two
answers (production's and the shadow's) are scored against production's prompt, the one both
answered; a row keeps the scores with the reward model's name, so a turn is scored once per
reward model.
"""

from __future__ import annotations

from pathlib import Path

from agent.errors import InputError
from agent.shadow import SCORED, Shadow
from agent.store import LogStore


def reward_model_for(home: Path, requested: str | None = None) -> str | None:
    """The reward model to score with: ``requested`` (InputError unless it is a registered
    reward model), else the newest registered one, else None."""
    from agent.models import ModelRegistry

    versions = ModelRegistry(home).list()
    rewards = [v.name for v in versions if v.kind == "reward"]
    if requested is None:
        return rewards[-1] if rewards else None
    if requested not in rewards:
        known = ", ".join(rewards) or "none is registered (supportloop train reward)"
        raise InputError(f"--reward {requested!r} is not a registered reward model; reward models: {known}")
    return requested


def add_rewards(store: LogStore, shadow: Shadow, home: Path, reward_model: str) -> int:
    """Score the shadow's turns that ``reward_model`` has not scored yet; how many it scored."""
    from training.reward import load_registered_reward, reward_scores

    rows = [
        r
        for r in store.shadow_answers(shadow.version, production=shadow.production, since=shadow.started_at)
        if r.outcome == SCORED and r.reward_model != reward_model and r.prompt and r.production_answer
    ]
    if not rows:
        return 0
    model, tokenizer = load_registered_reward(reward_model, home)
    rewards = {}
    for row in rows:
        production, candidate = reward_scores(
            model, tokenizer, list(row.prompt or ()), [row.production_answer or "", row.answer or ""]
        )
        rewards[row.id] = (production, candidate)
    store.set_shadow_rewards(reward_model, rewards)
    return len(rewards)
