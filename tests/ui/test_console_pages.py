"""The review console pages, driven by AppTest: sign-in, list and search, review, handoff,
training and dashboard."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import PASSWORD, open_app, texts

CONSOLE = [
    "pages/handoffs.py",
    "pages/conversations.py",
    "pages/review.py",
    "pages/dashboard.py",
    "pages/training.py",
    "pages/shortcuts.py",
    "pages/reasons.py",
    "pages/provenance.py",
    "pages/canary.py",
    "pages/shadow.py",
]


def chat(agent: Any, cid: str, *questions: str) -> None:
    for question in questions:
        agent.reply(cid, question)


@pytest.mark.parametrize("page", CONSOLE)
def test_console_refuses_without_login(agent: Any, page: str) -> None:
    chat(agent, "c-private", "How often should I replace the filter?")
    at = open_app(page, query={"id": "c-private"})
    assert any("Sign in to continue" in w.value for w in at.warning)
    assert "How often should I replace the filter?" not in texts(at)
    assert not at.get("arrow_data_frame") and not at.get("vega_lite_chart")


def test_sign_in_checks_the_password(agent: Any, reviewer: Any) -> None:
    at = open_app("pages/sign_in.py")
    at.text_input(key="login-username").set_value("riley")
    at.text_input(key="login-password").set_value("wrong password")
    at.button[0].click().run()
    assert any("Wrong username or password" in e.value for e in at.error)

    at.text_input(key="login-password").set_value(PASSWORD)
    at.button[0].click().run()
    assert at.session_state["console_user"].username == "riley"
    assert "Live handoffs" in texts(at)


def test_reviewer_cannot_open_training(reviewer: Any) -> None:
    at = open_app("pages/training.py", user=reviewer)
    assert any("needs the **admin** role" in e.value for e in at.error)


def test_list_filters_and_ranked_search(agent: Any, reviewer: Any) -> None:
    chat(agent, "c-filter", "How often should I replace the filter?")
    chat(agent, "c-wifi", "How do I connect the purifier to Wi-Fi?")
    agent.escalate("c-person")

    at = open_app("pages/conversations.py", user=reviewer)
    table = at.dataframe[0].value
    assert set(table["id"]) == {"c-filter", "c-wifi", "c-person"}

    at.selectbox(key="f-escalated").set_value("escalated").run()
    assert list(at.dataframe[0].value["id"]) == ["c-person"]

    at.text_input(key="search").set_value("replace filter").run()
    shown = texts(at)
    assert "`c-filter`" in shown and "**replace**" in shown.lower() and "`c-wifi`" not in shown


def open_review(cid: str, user: Any) -> Any:
    return open_app("pages/review.py", user=user, query={"id": cid})


def test_review_shows_retrieved_passages_with_scores(agent: Any, reviewer: Any) -> None:
    chat(agent, "c-review", "How often should I replace the filter?")
    at = open_review("c-review", reviewer)
    assert any(e.label.startswith("Retrieved passages (") for e in at.expander)
    passages = at.dataframe[0].value
    assert {"rank", "score", "doc", "source", "chunk", "cited"} <= set(passages.columns)
    assert passages["score"].is_monotonic_decreasing


def test_review_says_when_the_agent_asked_back_what_this_is(agent: Any, reviewer: Any) -> None:
    chat(agent, "c-unnamed", "What are the services offered by this state library?")
    at = open_review("c-unnamed", reviewer)
    assert "asked back which state library" in texts(at), texts(at)


def test_correction_is_saved(agent: Any, reviewer: Any) -> None:
    chat(agent, "c-fix", "How often should I replace the filter?")
    turn = agent.store.turns("c-fix")[1]
    at = open_review("c-fix", reviewer)
    at.text_area(key=f"review-correction-{turn.id}").set_value("Every 6 to 8 months, sooner with smoke.")
    at.multiselect(key=f"review-labels-{turn.id}").set_value(["incomplete"])
    at.checkbox(key=f"review-train-{turn.id}").check()
    at.feedback(key=f"review-rating-{turn.id}").set_value(1)
    next(b for b in at.button if b.label == "Save review").click().run()
    assert not at.exception

    [saved] = agent.store.feedback_for_turn(turn.id)
    assert saved.correction == "Every 6 to 8 months, sooner with smoke."
    assert (saved.reviewer, saved.labels, saved.mark_for_training, saved.rating) == (
        "riley",
        ("incomplete",),
        True,
        2,
    )
    assert "Correction saved" in texts(at)
    assert agent.store.list_conversations(unreviewed=True) == []


def test_escalation_is_answered_and_resolved_from_the_console(agent: Any, reviewer: Any) -> None:
    from ui.chat import conversation_for

    token = "resume-token-of-the-customer"  # the customer's link carries this, never the id
    help_id = conversation_for(token)
    agent.reply(help_id, "My purifier smells like burning plastic and I want a person")
    assert agent.store.get_conversation(help_id).status == "escalated"
    handoffs = open_app("pages/handoffs.py", user=reviewer)
    assert f"`{help_id[:8]}…`" in texts(handoffs)

    at = open_review(help_id, reviewer)
    at.text_area(key="human-reply-text").set_value("Please unplug it now; I'm sending a replacement.")
    next(b for b in at.button if b.label == "Send to customer").click().run()
    assert not at.exception
    human = [t for t in agent.store.turns(help_id) if t.role == "human"]
    assert [(t.text, t.author) for t in human] == [
        ("Please unplug it now; I'm sending a replacement.", "riley")
    ]

    customer = open_app(query={"c": token})
    assert any(m.name == "human" for m in customer.chat_message)
    assert "sending a replacement" in texts(customer)

    at = open_review(help_id, reviewer)
    next(b for b in at.button if b.label == "Resolve without replying").click().run()
    assert agent.store.get_conversation(help_id).status == "resolved"
    assert agent.store.escalations(open_only=True) == []


def test_training_page_shows_what_a_round_would_build(agent: Any, admin: Any) -> None:
    chat(agent, "c-train", "How often should I replace the filter?")
    turn = agent.store.turns("c-train")[1]
    agent.feedback(turn.id, rating=2, correction="Every 6 to 8 months.", reviewer="ada")

    at = open_app("pages/training.py", user=admin)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Reviewed conversations"] == "1"
    assert int(metrics["Preference pairs (DPO)"]) >= 1
    assert int(metrics["SFT (answers to imitate)"]) >= 1
    start = next(b for b in at.button if b.label == "Start training round")
    from ui import jobs

    assert start.disabled is not jobs.round_available()


def test_dashboard_renders_kpis_with_data(agent: Any, reviewer: Any) -> None:
    chat(agent, "c-d1", "How often should I replace the filter?")
    chat(agent, "c-d2", "How do I connect the purifier to Wi-Fi?")
    for cid, thumbs, rating in (("c-d1", 1, 5), ("c-d2", -1, 2)):
        agent.feedback(agent.store.turns(cid)[1].id, thumbs=thumbs, rating=rating)
    agent.resolve("c-d1")
    agent.escalate("c-d2")

    at = open_app("pages/dashboard.py", user=reviewer)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Thumbs-up"] == "50%"
    assert metrics["Escalation"] == "50%"
    assert metrics["Deflection"] == "50%"
    assert metrics["CSAT"] == "3.50"
    assert len(at.get("vega_lite_chart")) >= 1
    table = at.dataframe[0].value.set_index("model_version")
    assert table.at["demo", "conversations"] == 2


def test_dashboard_empty_state(reviewer: Any) -> None:
    at = open_app("pages/dashboard.py", user=reviewer)
    assert any("No conversations in this period" in i.value for i in at.info)


FAKE_ROUND = """
import os, sys, time, pathlib
print("round options:", " ".join(sys.argv[1:]), flush=True)
for step in (1, 2):
    print(f"sft step {step}/2", flush=True)
    time.sleep(0.2)
