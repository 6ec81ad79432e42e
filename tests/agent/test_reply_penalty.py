"""The repetition penalty falls on the reply's own tokens on every transformers decoding path.

transformers' ``repetition_penalty`` argument also penalizes every prompt token, so a model
decoded with it is kept from copying a figure out of its passages; the compiled engine penalizes
only what it generated. The agent's engine, the batching server and the evaluation protocol
(``eval model``, the promotion gate) must all decode as the compiled engine does, or a model is
judged one way and served another.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.config import Persona
from agent.generator import GenerationOptions
from agent.prompt import Passage, build_messages, until_stop
from training.decoding import Protocol, answers_and_nll, generate
from training.heldout import EvalExample

PENALTY, NEW_TOKENS = 30.0, 10  # a penalty this large changes a random tiny model's greedy reply
QUESTIONS = ("How long is the warranty?", "Is return shipping free?")
PASSAGE = Passage(doc_id="w", source="w.md", text="The warranty lasts 2 years. Return shipping is free.")


def _messages(question: str) -> list[dict[str, str]]:
    return build_messages(question, [PASSAGE], Persona())


def _greedy(model, prompt: list[int], penalize_prompt: bool, eos: int | None) -> list[int]:
    """Greedy decoding written out: each step's logits from the whole sequence, the penalty on the
    tokens generated so far (and on the prompt's when ``penalize_prompt``)."""
    import torch

    out: list[int] = []
    with torch.inference_mode():
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([prompt + out])).logits[0, -1].float()
            for token in set(out) | (set(prompt) if penalize_prompt else set()):
                logits[token] = logits[token] / PENALTY if logits[token] > 0 else logits[token] * PENALTY
            token = int(logits.argmax())
            if token == eos:
                break
            out.append(token)
    return out


@pytest.fixture
def tiny(tiny_local):
    local = tiny_local
    model, tokenizer = local.model, local.tokenizer
    expected, over_prompt = [], []
    for question in QUESTIONS:
        ids = local.prompt_ids(_messages(question))[0].tolist()
        expected.append(tokenizer.decode(_greedy(model, ids, False, None), skip_special_tokens=True))
        over_prompt.append(tokenizer.decode(_greedy(model, ids, True, None), skip_special_tokens=True))
    # The test can fail: penalizing the prompt as well gives other replies here.
    assert expected != over_prompt
    return model, tokenizer, local, expected


def test_the_agents_engine_and_the_batching_server_penalize_only_the_reply(tiny) -> None:
    from deploy.batching import BatchingGenerator

    _, _, local, expected = tiny
    options = GenerationOptions(max_new_tokens=NEW_TOKENS, repetition_penalty=PENALTY)
    assert ["".join(local.stream(_messages(q), options)) for q in QUESTIONS] == expected
    batching = BatchingGenerator.wrap(local, max_batch=8, window_ms=200)
    try:
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            together = list(pool.map(lambda q: "".join(batching.stream(_messages(q), options)), QUESTIONS))
    finally:
        batching.close()
    assert batching.batches == 1  # both rows in one left-padded batch
    assert together == expected


@pytest.mark.parametrize("batch_size", [1, 2])
def test_the_evaluation_protocol_decodes_as_the_agent_serves(tiny, batch_size: int) -> None:
    model, tokenizer, _, expected = tiny
    protocol = Protocol(max_new_tokens=NEW_TOKENS, repetition_penalty=PENALTY, batch_size=batch_size)
    prompts = [_messages(q) for q in QUESTIONS]
    wanted = [until_stop(text) for text in expected]  # as the protocol cuts an answer
    assert generate(model, tokenizer, prompts, protocol) == wanted
    examples = [EvalExample(prompt=tuple(p), reference="The warranty lasts 2 years.") for p in prompts]
    answers, _, count = answers_and_nll(model, tokenizer, examples, prompts, protocol)
    assert count > 0
    assert answers == wanted
