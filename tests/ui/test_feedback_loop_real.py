"""Issue #23's loop in one flow, on the real parts: the default SmolLM2 model, the packaged MiniLM
embeddings, a Chroma index of the sample documents and the SQLite log store. A customer's
thumbs-down "wrong answer" -> a reviewer's correction in the console (AppTest) -> the same
question gets the correction at once, with no model call -> ``train round`` compiles it into its
data -> after the promotion the verified answers the new model gives retire, the others stay.

The gate's generation budgets are shortened (as in ``tests/training/test_round.py``) and the
round's candidate is promoted with ``models promote --force`` when the gate refuses it: the
promotion, not the gate's verdict on one training step, is what this flow is about."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.config import load_config
from agent.generator import LocalGenerator
from agent.knowledge import SAMPLE_DIR, open_knowledge
from agent.models import ModelRegistry
from agent.runtime import Agent
from agent.store import LogStore
from agent.verified import SOURCE, record_correction
from tests.ui.conftest import PASSWORD, open_app, texts
from training.cli_shared import eval_retriever
from training.decoding import Protocol
from training.gate import model_answer

pytestmark = pytest.mark.slow

QUESTION = "What does shipping to Canada cost?"
CORRECTED = "Shipping to Canada is a flat $24.95 and takes 5 to 9 business days. Duties are included."
SECOND = "How long is the warranty on a brand-new Aero purifier?"


@pytest.fixture
def served(home: Path, default_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The real agent over the home's index and log store, with a count of its model calls."""
    monkeypatch.delenv("SUPPORTLOOP_UI_FAKE_MODEL", raising=False)
    config = load_config()
    config.generation.max_new_tokens = 48
    kb = open_knowledge(config)  # empty index: ingests the shipped sample documents
    generator = LocalGenerator.load(str(default_model_dir))
    calls: list[object] = []
    stream = generator.stream

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return stream(*args, **kwargs)

    monkeypatch.setattr(generator, "stream", counted)
    with LogStore(home=home) as store:
        yield {"agent": Agent(generator, kb, store, config), "store": store, "calls": calls}
    kb.close()


def test_a_wrong_answer_corrected_in_the_console_serves_trains_and_retires_after_promotion(
    served: dict[str, Any], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.evaluate
    import training.gate

    agent, store, calls = served["agent"], served["store"], served["calls"]

    # 1. The customer's answer, and their thumbs-down "wrong" (the chat's and the API's call). The
    # conversation id lands on the training side of the stable split (``is_validation``).
    first = agent.reply("real-wrong", QUESTION)
    assert first.model_version and first.text != CORRECTED and calls
    agent.feedback(first.turn_id, thumbs=-1, reason="wrong")

    # 2. The reviewer finds it on the reasons page and corrects it on the review page.
    reviewer = store.create_user("riley", PASSWORD, "reviewer")
    reasons = open_app("pages/reasons.py", user=reviewer)
    assert f"**{QUESTION}** · :orange[needs a correction]" in texts(reasons)
    review = open_app("pages/review.py", user=reviewer, query={"id": "real-wrong"})
    review.text_area(key=f"review-correction-{first.turn_id}").set_value(CORRECTED)
    next(b for b in review.button if b.label == "Save review").click().run()
    assert not review.exception and "Correction saved" in texts(review)
    assert f"**{QUESTION}** · :green[corrected]" in texts(open_app("pages/reasons.py", user=reviewer))
    [correction] = store.verified_answers()
    assert (correction.question, correction.answer) == (QUESTION, CORRECTED)

    # 3. The same question again: the correction verbatim, cited as verified, no model call.
    generated = len(calls)
    again = agent.reply("e2e-again", QUESTION)
    assert again.text == CORRECTED and again.model_version == "" and len(calls) == generated
    assert [c.source for c in again.citations] == [SOURCE]
    assert again.grounding is not None and again.grounding["source"] == "verified"

    # 4. A training round compiles the correction: an SFT target, and preferred over the answer.
    monkeypatch.setattr(training.evaluate, "PROTOCOL", Protocol(max_new_tokens=8))
    monkeypatch.setattr(training.gate, "SAFETY_MAX_NEW_TOKENS", 8)
    history = tmp_path / "conversations.jsonl"  # past conversations: held-out answers for the gate
    history.write_text("".join(json.dumps(c) + "\n" for c in unreviewed_history()[:4]))
    args = ["train", "round", "--from-logs", "--data", str(history), "--max-steps", "1", "--eval-limit", "1"]
    args += ["--set", "gradient_accumulation_steps=1", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output.strip().splitlines()[-1])
    data = Path(outcome["run_dir"]) / "data"
    [sft] = [row for row in rows(data / "sft_train.jsonl") if row["conversation_id"] == "real-wrong"]
    assert sft["completion"] == said(CORRECTED) and QUESTION in sft["prompt"][-1]["content"]
    [pair] = [row for row in rows(data / "pref_train.jsonl") if row["conversation_id"] == "real-wrong"]
    assert (pair["chosen"], pair["rejected"]) == (said(CORRECTED), said(first.text))
    assert [stage["kind"] for stage in outcome["trained"]] == ["sft", "dpo"]  # the pair trained too
    assert outcome["retired_shortcuts"] == []  # promoted or not, it does not give the correction

    # 5. The candidate's own answer to another question, recorded as a verified answer.
    candidate = outcome["candidate"]
    retrieve = eval_retriever(load_config(), None)
    promoted = LocalGenerator.load(candidate, home=home)
    own = agent.reply("e2e-second", SECOND)
    _, mine = record_correction(store, own.turn_id, model_answer(promoted, SECOND, retrieve))

    # 6. Promotion (forced when one training step did not win the gate) retires what it answers.
    if not outcome["promoted"]:
        assert outcome["reasons"] and outcome["why"].startswith(f"Refused {candidate}")
    promote = CliRunner().invoke(cli, ["models", "promote", candidate, "--force"])
    assert promote.exit_code == 0, promote.output
    assert "1 verified answers retired" in promote.output
    assert ModelRegistry(home).production_name() == candidate
    # The model gives its own answer again; it cannot give a price the documents never state.
    assert [a.id for a in store.verified_answers()] == [correction.id]
    assert [a.id for a in store.verified_answers(live=False)] == [mine.id]
    assert agent.reply("e2e-third", QUESTION).text == CORRECTED


def unreviewed_history() -> list[dict[str, Any]]:
    """The sample company's past conversations that carry no feedback: SFT rows only, so the
    round's preference and KTO stages train on this test's correction alone."""
    lines = (SAMPLE_DIR / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    past = [json.loads(line) for line in lines]
    return [c for c in past if c["thumbs"] is None and c["rating"] is None and not c.get("correction")]


def said(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
