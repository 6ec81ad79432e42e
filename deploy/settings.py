"""Settings of the HTTP service, from ``SUPPORTLOOP_API__<KEY>`` environment variables.

The agent's own settings (model, store URL, generation backend, guardrails...) stay in
``agent.config``; these are only the service's: where it listens, its limits and its batching.
Values are parsed as YAML scalars like the agent's (``SUPPORTLOOP_API__RATE_LIMIT_PER_MINUTE=60``).
An unknown ``SUPPORTLOOP_API__*`` name is an error: a typo in a limit must not pass silently.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from agent.errors import ConfigError

ENV_PREFIX = "SUPPORTLOOP_API__"


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 1_000_000  # larger request bodies -> 413
    max_messages: int = 100  # messages in one chat completion request -> 400 above
    max_content_chars: int = 20_000  # per earlier (history) message; the last one: guardrails.max_input_chars
    rate_limit_per_minute: float = 120.0  # per API key, token bucket; 0 disables
    rate_limit_burst: int = 30
    max_concurrency: int = 32  # agent turns running at once (threads); more wait in line
    max_models: int = 2  # model versions kept loaded at once (least recently used dropped)
    batching: bool = True  # batch concurrent generations of a local model (deploy/batching.py)
    # ... on the compiled engine too, in buckets of prompts whose lengths differ by at most
    # batch_bucket_tokens (CTranslate2 has no left padding: deploy/batching.py); 8 sample prompts
    # at once: 1.38x the one-at-a-time token rate bucketed, 0.92x as one batch
    # (benchmarks/load_batching.py --engine ct2)
    batching_compiled: bool = True
    batch_max_size: int = 8
    batch_window_ms: float = 25.0
    batch_bucket_tokens: int = 32
    auth_cache_s: float = 5.0  # verified keys are cached this long (revocation delay elsewhere)
    metrics_require_key: bool = False  # /metrics behind an admin key
    preload: bool = True  # load the production model at start-up (/readyz is 503 until then)

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_messages", "max_content_chars", "max_concurrency", "max_models"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be at least 1")
        if self.rate_limit_per_minute < 0 or self.rate_limit_burst < 1:
            raise ConfigError(f"{ENV_PREFIX}RATE_LIMIT_PER_MINUTE must be >= 0 and _BURST >= 1")
        if self.batch_max_size < 1 or self.batch_window_ms < 0 or self.batch_bucket_tokens < 0:
            raise ConfigError(
                f"{ENV_PREFIX}BATCH_MAX_SIZE must be >= 1, BATCH_WINDOW_MS and BATCH_BUCKET_TOKENS >= 0"
            )


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> ServerSettings:
    """Defaults < ``SUPPORTLOOP_API__*`` variables < ``overrides`` (e.g. command-line flags)."""
    import yaml

    env = os.environ if env is None else env
    fields = {f.name: f for f in dataclasses.fields(ServerSettings)}
    values: dict[str, object] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in fields:
            known = ", ".join(ENV_PREFIX + n.upper() for n in fields)
            raise ConfigError(f"unknown setting {key}; known: {known}")
        values[name] = yaml.safe_load(raw) if raw.strip() else None
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name, value in values.items():
        expected = type(getattr(ServerSettings, name))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = values[name] = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected {expected.__name__}, got {value!r}")
    return ServerSettings(**values)  # type: ignore[arg-type]
