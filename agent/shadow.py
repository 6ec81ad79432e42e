"""Shadow: a candidate version answers production's turns silently, and both answers are scored.

Invariants:

* **Never on the customer's path.** When production has answered a turn from passages, after its
  reply is sent and logged, ``ShadowRunner.offer`` reads the live file, draws the sample and puts
  a job on a bounded queue without waiting; it never raises. Everything else (loading the
  candidate, generating, scoring, writing) runs on one background thread per process
  (``ShadowWorker``). A full queue drops the turn; a failure is logged; both are counted and
  recorded as a row (``dropped`` / ``failed``), so the figures say what went unmeasured. The
  candidate's answer is never shown.
* **Live.** The shadow is a small file beside the registry (``<home>/models/shadow.json``), read at
  each turn like the canary's, so starting or stopping one takes effect in a running server.
* **The same turn.** The candidate gets the passages, conversation and limits production had, and
  its answer goes through the same output guard, grounding check and fallback
  (``Agent.shadow_answer``): what it would have sent. Only turns served by the production version
  the shadow started beside are shadowed (not a canary's, not a version a client named), for a
  sticky share of conversations.
* **Loaded once per process,** through the registry and ``build_generator`` like production, on the
  worker's thread when a turn first needs it; a version that fails to load is not retried until the
  shadow is started again.
* **Paired.** Both answers of a turn are scored alike (``score``: the grounding check's verdict,
  groundedness, length; a reward model's score is added by ``supportloop models shadow status``,
  the one place that loads reward models), and ``shadow_status`` compares the arms with the paired
  test on the turns both answered.
* **Beside one production.** Turns are paired only while production is the version the shadow
  started beside; after a rollback or another promotion none is, and ``shadow_status`` says so
  (``production_changed``): the shadow must be started again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.canary import check_trial, end_trial, read_trial, sticky, write_trial
from agent.citations import groundedness
from agent.errors import InputError, NotFoundError
from agent.grounding import Grounding, strip_lead
from knowledge.errors import one_line

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.generator import Generator
    from agent.prompt import Passage
    from agent.runtime import Agent
    from agent.store import LogStore
    from agent.types import ShadowAnswer

PRODUCTION = "production"
SHADOW = "shadow"
SCORED, FAILED, DROPPED = "scored", "failed", "dropped"
MAX_SHARE = 100.0
QUEUE_SIZE = 32  # turns waiting for the candidate; past this they are dropped, not queued
ALPHA = 0.05
METRICS = {"passed": "grounding pass rate", "groundedness": "groundedness", "reward": "reward"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shadow:
    version: str
    share: float  # percent of production's conversations, (0, MAX_SHARE]
    production: str  # the production version it answers beside
    started_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "started_at": self.started_at.isoformat()}


def shadow_path(home: Path) -> Path:
    return Path(home) / "models" / "shadow.json"


def load_shadow(home: Path) -> Shadow | None:
    """The running shadow, or None (ModelError for a file that cannot be read)."""
    return read_trial(shadow_path(home), Shadow)


def start_shadow(home: Path, version: str, share: float = MAX_SHARE) -> Shadow:
    """Have ``version`` answer ``share`` percent of production's conversations silently
    (replacing any running shadow). Nothing is written on error: InputError for a share outside
    (0, 100], an unknown version or the production version itself; ModelError for a reward model."""
    try:
        production = check_trial(home, version, share, MAX_SHARE, SHADOW)
    except NotFoundError as exc:  # a mistyped version is bad input here, like a bad share
        raise InputError(str(exc), param="version") from None
    shadow = Shadow(version, float(share), production, datetime.now(UTC))
    write_trial(shadow_path(home), shadow.to_dict())
    return shadow


def end_shadow(home: Path) -> Shadow | None:
    """Stop the shadow (turns already queued still finish); the one stopped, or None."""
    return end_trial(shadow_path(home), Shadow)


# ---------------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class ShadowTurn:
    """What production saw and sent on one turn: the candidate's inputs, production's side."""

    turn_id: str
    conversation_id: str
    version: str  # the version that served it
    message: str
    history: tuple[tuple[str, str], ...]
    passages: tuple[Passage, ...]
    prompt: tuple[dict[str, str], ...]  # production's messages (a reward model reads them)
    limits: dict[str, Any]  # the turn's generation limits (stop, max_tokens, ...)
    answer: str
    grounding: Grounding


def score(answer: str, verdict: Grounding, passages: Sequence[Passage]) -> dict[str, Any]:
    """One answer's scores: the grounding check's verdict, groundedness (share of its content
    words found in the passages; an extractive answer's lead-in left out) and length."""
    text = "\n".join(p.text for p in passages)
    return {
        "passed": verdict.passed,
        "action": verdict.action,
        "groundedness": groundedness(strip_lead(answer), text),
        "chars": len(answer),
    }


class ShadowWorker:
    """One background thread and a bounded queue of shadow jobs (see the module docstring).
    ``counts``: offered, dropped, done, failed, in this process (``totals`` names them as the
    rows do)."""

    def __init__(self, size: int = QUEUE_SIZE):
        self.queue: queue.Queue[_Job] = queue.Queue(maxsize=size)
        self.counts: Counter[str] = Counter()
        self._dropped: deque[_Job] = deque(maxlen=1000)  # recorded by the thread between jobs
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: _Job) -> bool:
        """Queue ``job`` without waiting; False (dropped, counted) when the queue is full."""
        with self._lock:
            self.counts["offered"] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="supportloop-shadow", daemon=True)
                self._thread.start()
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self.counts["dropped"] += 1
                self._dropped.append(job)
            log.warning("shadow: queue full, turn %s not shadowed", job.turn.turn_id)
            return False
        return True

    def totals(self) -> dict[str, int]:
        """Turns queued (offered and not dropped), dropped, failed and scored in this process."""
        counts = self.counts.copy()
        return {
            "queued": counts["offered"] - counts["dropped"],
            DROPPED: counts["dropped"],
            FAILED: counts["failed"],
            SCORED: counts["done"],
        }

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued job (and recorded drop) is done; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.queue.unfinished_tasks or self._dropped:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        _yield_cpu()
        while True:
            job = self.queue.get()
            try:
                job.run()
                self.counts["done"] += 1
            except Exception as exc:  # the customer has their reply: a failing shadow only logs
                self.counts["failed"] += 1
                log.warning(
                    "shadow %s failed on turn %s: %s", job.shadow.version, job.turn.turn_id, one_line(exc)
                )
                _quietly(job.record, FAILED, error=one_line(exc))
            finally:
                self._record_drops()
                self.queue.task_done()

    def _record_drops(self) -> None:
        while True:
            with self._lock:
                if not self._dropped:
                    return
                job = self._dropped.popleft()
            _quietly(job.record, DROPPED)


