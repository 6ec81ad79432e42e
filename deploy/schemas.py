"""Request models and response shapes of the HTTP API. Pure: no I/O, no agent.

The chat endpoint speaks the OpenAI chat-completions format. Requests are validated with
pydantic in strict mode, as OpenAI's API is: a string where a number or a boolean belongs is a
400, on every route. The OpenAI parameters are honoured, checked or refused:

* honoured: ``max_tokens`` / ``max_completion_tokens`` (capped by the server's own
  ``generation.max_new_tokens``; a reply the client's limit cut ends with ``finish_reason:
  "length"``), ``stop`` (up to 4 sequences; the reply ends before the first), ``stream`` and
  ``stream_options.include_usage``;
* checked and accepted: ``temperature`` (0-2), ``top_p`` (0-1], ``presence_penalty`` and
  ``frequency_penalty`` (-2-2), ``seed``, ``user``, ``metadata`` (OpenAI's bounds); the agent's
  sampling settings come from its configuration;
* refused with a 400 (``code: "unsupported_parameter"``), never answered with plain text as if
  they had been applied: fields that change the output contract (``tools``, ``tool_choice``,
  ``functions``, ``function_call``, ``response_format`` other than ``{"type": "text"}``, ``n`` > 1,
  ``logprobs``, ``top_logprobs``, ``audio``, ``modalities`` other than text, ``prediction``).

Unknown fields are accepted and ignored. Responses are plain dicts in the OpenAI shape plus one
extra top-level field, ``supportloop``, that standard clients ignore (the OpenAI Python client
exposes it as ``response.model_extra["supportloop"]``).

Mapping of a stateless OpenAI request onto the log: ``messages[-1]`` (role ``user``) is the new
customer message; earlier ``user``/``assistant`` messages are history, logged as ``customer`` /
``agent`` turns when the request starts a new conversation and ignored when it continues one
(the log is the history then). ``system``/``developer`` messages never reach the model: the
persona comes from the configuration.

Every field that reaches the store is checked here, before anything is logged, with the rules
of ``agent.validation``: ids (``conversation_id``, ``turn_id``), text that no database can store
(NUL, invalid UTF-8), and the length and number of feedback labels, comments and key names.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from agent import validation
from agent.errors import InputError
from agent.types import Reply
from deploy.errors import ApiError

ROLE_TO_LOG = {"user": "customer", "assistant": "agent", "system": "system", "developer": "system"}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ContentPart(_Loose):
    type: str
    text: str | None = None


class ChatMessage(_Loose):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(part.type != "text" for part in self.content):
            raise ApiError(400, "only text content parts are supported", param="messages", code="unsupported")
        return "".join(part.text or "" for part in self.content)


class StreamOptions(_Loose):
    include_usage: bool = False


MAX_STOP = 4  # stop sequences, as OpenAI
STOP_MAX_CHARS = 100
METADATA_MAX_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512  # OpenAI's bounds


class ChatCompletionRequest(_Loose):
    model: str = "production"
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1)
    conversation_id: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    user: str | None = Field(default=None, max_length=validation.NAME_MAX_CHARS)
    metadata: dict[str, str] | None = Field(default=None, max_length=METADATA_MAX_PAIRS)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        sequences = [value] if isinstance(value, str) else value or []
        if len(sequences) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        if any(not s or len(s) > STOP_MAX_CHARS for s in sequences):
            raise ValueError(f"a stop sequence has 1-{STOP_MAX_CHARS} characters")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, item in (value or {}).items():
            if len(key) > METADATA_KEY_CHARS or len(item) > METADATA_VALUE_CHARS:
                raise ValueError(
                    f"metadata keys have at most {METADATA_KEY_CHARS} characters, "
                    f"values at most {METADATA_VALUE_CHARS}"
                )
        return value

    def stop_sequences(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def token_limit(self) -> int | None:
        """The client's own limit on generated tokens (the smaller, if it sent both names)."""
        limits = [n for n in (self.max_tokens, self.max_completion_tokens) if n is not None]
        return min(limits) if limits else None


# Fields that change the output contract: a reply without them applied would break the client.
_CONTRACT_FIELDS = ("tools", "tool_choice", "functions", "function_call", "audio", "prediction")


def refuse_unsupported(request: ChatCompletionRequest) -> None:
    """ApiError 400 (OpenAI's shape, ``code: "unsupported_parameter"``) for a field this server
    cannot honour and whose absence the client would not notice from a plain-text answer."""
    extra = request.model_extra or {}
    refused = [name for name in _CONTRACT_FIELDS if extra.get(name) is not None]
    response_format = extra.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        refused.append("response_format")
    if request.n > 1:
        refused.append("n")
    if request.logprobs:
        refused.append("logprobs")
    if request.top_logprobs is not None:
        refused.append("top_logprobs")
    modalities = extra.get("modalities")
    if modalities is not None and modalities != ["text"]:
        refused.append("modalities")
    if refused:
        raise ApiError(
            400,
            f"{refused[0]} is not supported by this server: it answers one plain-text choice "
            "(no tools, structured output, logprobs, audio or n > 1)",
            param=refused[0],
            code="unsupported_parameter",
        )


