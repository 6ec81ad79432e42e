"""The agent as a LangChain chat model: ``SupportAgentChatModel(agent=...)``.

It drops into LangChain code (``invoke``, ``stream``, ``batch``, LCEL chains) and keeps the
agent's behaviour: retrieval, citations, escalation, guardrails, and a log entry for every turn.

* **Conversation.** A call's conversation id comes from ``conversation_id=`` in the call
  (``model.invoke(messages, conversation_id="order-1042")``), else the model's own
  ``conversation_id``, else a new id per call. The store keeps the history, so only the last
  human message is sent to the agent. When the conversation is new and the call carries earlier
  human/AI messages, they are imported into the log first (as ``ask --conversation`` does).
* **Result.** The ``AIMessage`` text is the reply. ``response_metadata`` holds the citations
  (``doc_id``, ``source``, ``snippet``), ``escalated``, ``escalation_reason``, ``turn_id``,
  ``conversation_id`` and ``model``; ``usage_metadata`` holds the token counts. ``turn_id`` is
  what ``agent.feedback`` takes.
* **Streaming** yields the agent's text deltas; the last chunk carries the metadata.
* **Standard parameters** (as in LangChain's standard tests): ``temperature``, ``max_tokens``
  (at most the agent's ``generation.max_new_tokens``), ``timeout`` (seconds) and ``stop`` (the
  answer ends before the first stop sequence) apply to every call; ``stop=`` and the same names
  given in a call override them. ``None`` keeps the agent's configured value. ``model=`` in a call
  must name the model the agent serves: one agent serves one model.
* System messages are ignored: the persona and the system prompt come from the agent's config.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from agent.errors import InputError
from agent.types import Reply
from agent.validation import check_turn_limits


class SupportAgentChatModel(BaseChatModel):
    """A LangChain ``BaseChatModel`` over a supportloop ``Agent``."""

    agent: Any
    conversation_id: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    stop: list[str] | None = None
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "supportloop-agent"

    @property
    def model_name(self) -> str:
        """The model the agent serves (its registry version)."""
        return str(getattr(getattr(self.agent, "generator", None), "version", None) or "supportloop-agent")

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": getattr(self.agent.generator, "version", None)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="supportloop",
            ls_model_name=str(kwargs.get("model") or self.model_name),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if temperature is not None:
            params["ls_temperature"] = temperature
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop := stop if stop is not None else self.stop:
            params["ls_stop"] = list(stop)
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        limits = self._limits(stop, kwargs)
        conversation_id, question = self._prepare(messages, kwargs)
        reply = self.agent.reply(conversation_id, question, **limits)
        message = AIMessage(
            content=reply.text,
            response_metadata=self._metadata(reply, conversation_id),
            usage_metadata=_usage(reply),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        limits = self._limits(stop, kwargs)
        conversation_id, question = self._prepare(messages, kwargs)
        for item in self.agent.stream(conversation_id, question, **limits):
            if isinstance(item, Reply):
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        response_metadata=self._metadata(item, conversation_id),
                        usage_metadata=_usage(item),
                        chunk_position="last",
                    )
                )
            else:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=item))
                if run_manager is not None:
                    run_manager.on_llm_new_token(item, chunk=chunk)
            yield chunk

    # -- helpers -------------------------------------------------------------------------------

    def _limits(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The agent's per-turn limits from this model's fields and the call's own arguments."""
        requested = kwargs.get("model")
        if requested is not None and requested != self.model_name:
            raise InputError(
                f"this agent serves {self.model_name!r}, not {requested!r}; one agent serves one model"
            )
        limits = {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "timeout_s": kwargs.get("timeout", self.timeout),
        }
        limits["stop"] = stop if stop is not None else self.stop or ()
        return check_turn_limits(**limits)  # before _prepare writes anything

    def _metadata(self, reply: Reply, conversation_id: str) -> dict[str, Any]:
        return {**_metadata(reply, conversation_id), "model_name": self.model_name}

    def _prepare(self, messages: Sequence[BaseMessage], kwargs: dict[str, Any]) -> tuple[str, str]:
        """(conversation id, last human message), importing earlier turns into a new conversation."""
        turns = [m for m in messages if isinstance(m, HumanMessage | AIMessage)]
        if not turns or not isinstance(turns[-1], HumanMessage):
            raise InputError("the last message must be the customer's (a HumanMessage)")
        conversation_id = str(
            kwargs.get("conversation_id") or self.conversation_id or f"lc-{uuid.uuid4().hex}"
        )
        store = self.agent.store
        conversation = store.ensure_conversation(conversation_id, channel="langchain")
        if not conversation.turns:
            for message in turns[:-1]:
                role = "customer" if isinstance(message, HumanMessage) else "agent"
                store.add_turn(conversation_id, role, _text(message), metadata={"imported_from": "langchain"})
        return conversation_id, _text(turns[-1])


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)


def _metadata(reply: Reply, conversation_id: str) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "turn_id": reply.turn_id,
        "model": reply.model_version,
        "escalated": reply.escalated,
        "escalation_reason": reply.escalation_reason,
        "citations": [
            {"doc_id": c.doc_id, "source": c.source, "snippet": c.snippet} for c in reply.citations
        ],
    }


def _usage(reply: Reply) -> Any:
    from langchain_core.messages.ai import UsageMetadata

    prompt, completion = int(reply.prompt_tokens or 0), int(reply.completion_tokens or 0)
    return UsageMetadata(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)
