"""The bounded load test of ``python -m benchmarks.load_api``, smaller: concurrent official
OpenAI clients on loopback (half the turns streamed), then the benchmark's own log audit: 0
errors, 0 lost or crossed rows. In-process on SQLite and PostgreSQL, and once through the
benchmark's own server command (``python -m benchmarks.load_api serve --generator fake``)."""

from __future__ import annotations

import asyncio

from benchmarks import load_api

CLIENTS, TURNS = 16, 4


def test_concurrent_clients_lose_and_cross_nothing(make_api, store_url: str) -> None:
    api = make_api(load_api.echo_generator(), store_url=store_url, grounding=False, max_concurrency=8)
    api.config.escalation.min_relevance = 0.0  # as in the benchmark: every turn is generated
    secrets = [api.customer(f"client-{n}") for n in range(CLIENTS)]
    per_client = asyncio.run(load_api.all_clients(api.url, secrets, TURNS, "fake", load_api.FAKE_QUESTIONS))
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
    api = make_api(load_api.echo_generator(), grounding=False)
    api.config.escalation.min_relevance = 0.0
    secrets = [api.customer("a"), api.customer("b")]
    per_client = asyncio.run(load_api.all_clients(api.url, secrets, 2, "fake", load_api.FAKE_QUESTIONS))
    results = [r for rs in per_client for r in rs]
    key_ids = [api.key_ids["a"], api.key_ids["b"]]
    assert load_api.audit(api.store, key_ids, results, "fake")["crossed_rows"] == 0
    results[0].text, results[1].turn_id = "someone else's answer", "missing-turn"
    found = load_api.audit(api.store, key_ids, results, "fake")
    assert found["crossed_rows"] == 2


def test_the_server_command_serves_the_load_run() -> None:
    """``run_once`` starts ``python -m benchmarks.load_api serve --generator fake --home H --port P``
    in a subprocess, as the benchmark does, and audits what its clients got."""
    args = load_api.parse_args(["fake", "--clients", "3", "--turns", "2"])
    summary = load_api.run_once(args, args.clients, "off", "server command").summary()
    assert summary["requests"] == 6 and summary["errors"] == 0, summary["first_errors"]
    assert summary["lost_rows"] == summary["crossed_rows"] == 0
    assert summary["logged_rows"] == summary["expected_rows"] == 12