run = pathlib.Path(os.environ["SUPPORTLOOP_HOME"]) / "runs" / "round-test"
run.mkdir(parents=True)
(run / "report.md").write_text("# Round report\\n\\nCandidate **sft-test** promoted.\\n")
print(f"report: {run / 'report.md'}", flush=True)
"""


def test_training_round_runs_with_live_output_and_report(
    agent: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import time

    from ui import jobs

    monkeypatch.setattr(jobs, "round_available", lambda: True)
    monkeypatch.setattr(jobs, "command", lambda extra="": [sys.executable, "-c", FAKE_ROUND, *extra.split()])
    at = open_app("pages/training.py", user=admin)
    at.number_input(key="round-steps").set_value(3)
    next(b for b in at.button if b.label == "Start training round").click().run()
    assert "Training round started" in texts(at)

    deadline = time.monotonic() + 30
    while [s.label for s in at.status] != ["Training round finished"] and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
    shown = texts(at)
    assert "Candidate **sft-test** promoted." in shown
    assert any("--max-steps 3" in c.value and "sft step 2/2" in c.value for c in at.code)
    assert [s.label for s in at.status] == ["Training round finished"]


def test_a_console_correction_is_served_at_once_and_listed_with_its_hits(agent: Any, reviewer: Any) -> None:
    question = "How often should I replace the filter?"
    fixed = "Every 6 to 8 months, sooner with smoke. Verified by Riley."
    chat(agent, "c-verify", question)
    turn = agent.store.turns("c-verify")[1]
    at = open_review("c-verify", reviewer)
    at.text_area(key=f"review-correction-{turn.id}").set_value(fixed)
    next(b for b in at.button if b.label == "Save review").click().run()
    assert not at.exception

    reply = agent.reply("c-next", question)
    assert reply.text == fixed and reply.citations[0].source == "verified by the support team"
    at = open_app("pages/shortcuts.py", user=reviewer)
    shown = texts(at)
    assert question in shown and fixed in shown and "1 hits" in shown
    next(b for b in at.button if b.label == "Retire").click().run()
    assert not at.exception
    assert agent.store.verified_answers() == []
    assert agent.reply("c-after", question).text != fixed


def test_reasons_page_routes_each_reason_and_the_dashboard_counts_them(agent: Any, reviewer: Any) -> None:
    chat(agent, "c-wrong", "How often should I replace the filter?")
    chat(agent, "c-gap", "Does the filter work against wildfire smoke?")
    agent.feedback(agent.store.turns("c-wrong")[1].id, thumbs=-1, reason="wrong")
    agent.feedback(agent.store.turns("c-gap")[1].id, thumbs=-1, reason="docs_gap")
    shown = texts(open_app("pages/reasons.py", user=reviewer))
    assert "How often should I replace the filter?" in shown and "needs a correction" in shown
    assert "Does the filter work against wildfire smoke?" in shown and "Retrieved:" in shown
    at = open_app("pages/dashboard.py", user=reviewer)
    counts = at.dataframe[-1].value
    assert dict(zip(counts["reason"], counts["count"], strict=True))["Wrong or outdated answer"] == 1


@pytest.mark.parametrize(
    ("labels", "comment", "expected"),
    [
        (["x" * 900_000], "", "Labels: a label is 900,000 characters long; the limit is 100"),
        ([f"label {i}" for i in range(51)], "", "51 Labels; the limit is 50"),
        (["incomplete"], "n" * 5_001, "The note is 5,001 characters long; the limit is 5,000"),
    ],
)
def test_review_form_refuses_what_validation_refuses_with_a_clear_error(
    agent: Any, reviewer: Any, labels: list[str], comment: str, expected: str
) -> None:
    chat(agent, "c-bad", "How often should I replace the filter?")
    turn = agent.store.turns("c-bad")[1]
    at = open_review("c-bad", reviewer)
    at.multiselect(key=f"review-labels-{turn.id}").set_value(labels)
    at.text_input(key=f"review-comment-{turn.id}").set_value(comment)
    next(b for b in at.button if b.label == "Save review").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"Not saved: {expected}"]
    assert "x" * 1000 not in texts(at)  # the value is never echoed
    assert agent.store.feedback_for_turn(turn.id) == []


def test_review_form_offers_should_have_handed_off(agent: Any, reviewer: Any) -> None:
    from agent.feedback_reasons import SHOULD_HAND_OFF

    chat(agent, "c-hand", "My purifier smells of burning plastic, is it safe?")
    turn = agent.store.turns("c-hand")[1]
    at = open_review("c-hand", reviewer)
    assert SHOULD_HAND_OFF in at.multiselect(key=f"review-labels-{turn.id}").options
    at.multiselect(key=f"review-labels-{turn.id}").set_value([SHOULD_HAND_OFF])
    next(b for b in at.button if b.label == "Save review").click().run()
    assert not at.exception
    [saved] = agent.store.feedback_for_turn(turn.id)
    assert saved.labels == (SHOULD_HAND_OFF,) and saved.reviewer == "riley"


def test_provenance_page_lists_a_stale_answer_and_re_reviews_it(agent: Any, reviewer: Any) -> None:
    from knowledge.chunking import chunk_document
    from knowledge.types import Document
    from training.data import RE_REVIEWED, IndexState, from_store, leave_out_stale

    question = "How often should I replace the filter?"
    chat(agent, "c-stale", question)
    turn = agent.store.turns("c-stale")[1]
    [source, *_] = [p["source"] for p in turn.metadata["passages"]]
    agent.store.add_feedback(turn.id, reviewer="riley", mark_for_training=True)
    at = open_app("pages/provenance.py", user=reviewer)
    assert "No reviewed answer quotes a changed or removed document" in texts(at)

    # The index now holds another document only: the answer's passages were removed from it.
    elsewhere = IndexState.of(chunk_document(Document("other", "other.md", "Unrelated text.")))
    _, found = leave_out_stale(list(from_store(agent.store)), elsewhere, agent.store)
    assert found.left_out == {turn.id}
    at = open_app("pages/provenance.py", user=reviewer)
    shown = texts(at)
    assert question in shown and "left out of training" in shown
    assert f"(`{source}`) was removed" in shown and "Found just now" in shown
    [link] = at.get("page_link")
    assert (link.proto.page, link.proto.query_string) == ("review", "id=c-stale")

    next(b for b in at.button if b.label == "Re-reviewed: keep it").click().run()
    assert not at.exception
    assert [(f.reviewer, f.labels) for f in agent.store.feedback_for_turn(turn.id) if f.labels] == [
        ("riley", (RE_REVIEWED,))
    ]
    assert "re-reviewed" in texts(at) and not [b for b in at.button if b.label == "Re-reviewed: keep it"]
    kept, found = leave_out_stale(list(from_store(agent.store)), elsewhere, agent.store)
    assert not found.left_out and found.rereviewed == {turn.id} and not kept[0].left_out

    # With no knowledge index in this data home, "check now" says there is nothing to compare.
    next(b for b in at.button if b.label == "Check against the knowledge index now").click().run()
    assert "no knowledge index yet" in texts(at)