class FeedbackRequest(_Closed):
    turn_id: str
    thumbs: Literal[-1, 1] | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=validation.COMMENT_MAX_CHARS)
    correction: str | None = Field(default=None, max_length=validation.CORRECTION_MAX_CHARS)
    labels: list[str] = Field(default_factory=list, max_length=validation.MAX_LABELS)
    reviewer: str | None = None  # admin keys only
    mark_for_training: bool = False  # admin keys only
    reason: str | None = None  # a thumbs-down reason key (agent.feedback_reasons)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        from agent.feedback_reasons import labels_for

        _valid(lambda key, _what: labels_for(key), value, "reason")
        return value

    @field_validator("thumbs", mode="before")
    @classmethod
    def _thumbs(cls, value: Any) -> Any:
        if isinstance(value, bool):  # a Literal[-1, 1] would take true as 1
            raise ValueError("Input should be -1 or 1, not a boolean")
        return value

    @field_validator("turn_id")
    @classmethod
    def _turn_id(cls, value: str) -> str:
        return _valid(validation.check_identifier, value, "turn_id")

    @field_validator("comment", "correction")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _valid(validation.check_chars, value, info.field_name or "text")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return list(_valid(validation.check_labels, value, "labels"))

    @field_validator("reviewer")
    @classmethod
    def _reviewer(cls, value: str | None) -> str | None:
        return None if value is None else _valid(validation.check_name, value, "reviewer")


class KeyRequest(_Closed):
    name: str
    scope: Literal["customer", "admin"] = "customer"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid(validation.check_name, value, "name")


def _valid(check: Any, value: Any, what: str) -> Any:
    """``check(value, what)`` inside a pydantic validator: its ``InputError`` becomes the
    ``ValueError`` pydantic reports as a 400 naming the field."""
    try:
        return check(value, what)
    except InputError as exc:
        raise ValueError(str(exc)) from None


# -- request -> conversation ----------------------------------------------------------------------


def split_messages(
    request: ChatCompletionRequest, *, max_messages: int, max_content_chars: int
) -> tuple[str, list[tuple[str, str]]]:
    """(the new customer message, earlier messages as (log role, text)). ApiError 400 if unusable."""
    if len(request.messages) > max_messages:
        raise ApiError(
            400,
            f"{len(request.messages)} messages; the limit is {max_messages} (send a conversation_id "
            "to continue a logged conversation instead of resending its history)",
            param="messages",
            code="too_many_messages",
        )
    last = request.messages[-1]
    if last.role != "user":
        raise ApiError(400, "the last message must have role 'user'", param="messages", code="invalid_role")
    history = []
    for number, message in enumerate(request.messages[:-1]):
        if message.role not in ROLE_TO_LOG:
            raise ApiError(
                400, f"messages[{number}]: role {message.role!r} is not supported", param="messages"
            )
        text = _stored_text(message.text(), f"messages[{number}]")
        if len(text) > max_content_chars:
            raise ApiError(
                400,
                f"messages[{number}] is {len(text)} characters long; the limit is {max_content_chars}",
                param="messages",
                code="content_too_long",
            )
        if text.strip():
            history.append((ROLE_TO_LOG[message.role], text))
    return _stored_text(last.text(), "the last message"), history


def _stored_text(text: str, what: str) -> str:
    try:
        return validation.check_chars(text, what)
    except InputError as exc:
        raise ApiError(400, str(exc), param="messages", code="invalid_content") from None


def conversation_id_of(request: ChatCompletionRequest, header: str | None) -> str | None:
    """The conversation a request names (body or ``X-Conversation-Id``), checked against the
    identifier rule (``agent.validation``) so that it is safe to send back in a header."""
    body = request.conversation_id
    for value in (body, header):
        if value:
            try:
                validation.check_identifier(value, "conversation_id")
            except InputError as exc:
                raise ApiError(
                    400, str(exc), param="conversation_id", code="invalid_conversation_id"
                ) from None
    if body and header and body != header:
        raise ApiError(
            400,
            "conversation_id in the body and the X-Conversation-Id header differ",
            param="conversation_id",
            code="conflicting_conversation_id",
        )
    return body or header or None


# -- responses --------------------------------------------------------------------------------------


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def extra(reply: Reply) -> dict[str, Any]:
    """The ``supportloop`` field: what an OpenAI response has no place for."""
    return {
        "conversation_id": reply.conversation_id,
        "turn_id": reply.turn_id,
        "citations": [c.to_dict() for c in reply.citations],
        "escalated": reply.escalated,
        "escalation_reason": reply.escalation_reason,
        "refused": reply.refused,
        "model_version": reply.model_version or None,
        "latency_ms": round(reply.latency_ms, 1),
        "grounding": reply.grounding,
    }


def usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def finish_reason(reply: Reply, max_new_tokens: int, requested: int | None = None) -> str:
    """``length`` when the client's own limit (``requested``, below the server's) cut the answer;
    or when the server's token limit cut it and nothing ended it cleanly (an answer the check
    trimmed to its last whole sentence, or replaced, ended on purpose)."""
    if requested is not None and requested < max_new_tokens and reply.completion_tokens >= requested:
        return "length"
    verdict = reply.grounding or {}
    ended_cleanly = bool(verdict) and (bool(verdict.get("dropped_tail")) or verdict.get("action") != "sent")
    return "length" if reply.completion_tokens >= max_new_tokens and not ended_cleanly else "stop"


def completion(
    reply: Reply, *, model: str, max_new_tokens: int, requested: int | None = None
) -> dict[str, Any]:
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(reply, max_new_tokens, requested),
            }
        ],
        "usage": usage(reply),
        "supportloop": extra(reply),
    }


def chunk(
    cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None, **more: Any
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **more,
    }


def usage_chunk(cid: str, created: int, model: str, reply: Reply) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [],
        "usage": usage(reply),
    }


def public_turn(turn: dict[str, Any]) -> dict[str, Any]:
    """What a customer-app key sees of a logged turn (no retrieval internals, no staff names)."""
    return {k: turn.get(k) for k in ("id", "role", "text", "created_at", "citations")}
