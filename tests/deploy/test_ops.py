"""Operations endpoints: liveness, readiness while the model loads, Prometheus metrics that parse."""

from __future__ import annotations

import re
import threading

from agent.generator import ScriptedGenerator
from agent.runtime import Agent
from tests.agent.fakes import KeywordKnowledge
from tests.deploy.conftest import DOCS, FILTER_QUESTION, wait_until

SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))$"
)


def parse_exposition(text: str) -> dict[tuple[str, str], float]:
    """Every line is a HELP/TYPE comment or a valid sample; samples keyed by (name, labels)."""
    samples: dict[tuple[str, str], float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram") and name not in typed, line
            typed.add(name)
        elif line.startswith("# HELP "):
            continue
        else:
            match = SAMPLE.match(line)
            assert match, f"not a valid sample line: {line!r}"
            samples[(match["name"], match["labels"] or "")] = float(match["value"].replace("Inf", "inf"))
    return samples


def test_healthz_and_metrics_exposition(api) -> None:
    client = api.openai(api.customer("shop"))
    client.chat.completions.create(
        model="production", messages=[{"role": "user", "content": FILTER_QUESTION}]
    )
    list(
        client.chat.completions.create(
            model="production", messages=[{"role": "user", "content": FILTER_QUESTION}], stream=True
        )
    )
    with api.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json()["status"] == "ready"
        answer = http.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    samples = parse_exposition(answer.text)
    key = 'method="POST",path="/v1/chat/completions",status="200"'
    assert samples[("supportloop_http_requests_total", key)] == 2
    assert samples[("supportloop_completion_tokens_total", 'model="scripted"')] > 0
    assert samples[("supportloop_active_streams", "")] == 0
    assert samples[("supportloop_turns_in_flight", "")] == 0
    path = 'path="/v1/chat/completions"'
    buckets = [v for (n, labels), v in samples.items() if n.endswith("_bucket") and path in labels]
    assert buckets == sorted(buckets)  # cumulative
    count = samples[("supportloop_http_request_duration_seconds_count", path)]
    assert buckets[-1] == count == 2


def test_readyz_is_503_until_the_production_model_is_loaded(make_api, home) -> None:
    release = threading.Event()

    def slow_factory(name):
        release.wait(10)
        return Agent(ScriptedGenerator(), KeywordKnowledge(DOCS), None, None)

    api = make_api(factory=slow_factory)
    with api.http() as http:
        loading = http.get("/readyz")
        assert loading.status_code == 503 and loading.json()["error"]["code"] == "loading"
        assert http.get("/healthz").status_code == 200  # alive while loading
        release.set()
        wait_until(lambda: http.get("/readyz").status_code == 200)


def test_readyz_reports_a_failed_load(make_api) -> None:
    def broken_factory(name):
        from agent.errors import ModelNotFoundError

        raise ModelNotFoundError("cannot load model 'nope'")

    api = make_api(factory=broken_factory)
    with api.http() as http:
        answer = wait_until(lambda: (r := http.get("/readyz")).json()["error"]["code"] != "loading" and r)
    assert answer.status_code == 503 and "cannot load model" in answer.json()["error"]["message"]
