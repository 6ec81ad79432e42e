"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Invariants: label values are bounded (paths are route templates, never raw URLs; model labels are
registry versions), so a scraper's series count cannot grow with traffic. Counters only grow; a
histogram's buckets are cumulative and end with ``+Inf`` equal to ``_count``. Updates come from
the event loop and from worker threads, so every change happens under one lock.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Request counts and latencies by route and status, tokens, streams, rate-limit refusals."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS):
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._gauges: dict[str, float] = defaultdict(float)
        self._hist: dict[Labels, list[float]] = {}  # bucket counts..., sum, count
        self._gauge_sources: list[Callable[[], dict[str, float]]] = []

    # -- updates -------------------------------------------------------------------------------
    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self._counters["http_requests_total"][
                (("method", method), ("path", path), ("status", str(status)))
            ] += 1
            row = self._hist.setdefault((("path", path),), [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    row[i] += 1
            row[-2] += seconds
            row[-1] += 1

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._counters[name][tuple(sorted(labels.items()))] += value

    def add_gauge(self, name: str, delta: float) -> None:
        with self._lock:
            self._gauges[name] += delta

    def gauge_source(self, source: Callable[[], dict[str, float]]) -> None:
        """A callable read at scrape time (models loaded, batch statistics...)."""
        self._gauge_sources.append(source)

    def counter(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    # -- exposition ----------------------------------------------------------------------------
    def render(self, prefix: str = "supportloop_") -> str:
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self._counters.items()):
                lines += [f"# HELP {prefix}{name} {HELP.get(name, name)}", f"# TYPE {prefix}{name} counter"]
                lines += [f"{prefix}{name}{_labels(k)} {_num(v)}" for k, v in sorted(series.items())]
            gauges = dict(self._gauges)
            hist = {k: list(v) for k, v in self._hist.items()}
        for source in self._gauge_sources:
            gauges.update(source())
        for name, value in sorted(gauges.items()):
            kind = "counter" if name.endswith("_total") else "gauge"  # sources may report counters
            lines += [f"# HELP {prefix}{name} {HELP.get(name, name)}", f"# TYPE {prefix}{name} {kind}"]
            lines.append(f"{prefix}{name} {_num(value)}")
        name = f"{prefix}http_request_duration_seconds"
        lines += [f"# HELP {name} {HELP['http_request_duration_seconds']}", f"# TYPE {name} histogram"]
        for key, row in sorted(hist.items()):
            for bound, count in zip(
                (*self.buckets, math.inf), (*row[: len(self.buckets)], row[-1]), strict=True
            ):
                lines.append(f"{name}_bucket{_labels((*key, ('le', _num(bound))))} {_num(count)}")
            lines.append(f"{name}_sum{_labels(key)} {_num(row[-2])}")
            lines.append(f"{name}_count{_labels(key)} {_num(row[-1])}")
        return "\n".join(lines) + "\n"


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
}


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))
