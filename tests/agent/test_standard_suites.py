"""LangChain's own standard suites (``langchain-tests``), unmodified, against
``SupportAgentChatModel``: the unit suite over an agent on a scripted generator, the integration
suite over the real default agent (the shipped tuned SmolLM2 through the compiled CTranslate2
engine, the sample documents, a real log store). Counts: ``docs/ecosystem.md``.

Switched off, because the class does not claim them (the rest run as shipped):

* tool calling, tool choice, structured output, JSON mode: a support agent answers customers in
  text from its documents; it binds no tools (the suite skips these itself, as ``bind_tools`` and
  ``with_structured_output`` are not overridden);
* image, audio, video, PDF and Anthropic-format inputs: text only (the suite's defaults);
* per-call model override (``supports_model_override = False``): one agent serves one model, the
  registry's production version; ``model=`` naming another is refused (``InputError``);
* the VCR-recorded timing test (``enable_vcr_tests`` stays off): there is no HTTP to record.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from agent.chat_model import SupportAgentChatModel
from agent.config import load_config
from agent.errors import InputError
from agent.generator import ScriptedGenerator
from agent.runtime import Agent
from agent.store import LogStore
from tests.agent.conftest import DOCS
from tests.agent.fakes import KeywordKnowledge
from tests.conftest import CACHE

AGENTS: dict[str, Agent] = {}


@pytest.fixture(scope="module")
def scripted_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    config = load_config()
    store = LogStore(home=tmp_path_factory.mktemp("scripted-home"))
    agent = Agent(ScriptedGenerator(), KeywordKnowledge(DOCS), store, config)
    AGENTS["scripted"] = agent
    yield agent
    agent.close()


@pytest.fixture(scope="module")
def real_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """The default agent as ``make run`` serves it, on the compiled engine. Its data home (model,
    compiled engine, index) is cached beside the test models; the log store is per run."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SUPPORTLOOP_HOME", str(CACHE.parent / "ecosystem-home"))
        env.setenv("SUPPORTLOOP_SHIPPED_MODEL", "1")
        env.setenv("SUPPORTLOOP_GENERATION__ENGINE", "ctranslate2")
        env.delenv("SUPPORTLOOP_CONFIG", raising=False)
        config = load_config()
        config.generation.max_new_tokens = 48  # a short answer is all these suites read
        built = Agent.from_config(config)
        built.store.close()
        agent = Agent(
            built.generator, built.knowledge, LogStore(home=tmp_path_factory.mktemp("store")), config
        )
        AGENTS["real"] = agent
        yield agent
        agent.close()


@pytest.mark.usefixtures("scripted_agent")
class TestSupportAgentChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[SupportAgentChatModel]:
        return SupportAgentChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"agent": AGENTS["scripted"]}


@pytest.mark.slow
@pytest.mark.usefixtures("real_agent")
class TestSupportAgentChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[SupportAgentChatModel]:
        return SupportAgentChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"agent": AGENTS["real"]}

    @property
    def supports_model_override(self) -> bool:
        return False


# -- what the suites cannot see ------------------------------------------------------------------


@pytest.mark.slow
def test_real_agent_async_streaming_reports_and_logs_its_usage(real_agent: Agent) -> None:
    import asyncio

    model = SupportAgentChatModel(agent=real_agent)
    questions = ["How often should I replace the filter?", "How long is the warranty on a new Aero?"]

    async def collect(n: int) -> Any:
        total = None
        async for chunk in model.astream([HumanMessage(questions[n])], conversation_id=f"eco-async-{n}"):
            total = chunk if total is None else total + chunk
        return total

    async def both() -> list[Any]:
        return await asyncio.gather(collect(0), collect(1))

    for n, total in enumerate(asyncio.run(both())):
        usage = total.usage_metadata
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
        (turn,) = [t for t in real_agent.store.turns(f"eco-async-{n}") if t.role == "agent"]
        assert (turn.prompt_tokens, turn.completion_tokens) == (usage["input_tokens"], usage["output_tokens"])


@pytest.mark.slow
def test_real_agent_answers_hello_without_a_handoff(real_agent: Agent) -> None:
    reply = real_agent.reply("eco-hello", "Hello")
    assert not reply.escalated and real_agent.config.persona.agent_name in reply.text


def test_standard_parameters_reach_the_generation(make_agent) -> None:
    generator = RecordingGenerator(["The HEPA filter lasts 6 months. Replace it then [1]."])
    model = SupportAgentChatModel(agent=make_agent(generator), temperature=0.7, max_tokens=5, timeout=9)
    model.invoke([HumanMessage("How often do I replace the HEPA filter?")])
    options = generator.options[-1]
    assert (options.temperature, options.max_new_tokens, options.timeout_s) == (0.7, 5, 9)


def test_a_stop_sequence_ends_the_answer_before_it(make_agent) -> None:
    answer = "Replace the HEPA filter every 6 months [1]. It costs $39."
    model = SupportAgentChatModel(agent=make_agent(ScriptedGenerator([answer, answer])))
    question = [HumanMessage("How often do I replace the HEPA filter?")]
    assert model.invoke(question, stop=["every"]).content == "Replace the HEPA filter"
    streamed = "".join(str(c.content) for c in model.stream(question, stop=[" 6 mon"]))
    assert streamed == "Replace the HEPA filter every"


def test_model_name_is_in_metadata_and_tracing_params(make_agent) -> None:
    model = SupportAgentChatModel(agent=make_agent(), max_tokens=10, stop=["x"])
    params = model._get_ls_params()
    assert (
        params["ls_model_name"] == "scripted" and params["ls_max_tokens"] == 10 and params["ls_stop"] == ["x"]
    )
    message = model.invoke([HumanMessage("How often do I replace the HEPA filter?")])
    assert message.response_metadata["model_name"] == "scripted"


def test_bad_standard_parameters_are_refused_before_anything_is_logged(make_agent) -> None:
    agent = make_agent()
    question = [HumanMessage("How often do I replace the HEPA filter?")]
    for params in ({"temperature": 3.0}, {"max_tokens": 0}, {"timeout": -1}, {"model": "gpt-4o"}):
        with pytest.raises(InputError):
            SupportAgentChatModel(agent=agent, conversation_id="bad").invoke(question, **params)
    assert not _exists(agent, "bad")


def _exists(agent: Agent, conversation_id: str) -> bool:
    try:
        agent.store.get_conversation(conversation_id)
    except Exception:
        return False
    return True


class RecordingGenerator(ScriptedGenerator):
    def __init__(self, replies: list[str]):
        super().__init__(replies)
        self.options: list[Any] = []

    def stream(self, messages: Any, options: Any, cancel: Any = None) -> Iterator[str]:
        self.options.append(options)
        yield from super().stream(messages, options, cancel)
