"""Token usage travels with the stream: correct whichever thread steps it (LangChain's
``astream`` steps a sync generator on executor threads), in the reply and in the log store."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import HumanMessage

from agent.chat_model import SupportAgentChatModel
from agent.generator import GenerationOptions, ScriptedGenerator, Usage, metered

ANSWER = "The Aero warranty lasts 2 years from the delivery date [1]."
QUESTION = "How long is the Aero warranty?"


def step_on_new_threads(iterator: Iterator[Any]) -> list[Any]:
    """Take every step of ``iterator`` on a thread of its own, as an executor may."""
    items: list[Any] = []
    done = False

    def step() -> None:
        nonlocal done
        try:
            items.append(next(iterator))
        except StopIteration:
            done = True

    while not done:
        worker = threading.Thread(target=step)
        worker.start()
        worker.join()
    return items


def test_usage_is_the_calls_own_when_each_step_runs_on_another_thread(make_agent) -> None:
    agent = make_agent(ScriptedGenerator([ANSWER]))
    items = step_on_new_threads(iter(agent.stream("c-threads", QUESTION)))
    reply = items[-1]
    words = len(ANSWER.split(" "))
    assert reply.completion_tokens == words and reply.prompt_tokens > 0
    logged = next(t for t in agent.store.turns("c-threads") if t.role == "agent")
    assert (logged.prompt_tokens, logged.completion_tokens) == (reply.prompt_tokens, words)


def test_usage_of_another_call_on_the_same_thread_is_not_taken(make_agent) -> None:
    """A thread that ran an earlier call still holds that call's usage: it must not leak in."""
    generator = ScriptedGenerator(["one two three four five six seven", ANSWER])
    agent = make_agent(generator)
    agent.reply("c-first", QUESTION)  # this thread now holds the first call's usage (7 tokens)
    items = step_on_new_threads(iter(agent.stream("c-second", QUESTION)))
    assert items[-1].completion_tokens == len(ANSWER.split(" "))


class CountingEngine(ScriptedGenerator):
    """Answers question "... (n)" with ``n`` more words than ``ANSWER``: each call's counts differ."""

    def stream(self, messages: Any, options: Any, cancel: Any = None) -> Iterator[str]:
        extra = int(re.findall(r"\((\d+)\)", messages[-1]["content"])[-1])
        self.enqueue(ANSWER + " Thanks." * extra)
        yield from super().stream(messages, options, cancel)


def test_concurrent_astreams_report_and_log_their_token_counts(make_agent) -> None:
    generator = CountingEngine()
    generator.delay_s = 0.001  # steps of several calls interleave on the executor's threads
    agent = make_agent(generator)
    model = SupportAgentChatModel(agent=agent)

    async def collect(conversation_id: str) -> Any:
        total = None
        question = f"{QUESTION} ({conversation_id.rsplit('-', 1)[1]})"
        async for chunk in model.astream([HumanMessage(question)], conversation_id=conversation_id):
            total = chunk if total is None else total + chunk
        return total

    async def all_of_them() -> list[Any]:
        return await asyncio.gather(*(collect(f"c-async-{n}") for n in range(6)))

    for n, total in enumerate(asyncio.run(all_of_them())):
        words = len(ANSWER.split(" ")) + n
        assert total.usage_metadata["output_tokens"] == words and total.usage_metadata["input_tokens"] > 0
        logged = next(t for t in agent.store.turns(f"c-async-{n}") if t.role == "agent")
        assert logged.completion_tokens == words


def test_astream_events_carry_the_usage(make_agent) -> None:
    agent = make_agent(ScriptedGenerator([ANSWER]))
    model = SupportAgentChatModel(agent=agent)

    async def final_output() -> Any:
        async for event in model.astream_events([HumanMessage(QUESTION)], version="v2"):
            if event["event"] == "on_chat_model_end":
                return event["data"]["output"]
        return None

    message = asyncio.run(final_output())
    assert message.usage_metadata["output_tokens"] == len(ANSWER.split(" "))


class ReplacingEngine(ScriptedGenerator):
    """Records a first usage at the first step and replaces it at the last (as the batcher does)."""

    def stream(self, messages: Any, options: Any, cancel: Any = None) -> Iterator[str]:
        self._set_usage(Usage(prompt_tokens=3))
        yield "a"
        yield " b"
        self._set_usage(Usage(prompt_tokens=3, completion_tokens=2))


def test_metered_keeps_a_usage_the_engine_replaces_on_its_last_step() -> None:
    stream = metered(ReplacingEngine(), [{"role": "user", "content": "x"}], GenerationOptions())
    assert step_on_new_threads(stream) == ["a", " b"]
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (3, 2)


def test_local_engine_counts_tokens_when_the_stream_is_closed_early(tiny_model) -> None:
    from agent.generator import LocalGenerator

    model, tokenizer = tiny_model
    generator = LocalGenerator(model, tokenizer)
    options = GenerationOptions(max_new_tokens=40, repetition_penalty=1.0)
    stream = metered(generator, [{"role": "user", "content": "Hello there"}], options)
    next(stream)  # the consumer stops here, as the agent does at a stop sequence
    stream.close()
    assert 0 < stream.usage.completion_tokens <= 40 and stream.usage.prompt_tokens > 0
