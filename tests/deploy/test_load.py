"""The bounded load test of ``benchmarks/load_api.py``, smaller and in-process: concurrent
official OpenAI clients on loopback (half the turns streamed), then the benchmark's own log
audit: 0 errors, 0 lost or crossed rows. On SQLite (WAL, many writer threads) and PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("load_api", REPO / "benchmarks" / "load_api.py")
assert spec is not None and spec.loader is not None
load_api = sys.modules.setdefault("load_api", importlib.util.module_from_spec(spec))
spec.loader.exec_module(load_api)

CLIENTS, TURNS = 16, 4


def test_concurrent_clients_lose_and_cross_nothing(make_api, store_url: str) -> None:
    api = make_api(load_api.echo_generator(), store_url=store_url, max_concurrency=8)
    api.config.escalation.min_relevance = 0.0  # as in the benchmark: every turn is generated
    secrets = [api.customer(f"client-{n}") for n in range(CLIENTS)]
    per_client = asyncio.run(load_api._all_clients(api.url, secrets, TURNS, "fake", load_api.FAKE_QUESTIONS))
    run = load_api.Run("test", CLIENTS, TURNS, wall_s=1.0, results=[r for rs in per_client for r in rs])
    run.audit = load_api.audit(
        api.store, [api.key_ids[f"client-{n}"] for n in range(CLIENTS)], run.results, "fake"
    )
    summary = run.summary()
    assert summary["requests"] == CLIENTS * TURNS and summary["errors"] == 0, summary["first_errors"]
    assert summary["lost_rows"] == 0 and summary["crossed_rows"] == 0
    assert summary["logged_rows"] == summary["expected_rows"] == 2 * CLIENTS * TURNS
    assert sum(r.streamed for r in run.results) == CLIENTS * TURNS // 2


def test_the_audit_notices_lost_and_crossed_rows(make_api) -> None:
    api = make_api(load_api.echo_generator())
    api.config.escalation.min_relevance = 0.0
    secrets = [api.customer("a"), api.customer("b")]
    per_client = asyncio.run(load_api._all_clients(api.url, secrets, 2, "fake", load_api.FAKE_QUESTIONS))
    results = [r for rs in per_client for r in rs]
    key_ids = [api.key_ids["a"], api.key_ids["b"]]
    assert load_api.audit(api.store, key_ids, results, "fake")["crossed_rows"] == 0
    results[0].text, results[1].turn_id = "someone else's answer", "missing-turn"
    found = load_api.audit(api.store, key_ids, results, "fake")
    assert found["crossed_rows"] == 2
