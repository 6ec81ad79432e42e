"""Shadow mode (``agent.shadow``): a candidate answers production's turns silently on a background
worker; both answers are scored and stored; a slow, failing or dropped shadow never touches the
customer's reply; starting and stopping it take effect on a running Agent."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent import shadow as shadow_module
from agent.canary import sticky
from agent.config import load_config
from agent.errors import GenerationError, InputError, ModelError
from agent.generator import ScriptedGenerator
from agent.models import ModelRegistry
from agent.runtime import Agent
from agent.shadow import (
    DROPPED,
    FAILED,
    PRODUCTION,
    SCORED,
    SHADOW,
    Shadow,
    ShadowRunner,
    ShadowWorker,
    end_shadow,
    load_shadow,
    shadow_generator,
    shadow_path,
    shadow_status,
    start_shadow,
)
from agent.store import LogStore
from tests.agent.conftest import DOCS
from tests.agent.fakes import KeywordKnowledge

QUESTION = "How often should I replace the HEPA filter?"
GROUNDED = "Replace the HEPA filter every 6 months. [1]"


@pytest.fixture
def registry(home: Path, tiny_model_dir: Path) -> ModelRegistry:
    registry = ModelRegistry(home)
    for name, kind in (("v1", "sft"), ("v2", "sft"), ("rm", "reward")):
        registry.register(name=name, base_model=str(tiny_model_dir), kind=kind)
    registry.set_production("v1")
    return registry


def production_model(*replies: str) -> ScriptedGenerator:
    generator = ScriptedGenerator(replies, default=GROUNDED)
    generator.version = "v1"  # what build_generator names the registry's production
    return generator


def candidate_model(*replies: str, default: str = GROUNDED) -> ScriptedGenerator:
    generator = ScriptedGenerator(replies, default=default)
    generator.version = "v2"
    return generator


def make_agent(
    home: Path,
    generator: Any,
    candidate: Any,
    worker: ShadowWorker | None = None,
    store_url: str | None = None,
) -> Agent:
    config = load_config()
    config.escalation.min_relevance = 0.2
    runner = ShadowRunner(load=lambda shadow: candidate, worker=worker or ShadowWorker())
    store = LogStore(store_url, home=home)
    return Agent(generator, KeywordKnowledge(DOCS), store, config, shadow_runner=runner)


def rows(agent: Agent, shadow: Shadow) -> list[Any]:
    assert agent.shadow is not None and agent.shadow.worker.drain(10)
    return agent.store.shadow_answers(shadow.version, production=shadow.production, since=shadow.started_at)


# ---------------------------------------------------------------------------------- the file


@pytest.mark.parametrize(
    ("version", "share", "error", "needle"),
    [
        ("v2", 0, InputError, "--share"),
        ("v2", 100.5, InputError, "--share"),
        ("v2", True, InputError, "--share"),
        ("v1", 50, InputError, "production already"),
        ("nope", 50, InputError, "no model version named 'nope'"),
        ("rm", 50, ModelError, "reward model"),
    ],
)
def test_bad_shadows_are_refused_and_write_nothing(
    home: Path, registry: ModelRegistry, version: str, share: Any, error: type[Exception], needle: str
) -> None:
    with pytest.raises(error, match=needle):
        start_shadow(home, version, share)
    assert not shadow_path(home).exists()


def test_start_load_and_stop(home: Path, registry: ModelRegistry) -> None:
    shadow = start_shadow(home, "v2", 40)
    assert (shadow.version, shadow.share, shadow.production) == ("v2", 40.0, "v1")
    assert load_shadow(home) == shadow
    assert end_shadow(home) == shadow and load_shadow(home) is None and end_shadow(home) is None


# ---------------------------------------------------------------------------------- serving


def test_start_and_stop_take_effect_on_a_running_agent(home: Path, registry: ModelRegistry) -> None:
    candidate = candidate_model("The filter lasts 6 months. [1]")
    agent = make_agent(home, production_model(), candidate)
    before = agent.reply("c-1", QUESTION)
    shadow = start_shadow(home, "v2")
    during = agent.reply("c-1", QUESTION)
    end_shadow(home)
    after = agent.reply("c-1", QUESTION)

    (row,) = rows(agent, shadow)
    assert row.turn_id == during.turn_id and row.outcome == SCORED
    assert row.answer == "The filter lasts 6 months. [1]" and row.production_answer == during.text
    # The candidate's answer is never sent. (Production's, asked again in one conversation, only
    # says back its earlier answer: the check holds it and quotes the passage instead.)
    assert before.text == GROUNDED and all("every 6 months" in r.text for r in (during, after))
    assert not any("lasts" in reply.text for reply in (before, during, after))
    assert len(candidate.prompts) == 1
    assert [t.role for t in agent.store.turns("c-1")] == ["customer", "agent"] * 3  # nothing else logged


def test_the_candidate_sees_productions_passages_conversation_and_limits(
    home: Path, registry: ModelRegistry
) -> None:
    candidate = candidate_model()
    production = production_model()
    agent = make_agent(home, production, candidate)
    agent.reply("c-2", "What does the warranty cover?")
    shadow = start_shadow(home, "v2")
    agent.reply("c-2", QUESTION, max_tokens=3)
    (row,) = rows(agent, shadow)
    assert candidate.prompts == [production.prompts[-1]]  # same passages, history and question
    assert "What does the warranty cover?" in str(candidate.prompts[0]) and "HF-500" in str(
        candidate.prompts[0]
    )
    assert row.completion_tokens == 3  # the turn's max_tokens held for the candidate too
    assert row.prompt == production.prompts[-1]


def test_both_answers_pass_the_same_grounding_check(home: Path, registry: ModelRegistry) -> None:
    candidate = candidate_model("The filter costs $99 and lasts 3 years.")  # figures no passage has
    agent = make_agent(home, production_model(), candidate)
    shadow = start_shadow(home, "v2")
    reply = agent.reply("c-3", QUESTION)
    (row,) = rows(agent, shadow)
    assert reply.grounding is not None and reply.grounding["passed"] is True
    assert (row.production_passed, row.production_action) == (True, "sent")
    assert (row.shadow_passed, row.shadow_action) == (False, "extractive")
    assert row.answer.startswith("Here is what our help pages say:")  # what it would have sent
    assert "$99" not in row.answer
    assert row.production_groundedness is not None and row.production_groundedness > 0.5
    assert row.production_chars == len(reply.text) and row.shadow_chars == len(row.answer)


class FailingGenerator(ScriptedGenerator):
    def stream(self, messages: Sequence[dict[str, str]], options: Any, cancel: Any = None) -> Iterator[str]:
        raise GenerationError("the candidate's server is down")


def test_a_failing_candidate_never_reaches_the_customer(home: Path, registry: ModelRegistry) -> None:
    plain = make_agent(home, production_model(), None)
    expected = plain.reply("c-0", QUESTION)
    failing = FailingGenerator()
    failing.version = "v2"
    agent = make_agent(home, production_model(), failing)
    shadow = start_shadow(home, "v2")
    reply = agent.reply("c-4", QUESTION)
    (row,) = rows(agent, shadow)
    assert (reply.text, reply.grounding, reply.escalated) == (expected.text, expected.grounding, False)
    assert row.outcome == FAILED and "the candidate's server is down" in (row.error or "")
    assert agent.shadow is not None and agent.shadow.worker.counts["failed"] == 1
    assert [t.role for t in agent.store.turns("c-4")] == ["customer", "agent"]  # no "generation failed" note


def test_a_candidate_that_cannot_load_fails_its_turns_only(home: Path, registry: ModelRegistry) -> None:
    def cannot_load(shadow: Shadow) -> Any:
        raise GenerationError("no such adapter")

    config = load_config()
    config.escalation.min_relevance = 0.2
    runner = ShadowRunner(load=cannot_load, worker=ShadowWorker())
    agent = Agent(
        production_model(), KeywordKnowledge(DOCS), LogStore(home=home), config, shadow_runner=runner
    )
    shadow = start_shadow(home, "v2")
    assert agent.reply("c-5", QUESTION).text == GROUNDED
    assert [r.outcome for r in rows(agent, shadow)] == [FAILED]


class BlockedGenerator(ScriptedGenerator):
    """Starts, then waits until released (at most 10 s): a candidate far slower than production."""

    def __init__(self) -> None:
        super().__init__(default=GROUNDED)
        self.version = "v2"
        self.entered = threading.Event()
        self.release = threading.Event()

    def stream(self, messages: Sequence[dict[str, str]], options: Any, cancel: Any = None) -> Iterator[str]:
        self.entered.set()
        self.release.wait(10)
        yield from super().stream(messages, options, cancel)


def test_a_slow_candidate_never_delays_the_reply_and_a_full_queue_drops(
    home: Path, registry: ModelRegistry
) -> None:
    slow = BlockedGenerator()
    agent = make_agent(home, production_model(), slow, worker=ShadowWorker(size=1))
    shadow = start_shadow(home, "v2")
    agent.reply("c-6", QUESTION)
    assert slow.entered.wait(5)  # the worker holds turn 1
    started = time.perf_counter()
    replies = [agent.reply(f"c-{7 + i}", QUESTION) for i in range(2)]  # turn 2 queues, turn 3 drops
    assert time.perf_counter() - started < 3 and not slow.release.is_set()
    assert [r.text for r in replies] == [GROUNDED, GROUNDED]
    slow.release.set()
    found = rows(agent, shadow)
    assert sorted(r.outcome for r in found) == [DROPPED, SCORED, SCORED]
    dropped = next(r for r in found if r.outcome == DROPPED)
    assert dropped.turn_id == replies[1].turn_id and dropped.answer is None
    assert agent.shadow is not None and agent.shadow.worker.counts["dropped"] == 1


def test_a_broken_shadow_file_leaves_the_reply_alone(home: Path, registry: ModelRegistry) -> None:
    candidate = candidate_model()
    agent = make_agent(home, production_model(), candidate)
    start_shadow(home, "v2")
    shadow_path(home).write_text("{not json", encoding="utf-8")
    assert agent.reply("c-9", QUESTION).text == GROUNDED
    assert agent.shadow is not None and agent.shadow.worker.drain(5) and candidate.prompts == []


def test_only_productions_turns_in_the_share_are_shadowed(home: Path, registry: ModelRegistry) -> None:
    candidate = candidate_model()
    named = production_model()
    named.version = "v3"  # a client named another version (or a canary's arm served the turn)
    make_agent(home, named, candidate).reply("c-10", QUESTION)
    assert candidate.prompts == []
    agent = make_agent(home, production_model(), candidate)
    shadow = start_shadow(home, "v2", 50)
    ids = [uuid.uuid4().hex[:12] for _ in range(24)]
    for cid in ids:
        agent.reply(cid, QUESTION)
    shadowed = {r.conversation_id for r in rows(agent, shadow)}
    assert shadowed == {cid for cid in ids if sticky("shadow:v2", cid, 50)}
    assert 0 < len(shadowed) < len(ids)


def test_non_generated_turns_are_not_shadowed(home: Path, registry: ModelRegistry) -> None:
    candidate = candidate_model()
    agent = make_agent(home, production_model(), candidate)
    shadow = start_shadow(home, "v2")
    agent.reply("c-11", "hello!")  # small talk: no model call
    agent.reply("c-12", "I want to talk to a person")  # hand-off
    assert rows(agent, shadow) == [] and candidate.prompts == []


def test_an_erased_conversation_takes_its_shadow_rows(
    home: Path, registry: ModelRegistry, store_url: str
) -> None:
    agent = make_agent(home, production_model(), candidate_model(), store_url=store_url)
    shadow = start_shadow(home, "v2")
    reply = agent.reply("c-13", QUESTION)
    (row,) = rows(agent, shadow)
    agent.store.erase_conversation("c-13")
    assert rows(agent, shadow) == []
    # A row written after the erasure (the worker was late) is not written at all.
    late = {**{k: v for k, v in row.to_dict().items() if k not in ("production_answer", "created_at")}}
    assert agent.store.add_shadow_answer({**late, "id": "late", "turn_id": reply.turn_id}) is False
    assert rows(agent, shadow) == []


def test_the_candidate_loads_once_per_process_and_shadow(
    home: Path, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str | None] = []

    def build(config: Any, model: str | None = None) -> ScriptedGenerator:
        built.append(model)
        if model == "broken":
            raise GenerationError("cannot load broken")
        return candidate_model()

    monkeypatch.setattr("agent.generator.build_generator", build)
    monkeypatch.setattr(shadow_module, "_LOADED", {})
    config = load_config()
    first = Shadow("v2", 100.0, "v1", datetime.now(UTC))
    assert shadow_generator(config, first) is shadow_generator(config, first)
    assert built == ["v2"]  # through build_generator, like production, once
    again = Shadow("v2", 100.0, "v1", datetime.now(UTC))  # started again: loaded afresh
    shadow_generator(config, again)
    broken = Shadow("broken", 100.0, "v1", datetime.now(UTC))
    for _ in range(2):
        with pytest.raises(GenerationError, match="cannot load broken"):
            shadow_generator(config, broken)
    assert built == ["v2", "v2", "broken"]  # a failure is not retried on every turn


# ---------------------------------------------------------------------------------- status


def add_row(store: LogStore, shadow: Shadow, production: dict[str, Any], candidate: dict[str, Any]) -> None:
    cid = uuid.uuid4().hex[:12]
    store.ensure_conversation(cid)
    store.add_turn(cid, "customer", QUESTION)
    turn = store.add_turn(cid, "agent", GROUNDED, model_version=shadow.production)
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "turn_id": str(turn.id),
        "conversation_id": cid,
        "shadow_version": shadow.version,
        "production_version": shadow.production,
        "outcome": SCORED,
        "answer": "an answer",
    }
    for arm, scores in ((PRODUCTION, production), (SHADOW, candidate)):
        values.update({f"{arm}_{name}": value for name, value in scores.items()})
    assert store.add_shadow_answer(values)


def test_status_pairs_the_arms_on_the_same_turns(home: Path, registry: ModelRegistry) -> None:
    shadow = start_shadow(home, "v2")
    with LogStore(home=home) as store:
        for i in range(20):
            production = {"passed": i % 2 == 0, "action": "sent", "groundedness": 0.6, "chars": 40}
            candidate = {"passed": True, "action": "sent", "groundedness": 0.8, "chars": 50}
            add_row(store, shadow, production, candidate)
        status = shadow_status(store, shadow)
    production_arm, shadow_arm = status["arms"][PRODUCTION], status["arms"][SHADOW]
    assert (production_arm["version"], shadow_arm["version"]) == ("v1", "v2")
    assert production_arm["turns"] == shadow_arm["turns"] == 20 and status["turns"][SCORED] == 20
    assert production_arm["pass_rate"] == 0.5 and shadow_arm["pass_rate"] == 1.0
    assert shadow_arm["mean_groundedness"] == pytest.approx(0.8) and shadow_arm["mean_chars"] == 50
    assert "mean_reward" not in shadow_arm and "reward" not in status["comparison"]
    passed = status["comparison"]["passed"]
    assert (
        passed["n"] == 20
        and passed["mean"] == pytest.approx(0.5)
        and passed["better"]
        and not passed["worse"]
    )
    assert status["verdict"].startswith("v2 is better than production on grounding pass rate, groundedness")


def test_status_says_worse_when_it_is_and_reads_the_reward(home: Path, registry: ModelRegistry) -> None:
    shadow = start_shadow(home, "v2")
    with LogStore(home=home) as store:
        for _ in range(15):
            add_row(
                store,
                shadow,
                {"passed": True, "groundedness": 0.7, "reward": 1.0},
                {"passed": True, "groundedness": 0.7, "reward": 0.2},
            )
        ids = {r.id: (1.0, 0.2) for r in store.shadow_answers("v2", production="v1", since=shadow.started_at)}
        store.set_shadow_rewards("rm", ids)
        add_row(store, shadow, {"passed": True}, {"passed": True})  # scored by another reward model:
        (last,) = store.shadow_answers("v2", production="v1", since=shadow.started_at)[-1:]
        store.set_shadow_rewards("old-rm", {last.id: (-5.0, 5.0)})  # not counted in rm's reward
        status = shadow_status(store, shadow, reward_model="rm")
    assert status["arms"][SHADOW]["mean_reward"] == pytest.approx(0.2)
    assert status["comparison"]["reward"]["n"] == 15 and status["comparison"]["passed"]["n"] == 16
    assert status["comparison"]["reward"]["worse"] and not status["comparison"]["passed"]["worse"]
    assert status["verdict"] == "v2 is worse than production on reward over 16 turns: do not promote it."


def test_status_with_nothing_scored_says_so(home: Path, registry: ModelRegistry) -> None:
    shadow = start_shadow(home, "v2")
    with LogStore(home=home) as store:
        status = shadow_status(store, shadow)
    assert status["turns"] == {SCORED: 0, FAILED: 0, DROPPED: 0}
    assert status["verdict"].startswith("No turn scored yet")


def test_a_production_change_stops_the_pairing_and_status_says_to_restart(
    home: Path, registry: ModelRegistry, tiny_model_dir: Path
) -> None:
    candidate = candidate_model()
    shadow = start_shadow(home, "v2")
    registry.register(name="v3", base_model=str(tiny_model_dir), kind="sft")
    registry.set_production("v3")  # another promotion (or a rollback) that left the shadow running
    new_production = production_model()
    new_production.version = "v3"
    agent = make_agent(home, new_production, candidate)
    agent.reply("c-14", QUESTION)
    assert rows(agent, shadow) == [] and candidate.prompts == []  # v3's turns are not paired with v1's
    status = shadow_status(agent.store, shadow, production=registry.production_name())
    assert status["production_changed"] == (
        "Production changed from v1 to v3 since the shadow started: no turn has been shadowed since; "
        "restart the shadow (`supportloop models shadow v2`) to compare it with v3."
    )
    assert shadow_status(agent.store, shadow)["production_changed"] is None  # not checked

    restarted = start_shadow(home, "v2")  # what the line says to do: it pairs with v3 now
    agent.reply("c-15", QUESTION)
    assert [r.production_version for r in rows(agent, restarted)] == ["v3"]
    assert shadow_status(agent.store, restarted, production="v3")["production_changed"] is None


def test_status_says_to_stop_a_shadow_whose_version_became_production(
    home: Path, registry: ModelRegistry
) -> None:
    shadow = start_shadow(home, "v2")
    registry.set_production("v2")  # a rollback to it, say
    with LogStore(home=home) as store:
        line = shadow_status(store, shadow, production=registry.production_name())["production_changed"]
    assert line.startswith("Production is v2 now, the shadowed version itself")
    assert "stop the shadow (`supportloop models shadow stop`)" in line
