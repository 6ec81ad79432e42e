from agent.citations import says_unknown, used_passages
from agent.config import Persona
from agent.prompt import Passage, build_messages, cited_numbers, system_message

P = [
    Passage(
        doc_id="filters", source="filters.md", text="Replace the HEPA filter every 6 months. Part HF-500."
    ),
    Passage(doc_id="warranty", source="warranty.md", text="The warranty lasts 2 years from delivery."),
]


def test_messages_number_passages_and_map_roles() -> None:
    history = [("customer", "hi"), ("agent", "Hello!"), ("human", "Jane here"), ("system", "note")]
    messages = build_messages("How long is the warranty?", P, Persona(company="Acme"), history, examples=())
    assert messages[0]["role"] == "system" and "Acme" in messages[0]["content"]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "assistant", "user"]
    last = messages[-1]["content"]
    assert "[1] (filters) Replace the HEPA" in last and "[2] (warranty)" in last
    assert last.endswith("Customer: How long is the warranty?")


def test_windowing_drops_oldest_history_but_keeps_passages() -> None:
    history = [("customer", "word " * 50), ("agent", "reply " * 50), ("customer", "recent"), ("agent", "ok")]
    messages = build_messages(
        "q?", P, Persona(), history, budget_tokens=200, count_tokens=lambda t: len(t.split())
    )
    contents = [m["content"] for m in messages]
    assert "recent" in contents and not any(c.startswith("word") for c in contents)
    assert "[2] (warranty)" in contents[-1]


def test_the_built_in_worked_example_comes_first_by_default() -> None:
    messages = build_messages("How long is the warranty?", P, Persona())
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "example-shipping" in messages[1]["content"] and "[1]" in messages[2]["content"]
    assert build_messages("q", P, Persona(), examples=[])[1]["role"] == "user"


def test_custom_system_prompt_and_examples() -> None:
    persona = Persona(system_prompt="Only talk like a pirate.")
    assert system_message(persona) == "Only talk like a pirate."
    messages = build_messages("q", [], persona, examples=[("ex q", "ex a")])
    assert messages[1:3] == [{"role": "user", "content": "ex q"}, {"role": "assistant", "content": "ex a"}]
    assert "(no relevant passages were found)" in messages[-1]["content"]


def test_citations_come_from_used_passages() -> None:
    assert cited_numbers("See [2] and [1], also [9]", 2) == [2, 1]
    assert used_passages("You should replace the HEPA filter every 6 months.", P) == [1]
    assert used_passages("Our warranty lasts 2 years from delivery [2].", P) == [2]
    assert used_passages("Hello! How can I help?", P) == []
    assert used_passages("I don't know, sorry. The warranty lasts 2 years.", P) == []
    assert says_unknown("I'm not sure about that")


def test_static_head_counts_the_system_message_and_the_worked_example_only() -> None:
    from agent.config import Persona
    from agent.prompt import build_messages, static_head

    with_example = build_messages("Hi?", [], Persona(), [("customer", "earlier"), ("agent", "reply")])
    assert static_head(with_example) == 3 and with_example[3]["content"] == "earlier"
    assert static_head(build_messages("Hi?", [], Persona(), examples=())) == 0
    assert static_head([{"role": "user", "content": "Hi"}]) == 0
