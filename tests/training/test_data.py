"""The dataset compiler: importers, errors, redaction, passages, rows, dedupe, split, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import Persona
from agent.errors import DataError
from agent.prompt import Passage, build_messages
from training.data import (
    CompiledDataset,
    compile_dataset,
    detect_format,
    is_validation,
    load_rows,
    read_source,
    response_score,
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def convo(cid: str, *texts: str, **extra) -> dict:
    """A turns row alternating customer/agent, starting with the customer."""
    roles = ("customer", "agent")
    return {"id": cid, "turns": [{"role": roles[i % 2], "text": t} for i, t in enumerate(texts)], **extra}


def all_rows(dataset: CompiledDataset) -> list[dict]:
    return [row for rows in dataset.splits().values() for row in rows]


# ------------------------------------------------------------------------------------- importers


def test_turns_rows_take_the_reference_response_and_conversation_feedback(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            convo("a", "Hi", "Hello!", "Does it have parking?", gold_response="Yes, free parking.", thumbs=1),
            {**convo("b", "Where is my filter?"), "reference_response": "It ships Monday."},
        ],
    )
    a, b = read_source(path)
    assert a.turns[-1] == ("agent", "Yes, free parking.") and a.origin == f"{path}:1"
    assert a.feedback[3].thumbs == 1 and 1 not in a.feedback
    assert b.turns == (("customer", "Where is my filter?"), ("agent", "It ships Monday."))


def test_messages_rows_map_roles_and_drop_the_files_system_prompt(tmp_path):
    row = {
        "messages": [
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "How do I reset it?"},
            {"role": "assistant", "content": "Hold the power button for 10 seconds."},
        ]
    }
    path = write_jsonl(tmp_path / "m.jsonl", [row])
    assert detect_format(path) == "messages"
    (conv,) = read_source(path)
    assert conv.turns == (
        ("customer", "How do I reset it?"),
        ("agent", "Hold the power button for 10 seconds."),
    )
    assert conv.id.startswith("sha-")  # stable content id when the row has none
    (sft,) = compile_dataset([path], val_fraction=0.0).sft_train
    assert "pirate" not in json.dumps(sft)


def test_csv_rows_group_by_conversation_and_order_by_seq(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "conversation_id,seq,role,content\n"
        "c1,2,agent,Try the reset button.\n"
        "c2,1,customer,Is it loud?\n"
        "c1,1,customer,It won't turn on.\n"
        "c2,2,assistant,Only 24 dB on sleep mode.\n",
        encoding="utf-8",
    )
    c1, c2 = read_source(path)
    assert c1.id == "c1" and c1.turns == (
        ("customer", "It won't turn on."),
        ("agent", "Try the reset button."),
    )
    assert c2.turns[1] == ("agent", "Only 24 dB on sleep mode.")


def test_csv_with_a_wrong_header_names_the_file_and_line_1(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,speaker,utterance\n1,customer,hi\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv:1: CSV header"):
        list(read_source(path))


def test_rated_responses_give_pairs_by_mean_rating_and_drop_ties(tmp_path):
    def rated(model, text, scores):
        return {"model": model, "text": text, "ratings": {"naturalness": scores, "faithfulness": scores}}

    row = {
        "id": "task-1",
        "turns": [{"role": "customer", "text": "Can I visit the law library?"}],
        "contexts": [{"doc_id": "d1", "text": "Law libraries are open to the public."}],
        "responses": [
            rated("reference", "Yes, law libraries are open to the public [1].", [5, 4, 5]),
            rated("m1", "Maybe.", [3, 3, 3]),
            rated("m2", "Perhaps.", [3, 3, 3]),
        ],
    }
    path = write_jsonl(tmp_path / "rated.jsonl", [row])
    assert detect_format(path) == "rated_responses"
    dataset = compile_dataset([path], val_fraction=0.0)
    pairs = {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in dataset.pref_train}
    best = "Yes, law libraries are open to the public [1]."
    assert pairs == {(best, "Maybe."), (best, "Perhaps.")}
    assert dataset.manifest["preference_ties_dropped"] == 1
    assert "Law libraries are open" in dataset.pref_train[0]["prompt"][-1]["content"]
    assert dataset.sft_train == []  # rated tasks end on the customer: nothing to imitate
    assert response_score({"a": [5.0, 3.0], "b": [3.0, None]}) == pytest.approx((4.0 + 3.0) / 2)


def test_rows_already_in_trl_format_pass_through_redacted(tmp_path):
    row = {"prompt": "My email is a.b@example.com, help", "chosen": "Sure.", "rejected": "No."}
    path = write_jsonl(tmp_path / "pref.jsonl", [row])
    assert detect_format(path) == "preference"
    (out,) = compile_dataset([path], val_fraction=0.0).pref_train
    assert out["prompt"] == [{"role": "user", "content": "My email is [EMAIL], help"}]
    assert out["chosen"] == [{"role": "assistant", "content": "Sure."}]


# ------------------------------------------------------------------------------------ malformed


@pytest.mark.parametrize(
    ("line3", "reason"),
    [
        ("{not json", "invalid JSON"),
        ('{"id": "x"}', "missing or empty `turns`"),
        ('{"turns": [{"role": "bot", "text": "hi"}]}', "unknown role 'bot'"),
        ('{"turns": [{"role": "customer", "text": "  "}]}', "empty or missing text"),
        ('{"turns": [{"role": "customer", "text": "hi"}], "thumbs": 7}', "thumbs must be"),
    ],
)
def test_malformed_input_names_the_file_and_line(tmp_path, line3, reason):
    good = json.dumps(convo("ok", "Hi", "Hello"))
    path = tmp_path / "file.jsonl"
    path.write_text(f"{good}\n{good.replace('ok', 'ok2')}\n{line3}\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        compile_dataset([path])
    assert "file.jsonl:3: " in str(caught.value) and reason in str(caught.value)
    assert caught.value.line == 3


def test_skip_invalid_skips_counts_and_reports_every_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [json.dumps(convo("a", "Hi", "Hello")), "oops", '{"turns": []}', json.dumps(convo("b", "Q", "A"))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    dataset = compile_dataset([path], skip_invalid=True)
    skipped = dataset.manifest["skipped"]
    assert [s.split(": ")[0] for s in skipped] == [f"{path}:2", f"{path}:3"]
    assert dataset.manifest["conversations"] == 2
    path.write_text("oops\n" + json.dumps(convo("a", "Hi", "Hello")) + "\n", encoding="utf-8")
    assert (
        compile_dataset([path], skip_invalid=True)
        .manifest["skipped"][0]
        .startswith(f"{path}:1: invalid JSON")
    )


def test_unknown_file_shape_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"question": "?", "answer": "!"}])
    with pytest.raises(DataError, match=r"x\.jsonl:1: unrecognised row"):
        detect_format(path)


# ------------------------------------------------------------------------------ dedupe and split


def test_identical_rows_are_kept_once_and_duplicate_ids_reported(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [convo("c1", "Q?", "A."), convo("c2", "Q?", "A.")])
    second = write_jsonl(tmp_path / "b.jsonl", [convo("c1", "Other?", "Other.")])
    dataset = compile_dataset([first, second])
    assert len(dataset.sft_train) + len(dataset.sft_val) == 2
    assert dataset.manifest["duplicates_dropped"]["sft"] == 1
    assert dataset.manifest["duplicate_conversation_ids"] == ["c1"]


def test_split_is_stable_and_about_the_requested_fraction():
    ids = [f"conversation-{i}" for i in range(1000)]
    sides = [is_validation(cid, 0.2) for cid in ids]
    assert sides == [is_validation(cid, 0.2) for cid in ids]
    assert 150 <= sum(sides) <= 250
    assert not any(is_validation(cid, 0.0) for cid in ids)


def test_no_conversation_lands_on_both_sides(tmp_path):
    rows = [convo(f"c{i}", "Hi", "Hello", f"Question {i}?", f"Answer {i}.", thumbs=1) for i in range(200)]
    dataset = compile_dataset([write_jsonl(tmp_path / "c.jsonl", rows)])
    for kind in ("sft", "kto"):
        train = {r["conversation_id"] for r in getattr(dataset, f"{kind}_train")}
        val = {r["conversation_id"] for r in getattr(dataset, f"{kind}_val")}
        assert train and val and not train & val
    again = compile_dataset([write_jsonl(tmp_path / "c.jsonl", rows[::-1])])
    assert {r["conversation_id"] for r in again.sft_val} == {r["conversation_id"] for r in dataset.sft_val}


def test_a_salted_split_is_another_stable_split_of_the_same_size(tmp_path):
    ids = [f"conversation-{i}" for i in range(1000)]
    plain = [is_validation(cid, 0.2) for cid in ids]
    salted = [is_validation(cid, 0.2, "fold-1") for cid in ids]
    assert salted == [is_validation(cid, 0.2, "fold-1") for cid in ids]
    assert 150 <= sum(salted) <= 250
    assert 0 < sum(a and b for a, b in zip(plain, salted, strict=True)) < 100  # a different draw
    assert (
        plain
        == [is_validation(cid, 0.2, None) for cid in ids]
        == [is_validation(cid, 0.2, "") for cid in ids]
    )

    rows = [convo(f"c{i}", "Hi", "Hello", f"Question {i}?", f"Answer {i}.", thumbs=1) for i in range(200)]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    default, redrawn = compile_dataset([path]), compile_dataset([path], split_salt="fold-1")
    assert redrawn.manifest["split_salt"] == "fold-1" and default.manifest["split_salt"] is None
    for kind in ("sft", "kto"):
        train = {r["conversation_id"] for r in getattr(redrawn, f"{kind}_train")}
        val = {r["conversation_id"] for r in getattr(redrawn, f"{kind}_val")}
        assert train and val and not train & val
        assert len(train | val) == 200
    assert {r["conversation_id"] for r in redrawn.sft_val} != {r["conversation_id"] for r in default.sft_val}


# ------------------------------------------------------------------------------- rows and prompts


def test_gold_document_text_is_in_the_last_user_message(tmp_path):
    docs = write_jsonl(
        tmp_path / "docs.jsonl",
        [{"doc_id": "hotel:1:faq:0", "text": "Q: Is there parking?\nA: Yes, free parking on site."}],
    )
    row = convo(
        "c",
        "North?",
        "Try the Acorn.",
        "Parking?",
        gold_doc_ids=["hotel:1:faq:0"],
        gold_response="Yes, free.",
    )
    path = write_jsonl(tmp_path / "c.jsonl", [row])
    dataset = compile_dataset([path], docs=docs, val_fraction=0.0, turns="last")
    (row,) = dataset.sft_train
    assert "Yes, free parking on site." in row["prompt"][-1]["content"]
    assert row["prompt"][-1]["content"].endswith("Customer: Parking?")
    assert row["completion"] == [{"role": "assistant", "content": "Yes, free."}]
    assert dataset.manifest["passages"]["gold"] == 2  # both answers are grounded; only the last is a row


def test_prompt_is_exactly_the_serving_prompt(tmp_path):
    persona = Persona(company="Acme", agent_name="Ada")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "filters.md").write_text("# Filters\nReplace the filter every 6 months.", encoding="utf-8")
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            convo(
                "c",
                "Hi",
                "Hello!",
                "When do I replace the filter?",
                "Every 6 months [1].",
                gold_doc_ids=["filters"],
            )
        ],
    )
    (first, second) = compile_dataset([path], docs=docs, persona=persona, val_fraction=0.0).sft_train
    passage = Passage(
        doc_id="filters", source="filters.md", title="Filters", text=(docs / "filters.md").read_text()
    )
    expected = build_messages(
        "When do I replace the filter?", [passage], persona, [("customer", "Hi"), ("agent", "Hello!")]
    )
    assert second["prompt"] == expected and second["turn_index"] == 3
    assert first["prompt"] == build_messages("Hi", [passage], persona, [])


def test_retriever_fills_in_when_nothing_is_known(tmp_path):
    calls = []

    def retriever(question, history):
        calls.append((question, list(history)))
        return [Passage(doc_id="kb-1", source="kb", text="Call +44 20 7946 0958 for repairs.")]

    path = write_jsonl(tmp_path / "c.jsonl", [convo("c", "Who repairs it?", "Our repair desk.")])
    (row,) = compile_dataset([path], retriever=retriever, val_fraction=0.0).sft_train
    assert calls == [("Who repairs it?", [])]
    assert "(kb-1) Call [PHONE] for repairs." in row["prompt"][-1]["content"]


def test_correction_gives_a_preference_row_and_the_sft_target(tmp_path):
    row = convo(
        "c", "Warranty on refurbished?", "Two years.", correction="One year for refurbished units.", rating=1
    )
    dataset = compile_dataset([write_jsonl(tmp_path / "c.jsonl", [row])], val_fraction=0.0)
    (pref,) = dataset.pref_train
    assert pref["chosen"][0]["content"] == "One year for refurbished units."
    assert pref["rejected"][0]["content"] == "Two years."
    (sft,) = dataset.sft_train
    assert sft["completion"][0]["content"] == "One year for refurbished units."
    assert sft["prompt"] == pref["prompt"]


def test_thumbs_and_ratings_give_kto_rows_and_negative_answers_are_not_imitated(tmp_path):
    rows = [
        convo("up", "Q1?", "Good answer.", thumbs=1),
        convo("down", "Q2?", "Bad answer.", thumbs="down"),
        convo("rated", "Q3?", "Fine answer.", rating=5),
        convo("meh", "Q4?", "Meh answer.", rating=3),
    ]
    dataset = compile_dataset([write_jsonl(tmp_path / "c.jsonl", rows)], val_fraction=0.0)
    labels = {r["completion"][0]["content"]: r["label"] for r in dataset.kto_train}
    assert labels == {"Good answer.": True, "Bad answer.": False, "Fine answer.": True}
    completions = {r["completion"][0]["content"] for r in dataset.sft_train}
    assert completions == {"Good answer.", "Fine answer.", "Meh answer."}
    assert dataset.manifest["answers_not_used_for_sft"] == 1


def test_write_then_load_gives_identical_rows(tmp_path):
    rows = [convo(f"c{i}", "Hi ✓", "Hello — ünïcode", correction="Hi!", thumbs=-1) for i in range(20)]
    dataset = compile_dataset([write_jsonl(tmp_path / "c.jsonl", rows)])
    paths = dataset.write(tmp_path / "out")
    for name, rows_in in dataset.splits().items():
        assert load_rows(paths[name]) == rows_in
    manifest = json.loads(paths["manifest"].read_text())
    assert (
        manifest["counts"] == dataset.manifest["counts"]
        and manifest["files"]["sft_train"] == "sft_train.jsonl"
    )


# ------------------------------------------------------------------------------------ PII end to end

PLANTED = {
    "jane.roe+aero@example.com": "[EMAIL]",
    "+44 20 7946 0123": "[PHONE]",
    "(415) 555-2671": "[PHONE]",
    "4111 1111 1111 1111": "[CARD]",
    "DE89 3704 0044 0532 0130 00": "[IBAN]",
    "742 Evergreen Terrace": "[ADDRESS]",
    "81.2.69.160": "[IP]",
}


def test_no_planted_pii_value_survives_in_the_written_files(tmp_path):
    docs = write_jsonl(
        tmp_path / "docs.jsonl", [{"doc_id": "d", "text": "Refunds: call us on 1-800-555-0142."}]
    )
    rows = [
        convo(
            "pii-1",
            "I'm jane.roe+aero@example.com, phone +44 20 7946 0123. "
            "Card 4111 1111 1111 1111 was charged $129.99.",
            "Thanks! I've refunded the card ending 1111 (order #48213, firmware 1.4.22).",
            "Send the refund to DE89 3704 0044 0532 0130 00 instead, and ship to 742 Evergreen Terrace.",
            "Done: refund to DE89 3704 0044 0532 0130 00, parcel to 742 Evergreen Terrace.",
            gold_doc_ids=["d"],
            correction="Refund sent to your IBAN DE89 3704 0044 0532 0130 00; my IP is 81.2.69.160.",
            thumbs=-1,
        ),
        {
            **convo("", "Hi from 81.2.69.160, my cell is (415) 555-2671", "Call 1-800-555-0142."),
            "id": "jane.roe+aero@example.com",
        },
    ]
    dataset = compile_dataset([write_jsonl(tmp_path / "c.jsonl", rows)], docs=docs, val_fraction=0.5)
    out = tmp_path / "out"
    dataset.write(out)
    written = "".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()))
    for value, placeholder in PLANTED.items():
        assert value not in written, value
        assert placeholder in written, placeholder
    assert "$129.99" in written and "#48213" in written and "1.4.22" in written  # not PII
    assert dataset.manifest["redactions"]["IBAN"] >= 3


def test_contact_details_the_company_publishes_are_kept_unless_asked(tmp_path):
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"doc_id": "d", "text": "Support: 1-800-555-0142."}])
    path = write_jsonl(tmp_path / "c.jsonl", [convo("c", "Support number?", "Call 1-800-555-0142 [1].")])
    kept = compile_dataset([path], docs=docs, val_fraction=0.0)
    assert kept.sft_train[0]["completion"][0]["content"] == "Call 1-800-555-0142 [1]."
    assert kept.manifest["public_values_kept"] == {"1-800-555-0142": 1}
    redacted = compile_dataset([path], docs=docs, val_fraction=0.0, keep_public=False)
    assert redacted.sft_train[0]["completion"][0]["content"] == "Call [PHONE] [1]."


# ------------------------------------------------------------------------------------- log store


def test_reviewed_conversations_from_the_log_store(home):
    from agent.store import LogStore

    with LogStore(home=home) as store:
        store.create_conversation("conv-1")
        store.add_turn("conv-1", "customer", "My filter light is red, I'm at 14 Albert Road.")
        shown = [
            {"doc_id": "led", "source": "led.md", "title": "LED", "text": "Red light: replace the filter."}
        ]
        bad = store.add_turn("conv-1", "agent", "Unplug it for a day.", metadata={"passages": shown})
        store.add_turn("conv-1", "customer", "Still red.")
        good = store.add_turn("conv-1", "agent", "Replace the filter [1].", metadata={"passages": shown})
        store.add_turn("conv-1", "customer", "Thanks, bye")
        plain = store.add_turn("conv-1", "agent", "Bye!", metadata={"passages": []})
        store.add_feedback(bad.id, thumbs=-1)
        store.add_feedback(bad.id, correction="A red light means: replace the filter [1].", reviewer="sam")
        store.add_feedback(good.id, rating=5, reviewer="sam")
        store.create_conversation("conv-2")  # not reviewed: only a customer thumb
        store.add_turn("conv-2", "customer", "hi")
        store.add_feedback(store.add_turn("conv-2", "agent", "hello").id, thumbs=1)

        dataset = compile_dataset([], store=store, val_fraction=0.0)

    assert {r["conversation_id"] for r in all_rows(dataset)} == {"conv-1"}
    targets = [r["completion"][0]["content"] for r in dataset.sft_train]
    assert targets == ["A red light means: replace the filter [1].", "Replace the filter [1]."]  # not "Bye!"
    (pref,) = dataset.pref_train
    assert pref["rejected"][0]["content"] == "Unplug it for a day."
    assert "(LED) Red light: replace the filter." in pref["prompt"][-1]["content"]
    assert "[ADDRESS]" in pref["prompt"][-1]["content"]
    assert {(r["completion"][0]["content"], r["label"]) for r in dataset.kto_train} == {
        ("Unplug it for a day.", False),
        ("Replace the filter [1].", True),
    }
    assert dataset.manifest["passages"]["logged"] == 3 and plain.id


def test_real_mtrag_rated_responses_give_consistent_pairs(tmp_path, shared_data):
    lines = (shared_data / "mtrag" / "rated_responses.jsonl").read_text(encoding="utf-8").splitlines()[:10]
    path = tmp_path / "rated.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = compile_dataset([path], val_fraction=0.0)
    scores = {}
    for task in map(json.loads, lines):
        for response in task["responses"]:
            scores[response["text"].strip()] = response_score(response["ratings"])
    pairs = dataset.pref_train
    assert 10 <= len(pairs) + dataset.manifest["preference_ties_dropped"] <= 30
    for row in pairs:
        chosen, rejected = row["chosen"][0]["content"].strip(), row["rejected"][0]["content"].strip()
        if chosen in scores and rejected in scores:  # texts without PII compare directly
            assert scores[chosen] > scores[rejected]
    assert all(row["prompt"][-1]["content"].startswith("Passages:\n[1]") for row in pairs)
