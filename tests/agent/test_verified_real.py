"""A correction acts at once, end to end on the real parts: the default SmolLM2 model, the
packaged MiniLM embeddings, a Chroma index of the sample documents, the CLI and the log store;
then the promoted model's check retires the shortcut it now answers like the reviewer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.config import load_config
from agent.generator import LocalGenerator
from agent.knowledge import SAMPLE_DOCS
from agent.runtime import Agent
from agent.store import LogStore
from agent.verified import SOURCE, record_correction
from training.gate import model_answer, retire_shortcuts
from training.retrievers import knowledge_retriever

pytestmark = pytest.mark.slow

QUESTION = "What does shipping to Canada cost?"
PARAPHRASE = "How much is shipping to Canada?"
CORRECTED = "Shipping to Canada is a flat $24.95 and takes 5 to 9 business days. Duties are included."


def test_a_cli_correction_answers_the_next_similar_question_and_retires_after_promotion(
    home: Path, default_model_dir: Path
) -> None:
    from knowledge import KnowledgeBase, KnowledgeConfig

    kb = KnowledgeBase(KnowledgeConfig(persist_dir=home / "index"))
    kb.ingest([SAMPLE_DOCS])
    generator = LocalGenerator.load(str(default_model_dir))
    config = load_config()
    config.generation.max_new_tokens = 48
    with LogStore(home=home) as store:
        agent = Agent(generator, kb, store, config)
        first = agent.reply("real-1", QUESTION)
        assert first.model_version and first.text != CORRECTED

        result = CliRunner().invoke(cli, ["logs", "correct", first.turn_id, "--text", CORRECTED, "--json"])
        assert result.exit_code == 0, result.output
        answer_id = json.loads(result.output)["verified"]["id"]

        for cid, question in (("real-2", QUESTION), ("real-3", PARAPHRASE)):
            reply = agent.reply(cid, question)
            assert reply.text == CORRECTED and reply.model_version == ""
            assert [c.source for c in reply.citations] == [SOURCE]
            assert reply.grounding is not None and reply.grounding["source"] == "verified"
        assert store.get_verified_answer(answer_id).hits == 2
        # A near-miss is not served the correction: the model answers it.
        assert agent.reply("real-4", "What does shipping to Mexico cost?").text != CORRECTED

        # The model's own words on another question (on the passages the agent is shown, as
        # ``eval_retriever`` gives them to the gate), recorded as a verified answer: the promoted
        # model gives them again, so that shortcut retires; the Canada one it does not know stays.
        settings = config.retrieval
        retrieve = knowledge_retriever(
            kb, k=settings.k, candidates=settings.candidates, one_per_page=settings.one_per_page
        )
        warranty = "How long is the warranty on a brand-new Aero purifier?"
        own = agent.reply("real-5", warranty)
        words = model_answer(generator, warranty, retrieve, max_new_tokens=48)
        _, mine = record_correction(store, own.turn_id, words)

        retired = retire_shortcuts(store, generator, "promoted-test", retriever=retrieve, max_new_tokens=48)
        assert retired == [mine.id]
        assert [a.id for a in store.verified_answers()] == [answer_id]
    kb.close()
