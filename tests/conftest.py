"""Shared fixtures: a temp data home per test, the real default model converted once per
machine (cached under ``.cache/``), and a tiny model built from a config with its tokenizer.

Tests are offline: the hub is never contacted.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.postgres_fixture"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# Unit tests run tiny models: the shipped adapter (for the real default) is registered only by
# the tests that ask for it (SUPPORTLOOP_SHIPPED_MODEL=1).
os.environ.setdefault("SUPPORTLOOP_SHIPPED_MODEL", "0")
# Tiny random models convert badly to int8: unit tests serve with transformers unless a test
# asks for the compiled engine (tests/agent/test_compiled.py).
os.environ.setdefault("SUPPORTLOOP_GENERATION__ENGINE", "transformers")

# absl (imported by rouge_score) binds its log handler to whatever sys.stderr is when it is first
# imported: under pytest that is a capture stream closed after the test, and a later test that
# logs (schemathesis) then kills the interpreter ("lost sys.stderr"). Bind it to the real stderr.
try:
    import absl.logging
except ImportError:  # pragma: no cover - rouge_score brings absl
    pass
else:
    absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SUPPORTLOOP_SHARED_DATA", REPO.parent / "shared" / "data"))
CACHE = REPO / ".cache" / "test-home"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip when a resource is missing, except under CI, where a skip would hide a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data home; the converted default model is linked in so nothing re-converts."""
    data_home = tmp_path / "home"
    (data_home / "models").mkdir(parents=True)
    cached = CACHE / "models" / "smollm2-135m-instruct"
    if cached.exists():
        (data_home / "models" / "smollm2-135m-instruct").symlink_to(cached)
    monkeypatch.setenv("SUPPORTLOOP_HOME", str(data_home))
    monkeypatch.delenv("SUPPORTLOOP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return data_home


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The real default model, converted from the packaged GGUF once per machine."""
    from agent.models import ensure_default_model

    return ensure_default_model(CACHE)


@pytest.fixture(scope="session")
def tokenizer(default_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(default_model_dir))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    """A 2-layer Llama with hidden size 32 and the default model's tokenizer and chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def tiny_model(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), AutoTokenizer.from_pretrained(
        str(tiny_model_dir)
    )


@pytest.fixture
def tiny_local(tiny_model):
    """The tiny model served by ``LocalGenerator``, padded for batching and run to the token
    limit (a random model's EOS would end a reply anywhere)."""
    from agent.generator import LocalGenerator

    model, tokenizer = tiny_model
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.eos_token_id = None
    return LocalGenerator(model, tokenizer, version="tiny")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require(SHARED_DATA.is_dir(), f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
