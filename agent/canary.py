"""Canary: a candidate version serves a sticky share of conversations beside production.

Invariants:

* **Sticky.** A conversation's arm is a hash of the canary's version and the conversation id
  (``arm_for``): every turn of a conversation is answered by the same arm, on every worker and
  host, with no state to share; a new canary (another version) draws a new sample.
* **Live.** The canary is a small file beside the registry (``<home>/models/canary.json``), read
  on each request that asks for ``production`` (``route``), so starting, promoting or aborting
  one takes effect without restarting the server. Only ``production`` is split: a client that
  names a version gets that version.
* **Measured by version.** Every agent turn logs the ``model_version`` that wrote it, so the
  arms' KPIs are the log store's KPIs grouped by version, from the canary's start
  (``canary_status``), compared with a two-proportion test on the thumbs-up rate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agent.errors import InputError, ModelError

if TYPE_CHECKING:
    from agent.store import LogStore

CANARY = "canary"
PRODUCTION = "production"
MAX_SHARE = 50.0  # a canary is the smaller arm; past half, promote instead
ALPHA = 0.05
log = logging.getLogger(__name__)
_Trial = TypeVar("_Trial")


@dataclass(frozen=True)
class Canary:
    version: str
    share: float  # percent of conversations, (0, MAX_SHARE]
    production: str  # the production version when it started (the other arm)
    started_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "started_at": self.started_at.isoformat()}


def canary_path(home: Path) -> Path:
    return Path(home) / "models" / "canary.json"


def arm_for(conversation_id: str, version: str, share: float) -> str:
    """``CANARY`` for ``share`` percent of conversation ids (stable per version), else ``PRODUCTION``."""
    return CANARY if sticky(f"canary:{version}", conversation_id, share) else PRODUCTION


def sticky(salt: str, conversation_id: str, share: float) -> bool:
    """Whether ``conversation_id`` is in the ``share`` percent sample ``salt`` draws: the same
    answer on every turn, worker and host; another salt draws another sample."""
    digest = hashlib.sha256(f"{salt}:{conversation_id}".encode()).hexdigest()
    return int(digest[:12], 16) % 10_000 < round(share * 100)


def load_canary(home: Path) -> Canary | None:
    """The running canary, or None."""
    return read_trial(canary_path(home), Canary)


def read_trial(path: Path, kind: Callable[[str, float, str, datetime], _Trial]) -> _Trial | None:
    """The trial a live file beside the registry describes (a canary, a shadow), or None when
    there is no file; ModelError for one that cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        when = datetime.fromisoformat(data["started_at"])
        return kind(str(data["version"]), float(data["share"]), str(data["production"]), when)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read the {path.stem} at {path} ({exc!r}): fix or delete it") from None


def start_canary(home: Path, version: str, share: float) -> Canary:
    """Serve ``version`` to ``share`` percent of new and ongoing conversations (replacing any
    running canary). InputError for a share outside (0, 50] or the production version itself;
    NotFoundError for an unknown version; ModelError for a model that is never served."""
    production = check_trial(home, version, share, MAX_SHARE, CANARY)
    canary = Canary(version, float(share), production, datetime.now(UTC))
    write_trial(canary_path(home), canary.to_dict())
    return canary


def check_trial(home: Path, version: str, share: object, max_share: float, trial: str) -> str:
    """The production version a trial of ``version`` on ``share`` percent would run beside.
    InputError for a share outside (0, ``max_share``] or the production version itself;
    NotFoundError for an unknown version; ModelError for a model that is never served."""
    from agent.models import ModelRegistry

    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 < share <= max_share:
        raise InputError(f"--share must be a percentage above 0 and at most {max_share:g}", param="share")
    registry = ModelRegistry(home)
    candidate = registry.get(version)  # NotFoundError points at `models list`
    if candidate.kind == "reward":
        raise ModelError(f"{version} is a reward model: it scores answers and is never served")
    production = registry.production_name()
    if version == production:
        raise InputError(f"{version} is production already: a {trial} needs another version", param="version")
    return production


def end_canary(home: Path) -> Canary | None:
    """Stop the canary (every conversation gets production again); the one stopped, or None."""
    return end_trial(canary_path(home), Canary)


def end_trial(path: Path, kind: Callable[[str, float, str, datetime], _Trial]) -> _Trial | None:
    """Remove a trial's live file; the trial it described, or None."""
    trial = read_trial(path, kind)
    if trial is not None:
        path.unlink(missing_ok=True)
    return trial


def route(model: str, conversation_id: str, home: Path) -> str:
    """The model to serve ``model`` with in ``conversation_id``: the canary's version for its
    share of ``production`` conversations, else ``model`` unchanged (also when the canary file
    cannot be read: production keeps answering, and a warning is logged)."""
    if model != PRODUCTION:
        return model
    try:
        canary = load_canary(home)
    except ModelError as exc:  # a broken canary file must not stop production from answering
        log.warning("canary ignored: %s", exc)
        return model
    if canary is None or arm_for(conversation_id, canary.version, canary.share) != CANARY:
        return model
    return canary.version


def canary_status(store: LogStore, canary: Canary, alpha: float = ALPHA) -> dict[str, Any]:
    """Per-arm KPIs since the canary started, and two-proportion tests of the thumbs-up rates and
    of the share of answers that passed the answer check (groundedness)."""
    from agent.stats import two_proportions

    rows = {row["model_version"]: row for row in store.kpis(since=canary.started_at, by="model_version")}
    arms = {PRODUCTION: rows.get(canary.production, {}), CANARY: rows.get(canary.version, {})}

    def ups(row: dict[str, Any]) -> tuple[int, int]:
        n = int(row.get("thumbs") or 0)
        return round((row.get("thumbs_up_rate") or 0.0) * n), n

    def grounded(row: dict[str, Any]) -> tuple[int, int]:
        n = int(row.get("checked_answers") or 0)
        return round((row.get("grounded_rate") or 0.0) * n), n

    (up_p, n_p), (up_c, n_c) = ups(arms[PRODUCTION]), ups(arms[CANARY])
    test = two_proportions(up_p, n_p, up_c, n_c)
    significant = test.p_value is not None and test.p_value < alpha
    (ok_p, m_p), (ok_c, m_c) = grounded(arms[PRODUCTION]), grounded(arms[CANARY])
    grounding = two_proportions(ok_p, m_p, ok_c, m_c)
    grounding_significant = grounding.p_value is not None and grounding.p_value < alpha
    return {
        "canary": canary.to_dict(),
        "arms": {
            arm: {
                "version": canary.production if arm == PRODUCTION else canary.version,
                **{k: row.get(k) for k in _KPIS},
            }
            for arm, row in arms.items()
        },
        "thumbs_up_test": {**test.to_dict(), "alpha": alpha, "significant": significant},
        "grounded_test": {**grounding.to_dict(), "alpha": alpha, "significant": grounding_significant},
    }


_KPIS = (
    "conversations",
    "agent_turns",
    "thumbs",
    "thumbs_up_rate",
    "mean_rating",
    "escalation_rate",
    "deflection_rate",
    "mean_resolution_s",
    "grounded_rate",
)


def write_trial(path: Path, data: dict[str, Any]) -> None:
    # A temporary file renamed over the old one: a server reading it never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(path)
