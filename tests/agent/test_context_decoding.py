"""Context-aware decoding: the contrast, the chat without passages, and where it may run."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.config import Persona, load_config
from agent.errors import ConfigError, GenerationError
from agent.generator import ContextAware, GenerationOptions, LocalGenerator, OpenAIGenerator, build_generator
from agent.prompt import Passage, build_messages, without_passages

PASSAGE = Passage(doc_id="warranty", source="warranty.md", text="The warranty lasts 2 years.")


def test_the_chat_without_passages_keeps_history_and_question_and_drops_only_the_passages() -> None:
    history = [("customer", "Hi"), ("agent", "Hello! How can I help?")]
    messages = build_messages("How long is the warranty?", [PASSAGE], Persona(), history)
    plain = without_passages(messages)
    assert plain[:-1] == messages[:-1]  # system, worked example and history unchanged
    assert plain[-1] == {"role": "user", "content": "Customer: How long is the warranty?"}
    assert "2 years" in messages[-1]["content"] and "2 years" not in plain[-1]["content"]
    assert messages[-1]["content"].startswith("Passages:")  # the original is not changed
    asked = [{"role": "user", "content": "Customer: hello"}]
    assert without_passages(asked) == asked  # nothing to take out


def test_a_question_that_quotes_the_separator_stays_whole() -> None:
    question = "Why does it say\n\nCustomer: in my log?"
    plain = without_passages(build_messages(question, [PASSAGE], Persona()))
    assert plain[-1]["content"] == f"Customer: {question}"


class FixedModel:
    """A model whose next-token logits are fixed: what the chat without passages predicts."""

    def __init__(self, logits: list[float]):
        import torch

        self.logits = torch.tensor([logits])
        self.calls: list[int] = []

    def __call__(self, ids, past_key_values=None, use_cache=True):
        self.calls.append(int(ids.shape[1]))
        return SimpleNamespace(logits=self.logits[:, None, :], past_key_values=("cache", len(self.calls)))


def test_the_contrast_favours_what_the_passages_raise_and_rules_out_the_implausible() -> None:
    import torch

    # With passages: token 0 (a remembered figure) 0.5, token 1 (the passage's figure) 0.4, token 2 0.1,
    # token 3 very unlikely. Without passages the model would say token 0 (0.9).
    with_passages = torch.log(torch.tensor([[0.5, 0.4, 0.099, 0.001]]))
    without = torch.log(torch.tensor([0.9, 0.05, 0.049, 0.001])).tolist()
    model = FixedModel(without)
    processor = ContextAware(model, torch.tensor([[1, 2, 3]]), alpha=0.5)
    scores = processor(torch.tensor([[5, 6, 7, 8]]), with_passages)
    assert int(scores.argmax()) == 1  # plain greedy would pick token 0
    assert scores[0, 1] == pytest.approx(1.5 * math.log(0.4) - 0.5 * math.log(0.05), rel=1e-5)
    assert math.isinf(float(scores[0, 3])) and scores[0, 3] < 0  # under 0.1 x the best: never chosen
    assert model.calls == [3]  # the chat without passages is read whole once ...
    processor(torch.tensor([[5, 6, 7, 8, 1]]), with_passages)
    assert model.calls == [3, 1]  # ... then one new token a step, from its own cache


@pytest.mark.parametrize(("alpha", "penalty"), [(1.0, 1.0), (0.0, 1.3), (0.5, 1.1)])
def test_generation_equals_the_scores_computed_token_by_token(
    tiny_model, alpha: float, penalty: float
) -> None:
    """The cached, streamed generation is the greedy decode of the contrast over full sequences,
    with the repetition penalty on the reply's own tokens only (as the compiled engine does)."""
    import torch

    model, tokenizer = tiny_model
    generator = LocalGenerator(model, tokenizer)
    messages = build_messages("How long is the warranty?", [PASSAGE], Persona())
    new_tokens = 8
    options = GenerationOptions(max_new_tokens=new_tokens, repetition_penalty=penalty, context_weight=alpha)
    streamed = "".join(generator.stream(messages, options))

    ids = generator.prompt_ids(messages)[0].tolist()
    plain = generator.prompt_ids(without_passages(messages))[0].tolist()
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(new_tokens):
            logits = model(torch.tensor([ids + out])).logits[0, -1].float()
            for token in set(out):  # transformers' penalty, on generated tokens only
                logits[token] = logits[token] / penalty if logits[token] > 0 else logits[token] * penalty
            score = lc = torch.log_softmax(logits, -1)
            if alpha:
                ln = torch.log_softmax(model(torch.tensor([plain + out])).logits[0, -1].float(), -1)
                score = ((1 + alpha) * lc - alpha * ln).masked_fill(
                    lc < lc.max() + math.log(0.1), float("-inf")
                )
            token = int(score.argmax())
            if token == tokenizer.eos_token_id:
                break
            out.append(token)
    assert len(out) >= 2  # a real comparison, not two empty replies
    assert streamed == tokenizer.decode(out, skip_special_tokens=True)


def test_context_weight_is_refused_where_it_cannot_run(home: Path) -> None:
    with pytest.raises(ConfigError, match="context_weight"):
        load_config(env={"SUPPORTLOOP_HOME": str(home), "SUPPORTLOOP_GENERATION__CONTEXT_WEIGHT": "-1"})
    with pytest.raises(ConfigError, match="context_weight"):
        load_config(env={"SUPPORTLOOP_HOME": str(home), "SUPPORTLOOP_GENERATION__CONTEXT_WEIGHT": "nan"})
    for env in (
        {"SUPPORTLOOP_GENERATION__ENGINE": "ctranslate2"},
        {"SUPPORTLOOP_GENERATION__BACKEND": "openai"},
    ):
        config = load_config(
            env={"SUPPORTLOOP_HOME": str(home), "SUPPORTLOOP_GENERATION__CONTEXT_WEIGHT": "0.5", **env}
        )
        with pytest.raises(ConfigError, match="needs the local transformers engine"):
            build_generator(config)
    remote = OpenAIGenerator("http://127.0.0.1:9", "m")  # nothing listens: refused before any request
    with pytest.raises(GenerationError, match="needs the transformers engine"):
        next(remote.stream([{"role": "user", "content": "hi"}], GenerationOptions(context_weight=0.5)))


def test_a_context_weight_serves_with_transformers_even_where_the_compiled_engine_would(
    home: Path, tiny_model_dir: Path
) -> None:
    config = load_config(env={"SUPPORTLOOP_HOME": str(home), "SUPPORTLOOP_GENERATION__CONTEXT_WEIGHT": "0.5"})
    assert config.generation.engine == "auto"
    generator = build_generator(config, model=str(tiny_model_dir))
    assert isinstance(generator, LocalGenerator)


def test_the_agent_passes_its_context_weight_to_every_generation(make_agent) -> None:
    from agent.generator import ScriptedGenerator

    class Recording(ScriptedGenerator):
        def __init__(self) -> None:
            super().__init__(default="Replace the HEPA filter every 6 months. [1]")
            self.options: list[GenerationOptions] = []

        def stream(self, messages, options, cancel=None):
            self.options.append(options)
            yield from super().stream(messages, options, cancel)

    generator = Recording()
    agent = make_agent(generator, generation__context_weight=0.75)
    agent.reply("c1", "How often do I replace the HEPA filter?")
    assert [o.context_weight for o in generator.options] == [0.75]
