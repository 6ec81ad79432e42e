"""The ``benchmarks`` package: every module imports without running anything, every name it
imports exists (those imported inside functions too), and none reaches into ``tests``, a
product module's private name or ``sys.path``."""

from __future__ import annotations

import ast
import importlib
import importlib.util

import pytest

from tests.conftest import REPO

BENCHMARKS = REPO / "benchmarks"
MODULES = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem != "__init__")
PRODUCT = ("agent", "knowledge", "training", "deploy", "ui")


def tree(name: str) -> ast.Module:
    return ast.parse((BENCHMARKS / f"{name}.py").read_text(encoding="utf-8"))


def benchmark_names() -> list[str]:
    """The modules run as ``python -m benchmarks.NAME``: those with a ``main``."""
    return [
        name
        for name in MODULES
        if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree(name).body)
    ]


def imports(name: str) -> list[tuple[str, str]]:
    """(module, name) for every import in the file, the ones inside functions too."""
    found = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(node.module or "", alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("name", MODULES)
def test_the_module_imports_without_running(name: str, capsys) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    assert capsys.readouterr().out == ""
    if name in benchmark_names():
        assert callable(module.main)


@pytest.mark.parametrize("name", MODULES)
def test_no_tests_private_names_or_sys_path(name: str) -> None:
    for module, imported in imports(name):
        assert module.split(".")[0] != "tests", module
        if module.split(".")[0] in PRODUCT:
            assert not imported.startswith("_"), f"{module}.{imported}"
    assert "sys.path" not in (BENCHMARKS / f"{name}.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", MODULES)
def test_every_name_it_imports_exists(name: str) -> None:
    """Imports inside functions too: a product name that moves fails here, not an hour into a run."""
    for module, imported in imports(name):
        if module.split(".")[0] in (*PRODUCT, "benchmarks"):
            loaded = importlib.import_module(module)
            if not imported:
                continue
            # ``from agent import grounding`` names a submodule, which need not be loaded yet.
            is_package = hasattr(loaded, "__path__")
            found = hasattr(loaded, imported) or (
                is_package and importlib.util.find_spec(f"{module}.{imported}") is not None
            )
            assert found, f"{module}.{imported}"


def test_replay_check_reads_grounding_overrides_and_rejects_bad_ones() -> None:
    """``replay_check --set KEY=VALUE`` changes one grounding setting; a key the settings do not
    have, or a value they refuse, stops the replay before it loads anything."""
    from benchmarks.replay_check import grounding_settings

    settings = grounding_settings(["match_question=false", "min_quote_score=0.6"])
    assert settings.match_question is False and settings.min_quote_score == 0.6
    assert grounding_settings([]).match_question is True
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        grounding_settings(["match_questions=false"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        grounding_settings(["match_question"])
    with pytest.raises(SystemExit, match="match_question must be true or false"):
        grounding_settings(["match_question=maybe"])


def test_replay_check_reads_the_answer_to_a_question_back_as_the_agent_does() -> None:
    """The customer's "Turbo, on the Aero 300" after "Which mode do you mean?" is checked with the
    first question ("How loud does this mode get?"), as ``Agent`` does: an answer without a noise
    level fails and the quote gives it; with ``ask_unnamed`` off it is sent."""
    from agent.config import GroundingSettings
    from agent.referents import ask_text
    from benchmarks.replay_check import replay

    answer = "Turbo is meant for quickly clearing the air and is loud by design."
    row = {"answer": answer, "passages": [answer, "Noise levels. Turbo: Aero 300 52 dB; Aero 500 56 dB."]}
    history = [
        {"role": "customer", "text": "How loud does this mode get?"},
        {"role": "agent", "text": ask_text("mode")},
    ]
    item = {"question": "Turbo, on the Aero 300", "history": history}
    text, action = replay(row, item, None)
    assert "52 dB" in text and action == "extractive", text
    assert replay(row, item, None, GroundingSettings(ask_unnamed=False)) == (answer, "sent")


def test_retrieval_sample_tells_reading_misses_from_retrieval_misses() -> None:
    """A wrong answer whose passages held every key fact is a reading miss; one whose passages did
    not is a retrieval miss; questions the set does not have are left out."""
    from benchmarks.retrieval_sample import misses

    items = [{"id": "q1", "answer_contains": ["30 days"]}, {"id": "q2", "answer_contains": ["$39", "AF-300"]}]
    rows = [
        {"id": "q1", "correct": False, "passages": ["Returns within 30 days of delivery."]},
        {"id": "q2", "correct": False, "passages": ["The AF-300 filter.", "Shipping is $5.95."]},
        {"id": "other", "correct": False, "passages": []},
    ]
    right = [{**rows[0], "correct": True}, rows[1]]
    stored = {"sample": {"tuned": {"rows": rows}, "base": {"rows": right}}}
    out = misses(stored, items)
    assert out["tuned"] == {"n": 2, "right": 0, "reading_misses": 1, "retrieval_misses": 1}
    assert out["base"] == {"n": 2, "right": 1, "reading_misses": 0, "retrieval_misses": 1}


def test_context_decoding_pairs_the_two_decodings_question_by_question() -> None:
    """Gains and losses are counted per answerable question; unanswerable ones are left out."""
    from benchmarks.context_decoding import arm_summary, compare

    def row(qid: str, kind: str, correct: bool, behaviour: str = "answer") -> dict:
        return {"id": qid, "kind": kind, "correct": correct, "behaviour": behaviour, "invented": [],
                "grounding": None, "seconds": 1.0}  # fmt: skip

    plain = [row("a", "answerable", False), row("b", "followup", True), row("c", "answerable", False),
             row("u", "unanswerable", False, "decline")]  # fmt: skip
    aware = [row("a", "answerable", True), row("b", "followup", False), row("c", "answerable", True),
             row("u", "unanswerable", False)]  # fmt: skip
    out = compare(plain, aware)
    assert (out["gained"], out["lost"]) == (["a", "c"], ["b"])
    assert out["gain"] == pytest.approx(1 / 3, abs=1e-3)
    summary = arm_summary(aware)
    assert (summary["right"], summary["answerable"], summary["unanswerable_declined"]) == (2, 3, 0)
    assert arm_summary(plain)["unanswerable_declined"] == 1


def test_eval_penalty_rebuilds_the_old_protocol_decoding_from_the_new() -> None:
    """The old decoding is the new one with transformers' own penalty over the prompt instead of
    the processor that penalizes only the answer's tokens."""
    from benchmarks.eval_penalty import over_the_prompt
    from training.decoding import Protocol, greedy_options

    class Tokenizer:
        pad_token_id = 0

    protocol = Protocol(repetition_penalty=1.3)
    new = greedy_options(Tokenizer(), protocol, 12)
    old = over_the_prompt(greedy_options)(Tokenizer(), protocol, 12)
    assert new["repetition_penalty"] == 1.0 and len(new["logits_processor"]) == 1
    assert new["logits_processor"][0].prompt_ignore_length == 12
    assert old["repetition_penalty"] == 1.3 and "logits_processor" not in old
    assert old.keys() == new.keys() - {"logits_processor"}


def test_answer_reader_labels_dstc11_by_sentence_and_leaves_held_out_conversations_out(tmp_path) -> None:
    """The gold FAQ entry answers; a gold review sentence answers only with a word of the question
    and two of the human answer; the entity's other entries do not; no conversation of a
    held-out split gives a pair."""
    import json
    import random

    from benchmarks.answer_reader import dstc11_pairs
    from training.data.rows import is_validation

    docs = [
        {"doc_id": "hotel:1:faq:0", "domain": "hotel", "entity_id": 1, "entity_name": "THE GRAND",
         "doc_type": "faq", "text": "Q: Is there parking?\nA: Yes, free parking on site."},
        {"doc_id": "hotel:1:faq:1", "domain": "hotel", "entity_id": 1, "entity_name": "THE GRAND",
         "doc_type": "faq", "text": "Q: Are pets allowed?\nA: No pets, sorry."},
        {"doc_id": "hotel:1:review:0", "domain": "hotel", "entity_id": 1, "entity_name": "THE GRAND",
         "doc_type": "review", "text": "The breakfast buffet was cold and stale. Lovely staff at reception."},
    ]  # fmt: skip
    rows = []
    for n in range(60):
        gold = ["hotel:1:faq:0"] if n % 2 else ["hotel:1:review:0"]
        question = "Can I park my car there?" if n % 2 else "How was the breakfast?"
        answer = "They have free parking." if n % 2 else "Guests found the breakfast buffet cold."
        rows.append({"id": f"dstc11-val-{n}", "turns": [{"role": "customer", "text": question}],
                     "gold_doc_ids": gold, "gold_response": answer})  # fmt: skip
    (tmp_path / "knowledge_docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "conversations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    pairs = dstc11_pairs(tmp_path, random.Random(0))
    groups = {p.group for p in pairs}
    assert groups and not any(is_validation(g, f) for g in groups for f in (0.15, 0.2, 0.35))
    assert len(groups) < len(rows)
    labelled = {(p.question, p.sentence.split(": ", 1)[1], p.label) for p in pairs}
    assert ("Can I park my car there?", "Is there parking? Yes, free parking on site.", 1) in labelled
    assert ("Can I park my car there?", "Are pets allowed? No pets, sorry.", 0) in labelled
    assert ("How was the breakfast?", "The breakfast buffet was cold and stale.", 1) in labelled
    assert not any(p.label and "reception" in p.sentence for p in pairs)


def test_replay_check_retypes_the_customers_messages_and_reads_them_as_the_agent_does() -> None:
    """``--typed lower``: the question and the customer's earlier messages in lower case with no
    closing "?", the agent's turns as they are; the replay reads them as written, as ``Agent``
    does (``grounding.read_as_written``)."""
    from agent.config import GroundingSettings
    from benchmarks.replay_check import replay
    from benchmarks.tuned_default import typed_item

    history = [{"role": "customer", "text": "What's in the box?"}, {"role": "agent", "text": "The Aero."}]
    item = {"question": "I've got two codes. Can I use both on the same order?", "history": history}
    retyped = typed_item(item, "lower")
    assert retyped["question"] == "i've got two codes. can i use both on the same order"
    assert [t["text"] for t in retyped["history"]] == ["what's in the box", "The Aero."]
    assert typed_item(item, "as-written") == item and item["question"].endswith("?")  # not changed in place
    answer = "Yes, you can use both promo codes for the same order."
    row = {"answer": answer, "passages": ["Only one promo code can be used per order, at checkout."]}

    def embed(texts: list[str]) -> list[list[float]]:  # every sentence as close: the words decide
        return [[1.0] for _ in texts]

    text, action = replay(row, retyped, embed)
    assert action == "extractive" and text.startswith("Here is what our help pages say: Only one"), text
    assert replay(row, retyped, embed, GroundingSettings(read_as_written=False)) == (answer, "sent")


def test_mtrag_passages_are_found_for_the_question_as_the_agent_reads_it() -> None:
    """The agent searches with the message as the help pages would write it (``agent.written``):
    "whats the fee for a wire" -> "What's the fee for a wire?". The MT-RAG harness must serve that
    question its own passages; looked up as typed, it got none and the answer was a decline."""
    from agent.written import as_written
    from benchmarks.tuned_default import ContextKnowledge

    typed = "whats the fee for a wire transfer"
    knowledge = ContextKnowledge(
        {typed: [("doc-1", "A wire transfer costs $25.")], "other": [("doc-2", "x")]}
    )
    read = as_written(typed, {})
    assert read != typed
    assert [hit.text for hit in knowledge.search(read)] == ["A wire transfer costs $25."]
    assert knowledge.search("an unrelated question") == []
