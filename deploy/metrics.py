"""Prometheus metrics through ``prometheus_client``, in its multiprocess mode when the server runs
more than one worker process.

Invariants:

* **Counters never go backwards between scrapes**, whichever worker answers: with
  ``PROMETHEUS_MULTIPROC_DIR`` set (``supportloop serve --workers N`` with N > 1 sets it to a fresh
  folder, ``prepare_multiprocess``), every worker writes its values to files there and a scrape
  sums all of them (``MultiProcessCollector``); gauges are summed over live workers.
* Label values are bounded (paths are route templates, never raw URLs; model labels are
  registry versions), so a scraper's series count cannot grow with traffic.
* Values read at scrape time from a source (``gauge_source``: models loaded, readiness, batch
  statistics, the shadow worker's turns) that end in ``_total`` are counters: they are turned into increments of a real
  counter, so they too only grow across workers.
* One registry per ``Metrics`` (one per app), so tests can build many apps in one process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PREFIX = "supportloop_"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HELP = {
    "http_requests_total": "HTTP requests by method, route template and status.",
    "http_request_duration_seconds": "Time from request to the last byte of the response (streams included).",
    "completion_tokens_total": "Tokens generated, by model version.",
    "prompt_tokens_total": "Prompt tokens processed, by model version.",
    "chat_completions_total": "Chat completions answered, by model version and outcome.",
    "rate_limited_total": "Requests refused by the per-key rate limit.",
    "active_streams": "Streaming responses in progress.",
    "turns_in_flight": "Agent turns running or waiting for a worker thread.",
    "models_loaded": "Model versions loaded in this process.",
    "ready": "1 when the production model is loaded and the log store answers.",
    "batches_total": "Generation batches run by the batching generator.",
    "batched_requests_total": "Requests served by the batching generator (batches_total shares them).",
    "shadow_queued_total": "Production turns put on the shadow worker's queue for the shadowed version.",
    "shadow_dropped_total": "Turns the shadow worker dropped (its queue was full): never measured.",
    "shadow_failed_total": "Shadow turns that failed (the candidate did not load or answer).",
    "shadow_scored_total": "Shadow turns answered by the candidate and scored beside production.",
}
# Counters and their labels, known up front (``inc`` of another name declares it on first use).
COUNTERS = {
    "completion_tokens_total": ("model",),
    "prompt_tokens_total": ("model",),
    "chat_completions_total": ("model", "outcome"),
    "rate_limited_total": (),
}


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def prepare_multiprocess(workers: int, home: Path | None = None) -> str | None:
    """Before worker processes start: with more than one, point ``PROMETHEUS_MULTIPROC_DIR`` at an
    empty folder (the operator's, emptied, if set; else a new one) and return it."""
    if workers <= 1:
        return None
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        path = Path(folder)
        if path.exists():
            for item in path.glob("*.db"):  # the last run's values: counters restart from zero
                item.unlink()
        path.mkdir(parents=True, exist_ok=True)
    else:
        base = home / "run" if home is not None else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="supportloop-metrics-", dir=base))
    os.environ[MULTIPROC_ENV] = str(path)
    return str(path)


def remove_multiprocess(folder: str | None) -> None:
    if folder and Path(folder).name.startswith("supportloop-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)


class Metrics:
    """Request counts and latencies by route and status, tokens, streams, rate-limit refusals."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS):
        self.buckets = tuple(sorted(buckets))
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.RLock()
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._sources: list[Callable[[], dict[str, float]]] = []
        self._source_seen: dict[str, float] = {}
        self._requests = self._counter("http_requests_total", ("method", "path", "status"))
        self._latency = Histogram(
            PREFIX + "http_request_duration_seconds",
            HELP["http_request_duration_seconds"],
            ("path",),
            buckets=self.buckets,
            registry=self.registry,
        )
        for name, labels in COUNTERS.items():
            self._counter(name, labels)
        for name in ("active_streams", "turns_in_flight"):
            self._gauge(name, "livesum")

    # -- updates -------------------------------------------------------------------------------
    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        self._requests.labels(method=method, path=path, status=str(status)).inc()
        self._latency.labels(path=path).observe(seconds)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        counter = self._counter(name, tuple(sorted(labels)))
        (counter.labels(**labels) if labels else counter).inc(value)

    def add_gauge(self, name: str, delta: float) -> None:
        self._gauge(name, "livesum").inc(delta)

    def gauge_source(self, source: Callable[[], dict[str, float]]) -> None:
        """A callable read at scrape time (models loaded, batch statistics...)."""
        self._sources.append(source)

    def counter(self, name: str, **labels: str) -> float:
        """This process's value of a counter (tests)."""
        wanted = PREFIX + name
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == wanted and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    # -- exposition ----------------------------------------------------------------------------
    def render(self) -> str:
        """The Prometheus text format: this registry, or with several workers all of theirs."""
        self._read_sources()
        if not multiprocess():
            return generate_latest(self.registry).decode("utf-8")
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry).decode("utf-8")

    def _read_sources(self) -> None:
        values: dict[str, float] = {}
        for source in self._sources:
            values.update(source())
        with self._lock:
            for name, value in values.items():
                if name.endswith("_total"):  # a running total: its growth since the last scrape
                    grown = value - self._source_seen.get(name, 0.0)
                    self._source_seen[name] = value
                    if grown > 0:
                        self._counter(name, ()).inc(grown)
                else:
                    self._gauge(name, "livemax" if name == "ready" else "livesum").set(value)

    def _counter(self, name: str, labels: tuple[str, ...]) -> Counter:
        with self._lock:
            if name not in self._counters:
                base = name.removesuffix("_total")
                self._counters[name] = Counter(
                    PREFIX + base, HELP.get(name, name), labels, registry=self.registry
                )
            return self._counters[name]

    def _gauge(self, name: str, mode: str) -> Gauge:
        with self._lock:
            if name not in self._gauges:
                self._gauges[name] = Gauge(
                    PREFIX + name,
                    HELP.get(name, name),
                    registry=self.registry,
                    multiprocess_mode=mode,  # type: ignore[arg-type]
                )
            return self._gauges[name]
