"""The agent as a LangChain chat model, and the embedding example, on a scripted generator, a
keyword knowledge base and a real log store."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agent.chat_model import SupportAgentChatModel
from agent.config import load_config
from agent.errors import InputError
from agent.examples.helpdesk import Helpdesk
from agent.generator import ScriptedGenerator
from agent.runtime import Agent
from agent.store import LogStore
from tests.agent.fakes import KeywordKnowledge

DOCS = {
    "warranty": "The Aero warranty lasts 2 years from the delivery date and covers the motor.",
    "returns": "Unused items can be returned within 30 days for a full refund.",
}


@pytest.fixture
def agent(home: Path) -> Agent:
    config = load_config()
    config.escalation.min_relevance = 0.2
    return Agent(ScriptedGenerator(), KeywordKnowledge(DOCS), LogStore(home=home), config)


def test_invoke_answers_with_citations_and_logs_the_turn(agent: Agent) -> None:
    agent.generator.enqueue("The Aero warranty lasts 2 years from delivery [1].")
    model = SupportAgentChatModel(agent=agent)
    message = model.invoke(
        [SystemMessage("ignored"), HumanMessage("How long is the Aero warranty?")], conversation_id="lc-1"
    )
    assert isinstance(message, AIMessage) and message.content.startswith("The Aero warranty lasts 2 years")
    meta = message.response_metadata
    assert meta["conversation_id"] == "lc-1" and meta["escalated"] is False
    assert [c["doc_id"] for c in meta["citations"]] == ["warranty"]
    assert message.usage_metadata and message.usage_metadata["output_tokens"] > 0
    turns = agent.store.turns("lc-1")
    assert [t.role for t in turns] == ["customer", "agent"] and turns[1].id == meta["turn_id"]
    agent.feedback(meta["turn_id"], thumbs=1)  # the turn id is what feedback takes


def test_earlier_messages_seed_a_new_conversation_once(agent: Agent) -> None:
    agent.generator.enqueue("Yes, within 30 days [1].", "You are welcome.")
    model = SupportAgentChatModel(agent=agent, conversation_id="lc-2")
    history = [HumanMessage("Hi, I bought an Aero."), AIMessage("Thanks! How can I help?")]
    model.invoke([*history, HumanMessage("Can I return an unused item?")])
    model.invoke([HumanMessage("Thanks!")])
    roles = [t.role for t in agent.store.turns("lc-2")]
    assert roles == ["customer", "agent", "customer", "agent", "customer", "agent"]
    # The imported history reached the prompt of the first generated answer.
    assert "I bought an Aero" in str(agent.generator.prompts[0])


def test_stream_yields_deltas_then_metadata(agent: Agent) -> None:
    agent.generator.enqueue("Unused items can be returned within 30 days [1]. You get a full refund [1].")
    chunks = list(SupportAgentChatModel(agent=agent).stream([HumanMessage("Can I return unused items?")]))
    assert len(chunks) > 2  # deltas (one per checked sentence), not one block
    assert chunks[-1].chunk_position == "last" and [c.chunk_position for c in chunks[:-1]] == [None] * (
        len(chunks) - 1
    )
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk  # LangChain's own aggregation: texts concatenate, metadata merges
    assert str(merged.content).startswith("Unused items can be returned within 30 days")
    assert merged.response_metadata["citations"][0]["doc_id"] == "returns"


def test_last_message_must_be_the_customers(agent: Agent) -> None:
    with pytest.raises(InputError, match="HumanMessage"):
        SupportAgentChatModel(agent=agent).invoke([AIMessage("hello")])


def test_helpdesk_example_embeds_the_agent(agent: Agent) -> None:
    agent.generator.enqueue("The Aero warranty lasts 2 years [1].", "Yes, within 30 days [1].")
    desk = Helpdesk(agent)
    ticket = desk.handle_ticket("t-1", "How long is the Aero warranty?")
    assert ticket["sources"] and "2 years" in ticket["answer"]
    desk.thumbs(ticket["turn_id"], up=True)
    out = desk.chain().invoke([HumanMessage("Can I return an unused item?")], conversation_id="t-2")
    assert out.startswith("Yes, within 30 days") and "(sources:" in out
    escalated = desk.handle_ticket("t-3", "I want to talk to a real person, please")
    assert escalated["ticket"] == "t-3" and desk.human_queue and desk.human_queue[0]["ticket"] == "t-3"


def test_helpdesk_example_runs_on_the_real_default_model(home: Path, default_model_dir: Path, capsys) -> None:
    """``python -m agent.examples.helpdesk`` as a user runs it: real model, shipped sample docs."""
    from agent.examples import helpdesk

    helpdesk.main()
    out = capsys.readouterr().out
    assert "sources:" in out and "(sources:" in out
    store = LogStore(home=home)
    assert [t.role for t in store.turns("ticket-1")] == ["customer", "agent"]
    assert [t.role for t in store.turns("ticket-2")] == ["customer", "agent"]
    assert store.feedback_for_turn(store.turns("ticket-1")[1].id)[0].thumbs == 1