def _yield_cpu() -> None:
    """Lower this thread's priority (Linux: per thread; the engines' threads it starts inherit
    it), so that the candidate takes CPU time customers' turns leave."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: no matter
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        log.warning("shadow: could not record a turn: %s", one_line(exc))


_PROCESS_WORKER: ShadowWorker | None = None
_PROCESS_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str], Generator | Exception] = {}


def process_worker() -> ShadowWorker:
    """The one worker of this process, created on first use."""
    global _PROCESS_WORKER
    with _PROCESS_LOCK:
        if _PROCESS_WORKER is None:
            _PROCESS_WORKER = ShadowWorker()
        return _PROCESS_WORKER


def shadow_generator(config: AgentConfig, shadow: Shadow) -> Generator:
    """The candidate's generator, built like production's (``build_generator``) once per process
    and shadow; a failure to load is kept and raised again until the shadow restarts."""
    from agent.generator import build_generator

    key = (str(config.home), shadow.version, shadow.started_at.isoformat())
    with _PROCESS_LOCK:
        loaded = _LOADED.get(key)
    if loaded is None:
        try:
            loaded = build_generator(config, shadow.version)
        except Exception as exc:
            loaded = exc
        with _PROCESS_LOCK:
            _LOADED.clear()  # one candidate in memory: an earlier shadow's goes
            _LOADED[key] = loaded
    if isinstance(loaded, Exception):
        raise loaded
    return loaded


class ShadowRunner:
    """An agent's side of the shadow: which turns to offer, the candidate's generator (``load``;
    default ``shadow_generator``) and the worker (default: this process's)."""

    def __init__(self, load: Callable[[Shadow], Generator] | None = None, worker: ShadowWorker | None = None):
        self.load = load
        self.worker = worker or process_worker()

    def offer(self, agent: Agent, turn: ShadowTurn) -> bool:
        """Queue ``turn`` for the running shadow if it takes it; never raises, never waits."""
        try:
            shadow = load_shadow(agent.config.home)
            if (
                shadow is None
                or turn.version != shadow.production
                or not sticky(f"shadow:{shadow.version}", turn.conversation_id, shadow.share)
            ):
                return False
            return self.worker.submit(_Job(self, agent, shadow, turn))
        except Exception as exc:  # a broken shadow file, say: production has answered regardless
            log.warning("shadow: turn %s not offered: %s", turn.turn_id, one_line(exc))
            return False

    def generator(self, agent: Agent, shadow: Shadow) -> Generator:
        return self.load(shadow) if self.load is not None else shadow_generator(agent.config, shadow)


@dataclass
class _Job:
    runner: ShadowRunner
    agent: Agent
    shadow: Shadow
    turn: ShadowTurn

    def run(self) -> None:
        started = time.perf_counter()
        generator = self.runner.generator(self.agent, self.shadow)
        answer, verdict, usage = self.agent.shadow_answer(generator, self.turn)
        self.record(
            SCORED,
            answer=answer,
            latency_ms=(time.perf_counter() - started) * 1000,
            completion_tokens=usage.completion_tokens,
            **_prefixed(SHADOW, score(answer, verdict, self.turn.passages)),
        )

    def record(self, outcome: str, **values: Any) -> None:
        turn = self.turn
        self.agent.store.add_shadow_answer(
            {
                "id": uuid.uuid4().hex,
                "turn_id": turn.turn_id,
                "conversation_id": turn.conversation_id,
                "shadow_version": self.shadow.version,
                "production_version": turn.version,
                "outcome": outcome,
                "prompt": list(turn.prompt),
                **_prefixed(PRODUCTION, score(turn.answer, turn.grounding, turn.passages)),
                **values,
            }
        )


def _prefixed(arm: str, scores: dict[str, Any]) -> dict[str, Any]:
    return {f"{arm}_{name}": value for name, value in scores.items()}


# ---------------------------------------------------------------------------------- status


def shadow_status(
    store: LogStore,
    shadow: Shadow,
    reward_model: str | None = None,
    alpha: float = ALPHA,
    *,
    production: str | None = None,
) -> dict[str, Any]:
    """Both arms' figures on the turns the shadow scored since it started, the paired test of
    each score (shadow - production) and a one-sentence verdict. Rewards are those of
    ``reward_model`` (None: no reward model, the reward is left out). ``production``: the
    production version now (None: not checked); ``production_changed`` says what to do when it
    is no longer the one the shadow started beside."""
    from agent.stats import paired_test

    rows = store.shadow_answers(shadow.version, production=shadow.production, since=shadow.started_at)
    scored = [r for r in rows if r.outcome == SCORED]
    metrics = [m for m in METRICS if m != "reward" or reward_model is not None]
    # Rewards of another reward model (or none yet) are not this one's: left out of the reward.
    scored = [
        r
        if r.reward_model == reward_model
        else dataclasses.replace(r, production_reward=None, shadow_reward=None)
        for r in scored
    ]
    comparison: dict[str, Any] = {}
    for metric in metrics:
        pairs = _pairs(scored, metric)
        test = paired_test([s - p for p, s in pairs])
        comparison[metric] = {
            **test.to_dict(),
            "alpha": alpha,
            "better": bool(pairs) and test.p_better < alpha,
            "worse": bool(pairs) and test.p_worse < alpha,
        }
    return {
        "shadow": shadow.to_dict(),
        "turns": {outcome: sum(r.outcome == outcome for r in rows) for outcome in (SCORED, FAILED, DROPPED)},
        "reward_model": reward_model,
        "arms": {
            arm: {
                "version": shadow.version if arm == SHADOW else shadow.production,
                **_figures(scored, arm, metrics),
            }
            for arm in (PRODUCTION, SHADOW)
        },
        "comparison": comparison,
        "verdict": verdict(shadow.version, len(scored), comparison),
        "production_changed": production_changed(shadow, production),
    }


def production_changed(shadow: Shadow, production: str | None) -> str | None:
    """One sentence when production is no longer the version ``shadow`` started beside (a
    rollback or another promotion): no turn has been paired since, and what to do; else None."""
    if production is None or production == shadow.production:
        return None
    if production == shadow.version:
        return (
            f"Production is {production} now, the shadowed version itself: no turn has been shadowed "
            "since; stop the shadow (`supportloop models shadow stop`)."
        )
    return (
        f"Production changed from {shadow.production} to {production} since the shadow started: no "
        f"turn has been shadowed since; restart the shadow (`supportloop models shadow {shadow.version}`) "
        f"to compare it with {production}."
    )


def _value(row: ShadowAnswer, arm: str, metric: str) -> float | None:
    value = getattr(row, f"{arm}_{metric}")
    return None if value is None else float(value)


def _pairs(rows: Sequence[ShadowAnswer], metric: str) -> list[tuple[float, float]]:
    """(production, shadow) values of ``metric`` on the turns where both arms have one."""
    pairs = [(_value(r, PRODUCTION, metric), _value(r, SHADOW, metric)) for r in rows]
    return [(p, s) for p, s in pairs if p is not None and s is not None]


def _figures(rows: Sequence[ShadowAnswer], arm: str, metrics: Sequence[str]) -> dict[str, Any]:
    def mean(metric: str) -> float | None:
        values = [v for v in (_value(r, arm, metric) for r in rows) if v is not None]
        return sum(values) / len(values) if values else None

    actions = Counter(getattr(r, f"{arm}_action") for r in rows)
    names = {"passed": "pass_rate", "groundedness": "mean_groundedness", "reward": "mean_reward"}
    return {
        "turns": len(rows),
        **{names[m]: mean(m) for m in metrics},
        "mean_chars": mean("chars"),
        "actions": {action: actions[action] for action in ("sent", "extractive", "declined")},
    }


def verdict(version: str, turns: int, comparison: dict[str, Any]) -> str:
    """One sentence: worse, better or no different from production, on which scores."""
    if not turns:
        return f"No turn scored yet: {version} answers production's turns as they come."
    worse = [METRICS[m] for m, test in comparison.items() if test["worse"]]
    better = [METRICS[m] for m, test in comparison.items() if test["better"]]
    alpha = next(iter(comparison.values()))["alpha"]
    if worse:
        return (
            f"{version} is worse than production on {', '.join(worse)} over {turns} turns: do not promote it."
        )
    if better:
        return (
            f"{version} is better than production on {', '.join(better)} and worse on none over "
            f"{turns} turns: a candidate for `supportloop models promote {version}`."
        )
    return f"No significant difference between {version} and production over {turns} turns yet (at {alpha})."
