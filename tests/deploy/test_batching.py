"""BatchingGenerator: concurrent requests share one generate() call, and each gets the text it
would get alone (greedy), streamed, with its own limits and usage."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.generator import GenerationOptions
from deploy.batching import BatchingGenerator

PROMPTS = [
    [{"role": "user", "content": "How often do I replace the filter?"}],
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are a helpful support agent for an air purifier company."},
        {"role": "user", "content": "My purifier shows error E4 and makes a loud noise, what should I do?"},
    ],
]


@pytest.fixture
def generators(tiny_local):
    local = tiny_local
    batching = BatchingGenerator.wrap(local, max_batch=8, window_ms=200)
    yield local, batching
    batching.close()


def _run(generator, messages, options, cancel=None):
    text = "".join(generator.stream(messages, options, cancel))
    return text, generator.last_usage


def test_concurrent_requests_are_batched_and_match_unbatched_greedy_output(generators) -> None:
    local, batching = generators
    options = GenerationOptions(max_new_tokens=12, temperature=0.0)
    alone = [_run(local, p, options) for p in PROMPTS]
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: _run(batching, p, options), PROMPTS))
    assert [t for t, _ in together] == [t for t, _ in alone]
    assert [u.completion_tokens for _, u in together] == [12, 12, 12]
    assert [u.prompt_tokens for _, u in together] == [u.prompt_tokens for _, u in alone]
    assert batching.batches == 1 and batching.batched_requests == 3
    assert batching.version == "tiny" and batching.count_tokens("hello world") == local.count_tokens(
        "hello world"
    )


def test_each_row_keeps_its_own_token_limit_and_cancel(generators) -> None:
    _, batching = generators
    cancelled = threading.Event()
    cancelled.set()
    jobs = [
        (PROMPTS[0], GenerationOptions(max_new_tokens=3), None),
        (PROMPTS[1], GenerationOptions(max_new_tokens=10), None),
        (PROMPTS[2], GenerationOptions(max_new_tokens=10), cancelled),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: _run(batching, *job), jobs))
    usages = [u for _, u in results]
    assert [u.completion_tokens for u in usages[:2]] == [3, 10]
    assert usages[2].cancelled and usages[2].completion_tokens <= 1
    assert batching.batches == 1


def test_a_caller_that_stops_reading_frees_its_row(generators) -> None:
    _, batching = generators
    stream = batching.stream(PROMPTS[0], GenerationOptions(max_new_tokens=50))
    first = next(stream)
    stream.close()  # as the agent does at a stop marker
    assert first
    _, usage = _run(batching, PROMPTS[1], GenerationOptions(max_new_tokens=4))
    assert usage.completion_tokens == 4 and batching.batches == 2


@pytest.fixture(scope="module")
def compiled_generators(tiny_model_dir, tmp_path_factory):
    from agent import compiled

    if not compiled.available():
        pytest.skip("ctranslate2 is not installed")
    from agent.models import ResolvedModel
    from deploy.batching import CompiledBatchingGenerator

    home = tmp_path_factory.mktemp("compiled-batching")
    engine = compiled.ensure_compiled(
        ResolvedModel(version="tiny", base=str(tiny_model_dir)), home, check="none"
    )
    alone = compiled.CompiledGenerator(engine, version="tiny")
    batching = CompiledBatchingGenerator.wrap(alone, max_batch=8, window_ms=200)
    yield alone, batching
    batching.close()


def test_the_compiled_engine_batches_concurrent_requests_with_unbatched_greedy_output(
    compiled_generators,
) -> None:
    alone, batching = compiled_generators
    options = GenerationOptions(max_new_tokens=12, temperature=0.0)
    single = [_run(alone, p, options)[0] for p in PROMPTS]
    before = batching.batches
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: _run(batching, p, options), PROMPTS))
    assert [t for t, _ in together] == single
    assert all(0 < u.completion_tokens <= 12 for _, u in together)
    assert [u.prompt_tokens for _, u in together] == [len(alone.prompt_tokens(p)) for p in PROMPTS]
    assert batching.batches == before + 1 and batching.version == "tiny"


def test_the_compiled_batcher_keeps_each_rows_limit_cancel_and_early_close(compiled_generators) -> None:
    _, batching = compiled_generators
    cancelled = threading.Event()
    cancelled.set()
    jobs = [
        (PROMPTS[0], GenerationOptions(max_new_tokens=3), None),
        (PROMPTS[2], GenerationOptions(max_new_tokens=10), cancelled),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: _run(batching, *job), jobs))
    assert results[0][1].completion_tokens <= 3
    assert results[1][1].cancelled and results[1][1].completion_tokens <= 1
    stream = batching.stream(PROMPTS[0], GenerationOptions(max_new_tokens=50))
    next(stream, None)
    stream.close()  # as the agent does at a stop marker: the batcher serves the next request
    assert _run(batching, PROMPTS[1], GenerationOptions(max_new_tokens=4))[1].completion_tokens <= 4


def test_the_compiled_batcher_shares_the_agents_static_prompt(compiled_generators) -> None:
    from agent.config import Persona
    from agent.prompt import build_messages

    alone, batching = compiled_generators
    turns = [
        build_messages(q, [], Persona()) for q in ("How long is the warranty?", "Hi", "Where is my order?")
    ]
    options = GenerationOptions(max_new_tokens=8, temperature=0.0)
    single = [_run(alone, m, options)[0] for m in turns]
    with ThreadPoolExecutor(len(turns)) as pool:
        together = list(pool.map(lambda m: _run(batching, m, options), turns))
    assert [t for t, _ in together] == single
    assert [u.prompt_tokens for _, u in together] == [len(alone.prompt_tokens(m)) for m in turns]


def test_length_buckets_group_prompts_of_close_length_shortest_first() -> None:
    from deploy.batching import length_buckets

    lengths = [300, 170, 172, 207, 0, 234, 243]
    assert length_buckets(lengths, 32) == [[4], [1, 2], [3, 5], [6], [0]]
    assert length_buckets(lengths, 0) == [[i] for i in sorted(range(7), key=lambda i: lengths[i])]
    assert length_buckets(lengths, 1000) == [sorted(range(7), key=lambda i: lengths[i])]
    assert length_buckets([], 32) == []


def test_the_compiled_batcher_runs_far_apart_lengths_in_separate_buckets(compiled_generators) -> None:
    """CTranslate2 feeds a batch's longer prompts token by token past the shortest one: rows whose
    lengths differ by more than the tolerance go in separate generate_batch calls, with the same
    text as alone."""
    from deploy.batching import length_buckets

    alone, batching = compiled_generators
    options = GenerationOptions(max_new_tokens=6, temperature=0.0)
    lengths = [len(alone.prompt_tokens(p)) for p in PROMPTS]  # 31 to 45 tokens
    batching.bucket_tokens = 4
    single = [_run(alone, p, options)[0] for p in PROMPTS]
    before_batches, before_buckets = batching.batches, batching.buckets
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = [t for t, _ in pool.map(lambda p: _run(batching, p, options), PROMPTS)]
    assert together == single
    expected = len(length_buckets(lengths, batching.bucket_tokens))
    batching.bucket_tokens = 32
    assert batching.batches == before_batches + 1 and batching.buckets == before_buckets + expected > 1


def test_agent_turns_and_plain_prompts_never_share_a_bucket(compiled_generators) -> None:
    """A row with the agent's static prompt and one without it have prompts that do not align:
    they go in separate generate_batch calls even when their lengths after the head are close."""
    from agent.config import Persona
    from agent.prompt import build_messages

    alone, batching = compiled_generators
    jobs = [build_messages("Where is my order?", [], Persona()), PROMPTS[1]]
    options = GenerationOptions(max_new_tokens=6, temperature=0.0)
    single = [_run(alone, m, options)[0] for m in jobs]
    batching.bucket_tokens = 10**6
    batches, buckets = batching.batches, batching.buckets
    with ThreadPoolExecutor(len(jobs)) as pool:
        together = [t for t, _ in pool.map(lambda m: _run(batching, m, options), jobs)]
    batching.bucket_tokens = 32
    assert together == single
    assert batching.batches == batches + 1 and batching.buckets == buckets + 2
