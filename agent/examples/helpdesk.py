"""Embedding supportloop in another Python app: a small helpdesk back end.

The app receives tickets (a ticket id and the customer's message), answers them with the agent,
forwards escalations to a human queue, and records the customer's thumbs. It uses the agent two
ways: as a Python object (``Agent.reply``/``Agent.feedback``), and as a LangChain chat model
inside an LCEL chain that post-processes the reply.

    python -m agent.examples.helpdesk          # the default model and the shipped sample docs

The first run converts the default model and ingests the sample (about a minute); later runs
start in seconds. Every turn lands in the data home's log store, ready for review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableLambda

from agent.chat_model import SupportAgentChatModel


@dataclass
class Helpdesk:
    """The host application's own object; the agent is one of its parts."""

    agent: Any
    human_queue: list[dict[str, Any]] = field(default_factory=list)

    def handle_ticket(self, ticket_id: str, message: str) -> dict[str, Any]:
        """Answer a ticket; an escalated one also goes to the human queue."""
        reply = self.agent.reply(ticket_id, message)
        sources = sorted({c.source for c in reply.citations})
        if reply.escalated:
            self.human_queue.append({"ticket": ticket_id, "reason": reply.escalation_reason})
        return {"ticket": ticket_id, "answer": reply.text, "sources": sources, "turn_id": reply.turn_id}

    def thumbs(self, turn_id: str, up: bool) -> None:
        self.agent.feedback(turn_id, thumbs=1 if up else -1)

    def chain(self) -> Any:
        """An LCEL chain: the agent as a chat model, then the app's own formatting step."""
        model = SupportAgentChatModel(agent=self.agent)

        def with_sources(message: Any) -> str:
            cited = ", ".join(c["source"] for c in message.response_metadata["citations"])
            return f"{message.content}\n(sources: {cited or 'none'})"

        return model | RunnableLambda(with_sources)


def main() -> None:
    from agent import Agent

    desk = Helpdesk(Agent.from_config())
    ticket = desk.handle_ticket("ticket-1", "How long is the warranty?")
    print(f"{ticket['answer']}\n  sources: {', '.join(ticket['sources']) or 'none'}")
    desk.thumbs(ticket["turn_id"], up=True)
    print(desk.chain().invoke([HumanMessage("Can I return an unused item?")], conversation_id="ticket-2"))
    if desk.human_queue:
        print(f"waiting for a person: {desk.human_queue}")


if __name__ == "__main__":
    main()
