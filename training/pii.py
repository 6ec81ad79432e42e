"""PII redaction for training data: the policy lives in ``agent.pii`` (every sink that leaves the
log store uses it, and ``agent`` may not import ``training``); this module keeps
``training.pii.redact(text) -> str`` and friends importable."""

from agent.pii import KINDS, PiiSpan, find_pii, luhn_ok, redact, replace_spans

__all__ = ["KINDS", "PiiSpan", "find_pii", "luhn_ok", "redact", "replace_spans"]
