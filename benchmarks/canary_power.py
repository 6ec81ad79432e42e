"""The canary's significance test, simulated: how often does ``models canary status`` flag a real
difference in thumbs-up rate (power), and how often two identical versions (false positives)?

Each repeat draws ``--conversations`` new conversation ids (uuid4 hex, as the API makes them),
assigns each with the product's sticky hash (``agent.canary.arm_for``, ``--share`` percent to the
canary), gives each one customer thumbs drawn at its arm's rate, and runs the status test
(``agent.stats.two_proportions``, two-sided, ``--alpha``). Two scenarios, the same repeats each:

* ``effect``: production at ``--base-rate``, the canary ``--effect`` higher: the share of repeats
  flagged is the power;
* ``identical``: both arms at ``--base-rate``: the share flagged is the false-positive rate.

Both with a 95 % Wilson interval. Before the repeats, one repeat goes through a real log store
and ``agent.canary.canary_status`` (what the command line prints), and the benchmark checks that
its counts and p-value equal the simulation's for the same draw, so the figures are the
command's.

    python -m benchmarks.canary_power [--repeats 500 --conversations 4000 --share 10 --effect 0.07]
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import machine, write_result


def draw(rng: random.Random, n: int, share: float, rates: tuple[float, float]) -> list[tuple[str, str, int]]:
    """(conversation id, arm, thumbs) for ``n`` conversations; rates are (production, canary)."""
    from agent.canary import CANARY, arm_for

    out = []
    for _ in range(n):
        cid = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        arm = arm_for(cid, "canary", share)
        rate = rates[1] if arm == CANARY else rates[0]
        out.append((cid, arm, 1 if rng.random() < rate else -1))
    return out


def test_of(rows: list[tuple[str, str, int]]) -> Any:
    from agent.canary import CANARY
    from agent.stats import two_proportions

    prod = [t for _, arm, t in rows if arm != CANARY]
    cand = [t for _, arm, t in rows if arm == CANARY]
    return two_proportions(prod.count(1), len(prod), cand.count(1), len(cand))


def through_the_store(rows: list[tuple[str, str, int]], share: float) -> dict[str, Any]:
    """The same draw logged in a real store and read back by ``canary_status``."""
    from agent.canary import CANARY, Canary, canary_status
    from agent.store import LogStore

    canary = Canary("canary", share, "production", datetime.now(UTC) - timedelta(minutes=1))
    with tempfile.TemporaryDirectory(prefix="canary-power-") as tmp, LogStore(home=Path(tmp)) as store:
        for cid, arm, thumbs in rows:
            store.ensure_conversation(cid)
            store.add_turn(cid, "customer", "How often do I replace the filter?")
            version = "canary" if arm == CANARY else "production"
            turn = store.add_turn(cid, "agent", "Every 6 months.", model_version=version)
            store.add_feedback(str(turn.id), thumbs=thumbs)
        return canary_status(store, canary)


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(centre - half, 4), round(centre + half, 4)


def scenario(args: argparse.Namespace, rates: tuple[float, float], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    flagged, canary_sizes = 0, []
    for _ in range(args.repeats):
        test = test_of(draw(rng, args.conversations, args.share, rates))
        flagged += test.p_value is not None and test.p_value < args.alpha
        canary_sizes.append(test.trials[1])
    return {
        "rates": {"production": rates[0], "canary": rates[1]},
        "flagged": flagged,
        "share_flagged": round(flagged / args.repeats, 4),
        "wilson_95": wilson(flagged, args.repeats),
        "mean_canary_conversations": round(sum(canary_sizes) / len(canary_sizes), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--conversations", type=int, default=4000, help="With one thumbs each, per repeat.")
    parser.add_argument("--share", type=float, default=10.0, help="Percent of conversations on the canary.")
    parser.add_argument("--base-rate", type=float, default=0.70, help="Production's thumbs-up rate.")
    parser.add_argument("--effect", type=float, default=0.07, help="The canary's rate minus production's.")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="canary_power")
    args = parser.parse_args()

    # 1. One draw through the real store and the status the command prints: the same test.
    check_rows = draw(
        random.Random(args.seed), min(args.conversations, 300), args.share, (args.base_rate,) * 2
    )
    simulated, status = test_of(check_rows), through_the_store(check_rows, args.share)
    logged = status["thumbs_up_test"]
    assert tuple(logged["trials"]) == simulated.trials, (logged, simulated)
    assert logged["p_value"] == simulated.p_value, (logged, simulated)

    # 2. The two scenarios.
    effect = scenario(args, (args.base_rate, args.base_rate + args.effect), args.seed + 1)
    identical = scenario(args, (args.base_rate, args.base_rate), args.seed + 2)
    result = {
        "question": "power and false-positive rate of `models canary status`'s two-proportion test",
        "repeats": args.repeats,
        "conversations": args.conversations,
        "share_percent": args.share,
        "base_rate": args.base_rate,
        "effect": args.effect,
        "alpha": args.alpha,
        "power": effect["share_flagged"],
        "false_positive_rate": identical["share_flagged"],
        "scenarios": {"effect": effect, "identical": identical},
        "store_check": {"conversations": len(check_rows), "p_value": logged["p_value"], "equal": True},
        "machine": machine(),
    }
    write_result(args.name, result)


if __name__ == "__main__":
    main()
